"""`--chat`: prompts through a local model's own chat template, few-shot examples as turns."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from gnomon_cli import gnomon, ok

pytestmark = pytest.mark.slow


def run(model: Path, data_root: Path, store: Path, out: Path, *extra: str):
    return gnomon("run", "--model", f"hf:{model}", "--bench", "mmlu", "--data", data_root,
                  "--limit", "2", "--shots", "2", "--store", store, "--out", out, "--device",
                  "cpu", *extra)  # fmt: skip


def test_chat_prompts_use_the_template_with_shots_as_turns(
    chat_llama_dir: Path, data_root: Path, tmp_path: Path
) -> None:
    store = tmp_path / "s.sqlite"
    ok(run(chat_llama_dir, data_root, store, tmp_path / "a"))
    plain = json.loads((tmp_path / "a" / "results.json").read_text())
    ok(
        run(
            chat_llama_dir,
            data_root,
            store,
            tmp_path / "b",
            "--chat",
            "--system-prompt",
            "Be brief.",
        )
    )
    chat = json.loads((tmp_path / "b" / "results.json").read_text())
    assert chat["config"]["chat_template"] is True
    assert chat["config"]["system_prompt"] == "Be brief."
    chat_hash = chat["benchmarks"]["mmlu"]["prompt_hash"]
    assert chat_hash != plain["benchmarks"]["mmlu"]["prompt_hash"]
    with sqlite3.connect(store) as conn:
        prompts = [r[0] for r in conn.execute("SELECT prompt FROM results WHERE prompt_hash = ?",
                                              (chat_hash,))]  # fmt: skip
    assert len(prompts) == 2
    for prompt in prompts:
        assert prompt.startswith("<|system|>Be brief.\n<|user|>The following are multiple")
        assert prompt.count("<|user|>") == 3 and prompt.count("<|assistant|>") == 3  # 2 shots
        assert prompt.endswith("Answer:\n<|assistant|>")
        # the shots' answers are assistant turns: "<|assistant|>X\n"
        answers = [p.split("\n")[0] for p in prompt.split("<|assistant|>")[1:3]]
        assert all(a in {"A", "B", "C", "D"} for a in answers), answers


def test_chat_without_a_template_is_a_user_error(
    llama_dir: Path, data_root: Path, tmp_path: Path
) -> None:
    proc = run(llama_dir, data_root, tmp_path / "s", tmp_path / "o", "--chat")
    assert proc.returncode == 2
    assert "no chat template" in proc.stderr.strip().splitlines()[-1]
    assert "Traceback" not in proc.stderr
