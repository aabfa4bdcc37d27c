"""Answers and scores apart, through the real `gnomon` command: a changed scorer re-scores stored
answers without the model, a chat API never reuses completions answers, a run answered by
generation has a headline, and a store written before answers were kept apart is adopted."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import yaml
from gnomon_cli import ENV, gnomon, ok, rescored, summary
from loopback import chat_app, running

pytestmark = pytest.mark.slow
BUILTIN = Path(__file__).parents[1] / "src" / "gnomon" / "hub" / "benchmarks"
LEGACY_STORE = Path(__file__).parent / "data" / "store-schema1.sqlite"


def poison_weights(model_dir: Path) -> None:
    """Garbage weights under the same identity (sizes, times): loading the model would fail."""
    import os

    for path in model_dir.glob("*.safetensors"):
        st = path.stat()
        path.write_bytes(os.urandom(st.st_size))
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def results(out: Path) -> dict[str, Any]:
    return json.loads((out / "results.json").read_text(encoding="utf-8"))["benchmarks"]


def scorer_hashes(store: Path, bench: str) -> set[str]:
    with closing(sqlite3.connect(store)) as db:
        rows = db.execute("SELECT DISTINCT scorer_hash FROM results WHERE bench = ?", (bench,))
        return {r[0] for r in rows}


def spec_copy(tmp_path: Path, name: str, **changes: Any) -> Path:
    spec = yaml.safe_load((BUILTIN / "arc_easy.yaml").read_text(encoding="utf-8"))
    spec.update(changes)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


# ------------------------------------------------------------------ a changed scorer re-scores
def test_changed_metrics_rescore_stored_answers_without_the_model(
    llama_dir: Path, data_root: Path, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    shutil.copytree(llama_dir, model)
    store = tmp_path / "s.sqlite"
    common = ["--model", f"hf:{model}", "--data", data_root, "--limit", "10", "--store", store,
              "--device", "cpu", "--dtype", "float32"]  # fmt: skip
    only_acc = spec_copy(tmp_path, "acc_only", metrics=["acc"], headline=None)
    first = ok(gnomon("run", "--bench", only_acc, *common, "--out", tmp_path / "a"))
    assert summary(first.stdout) == (10, 0, 10)
    assert set(results(tmp_path / "a")["arc_easy"]["metrics"]) == {"acc"}

    poison_weights(model)  # from here on, loading the model fails: nothing may load it
    builtin = ok(gnomon("run", "--bench", "arc_easy", *common, "--out", tmp_path / "b"))
    assert summary(builtin.stdout) == (10, 0, 0) and rescored(builtin.stdout) == 10
    assert "loading" not in builtin.stderr
    got = results(tmp_path / "b")["arc_easy"]
    assert set(got["metrics"]) == {"acc", "acc_norm"} and got["headline"] == "acc_norm"
    assert got["metrics"]["acc"] == results(tmp_path / "a")["arc_easy"]["metrics"]["acc"]
    assert len(scorer_hashes(store, "arc_easy")) == 2  # the old scores stay, under their hash

    again = ok(gnomon("run", "--bench", only_acc, *common))  # the first scorer's scores reused
    assert summary(again.stdout) == (10, 10, 0) and rescored(again.stdout) == 0

    normalised = spec_copy(tmp_path, "other_prompt", prompt={
        **yaml.safe_load((BUILTIN / "arc_easy.yaml").read_text())["prompt"],
        "template": "Q: {{ question }}\nA:",
    })  # fmt: skip
    changed = gnomon("run", "--bench", normalised, *common)  # a new prompt needs the model
    assert changed.returncode != 0 and "Traceback" not in changed.stderr
    assert "loading" in changed.stderr


# ------------------------------------------------------------------ chat API vs completions
class Scripted:
    """An OpenAI-compatible server whose completions answer "A" and whose chat answers "B"."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {"completions": 0, "chat": 0}
        self.chat_bodies: list[dict[str, Any]] = []

    def app(self) -> Any:
        app = chat_app(self.chat, ("scripted",), usage=None)

        @app.post("/v1/completions")
        def completions(body: dict) -> dict:
            self.calls["completions"] += 1
            return {"choices": [{"index": 0, "text": " A", "logprobs": None,
                                 "finish_reason": "stop"}]}  # fmt: skip

        return app

    def chat(self, body: dict) -> str:
        self.calls["chat"] += 1
        self.chat_bodies.append(body)
        return "B"


@pytest.fixture
def scripted() -> Iterator[tuple[Scripted, str]]:
    server = Scripted()
    with running(server.app()) as url:
        yield server, f"{url}/v1"


def targets(data_root: Path, n: int) -> list[int]:
    lines = (data_root / "arc_easy" / "test.jsonl").read_text(encoding="utf-8").splitlines()[:n]
    rows = [json.loads(line) for line in lines]
    return [row["choices"]["label"].index(row["answerKey"]) for row in rows]


def test_chat_api_never_reuses_completions_answers(
    scripted: tuple[Scripted, str], data_root: Path, tmp_path: Path
) -> None:
    server, url = scripted
    store = tmp_path / "s.sqlite"
    env = {**ENV, "OPENAI_API_KEY": "sk-none"}
    args = ["run", "--model", "openai:scripted", "--base-url", url, "--bench", "arc_easy",
            "--choice-by", "generation", "--data", data_root, "--limit", "10", "--store", store,
            "--max-retries", "0"]  # fmt: skip
    completions = ok(gnomon(*args, "--out", tmp_path / "c", env=env))
    assert summary(completions.stdout) == (10, 0, 10) and server.calls["completions"] == 10
    chat = ok(gnomon(*args, "--chat-api", "--out", tmp_path / "d", env=env))
    assert summary(chat.stdout) == (10, 0, 10) and server.calls["chat"] == 10
    gold = targets(data_root, 10)
    acc_c = results(tmp_path / "c")["arc_easy"]["metrics"]["acc"]["value"]
    acc_d = results(tmp_path / "d")["arc_easy"]["metrics"]["acc"]["value"]
    assert acc_c == pytest.approx(sum(g == 0 for g in gold) / 10)  # every answer "A"
    assert acc_d == pytest.approx(sum(g == 1 for g in gold) / 10)  # every answer "B"
    # the prompt sent, and stored with the sample, is the lettered one with its instruction
    sent = server.chat_bodies[0]["messages"][-1]["content"]
    assert "\nA. " in sent and "letter" in sent
    first = json.loads((tmp_path / "d" / "samples.jsonl").read_text().splitlines()[0])
    assert first["output"] == "B"
    for flag in ([], ["--chat-api"]):  # each is reused by its own kind only
        again = ok(gnomon(*args, *flag, env=env))
        assert summary(again.stdout) == (10, 10, 0)
    assert server.calls == {"completions": 10, "chat": 10}


def test_run_answered_by_generation_has_its_own_headline(
    scripted: tuple[Scripted, str], data_root: Path, tmp_path: Path
) -> None:
    from gnomon.rank.board import load_board
    from gnomon.store import Store

    _, url = scripted
    store = tmp_path / "s.sqlite"
    env = {**ENV, "OPENAI_API_KEY": "sk-none"}
    proc = ok(gnomon("run", "--model", "openai:scripted", "--base-url", url, "--chat-api",
                     "--bench", "arc_easy,hellaswag", "--data", data_root, "--limit", "10",
                     "--store", store, "--out", tmp_path / "o", env=env))  # fmt: skip
    assert "this run reports acc" in proc.stdout
    for bench in ("arc_easy", "hellaswag"):
        report = results(tmp_path / "o")[bench]
        assert report["headline"] == "acc" and "acc_norm" in report["headline_note"]
    db = Store(store, create=False)
    try:
        board = load_board(db)
    finally:
        db.close()
    (model,) = board.models
    for bench in ("arc_easy", "hellaswag"):
        # a chat model answering by generation is a setting of its own, beside the standard one
        (entry,) = [e for e in model.entries.values() if e.bench == bench]
        assert entry.bench != next(c for c, e in model.entries.items() if e is entry)
        assert entry.headline == "acc" and entry.score is not None
        assert entry.done == entry.planned == 10 and not entry.partial
        assert board.benches[entry.column].headline == "acc"  # the column reads what it holds
    # only standard settings make the means: this model has none of them yet
    assert model.overall is None and set(model.missing["reasoning"]) == {"arc_easy", "hellaswag"}


# ------------------------------------------------------------------ a store from before
def test_store_written_by_schema_1_opens_and_is_adopted(data_root: Path, tmp_path: Path) -> None:
    """`tests/data/store-schema1.sqlite` was written by gnomon before answers and scores were
    apart (a served tiny model, `--model-id legacy-tiny`: mmlu, arc_easy and gsm8k by
    loglikelihood and generation, arc_easy again by generation, 6 rows each). It opens, its
    runs list and rank as before, and the same commands re-run without a single request:
    nothing listens at the URL given."""
    store = tmp_path / "old.sqlite"
    shutil.copy(LEGACY_STORE, store)
    before = ok(gnomon("runs", "list", "--store", store)).stdout
    assert before.count("openai:tiny") == 2
    from gnomon.rank.board import load_board
    from gnomon.store import Store

    db = Store(store, create=False)  # migrated on open; the old rows rank as they did
    try:
        (model,) = load_board(db).models
    finally:
        db.close()
    # arc_easy was run both ways: scored by loglikelihood (its standard column, acc_norm) and
    # answered by generation (a variant beside it, which reports acc), neither hiding the other
    assert model.entries["arc_easy"].headline == "acc_norm" and model.entries["arc_easy"].score
    (by_generation,) = [
        e for c, e in model.entries.items() if e.bench == "arc_easy" and c != "arc_easy"
    ]
    assert by_generation.headline == "acc" and by_generation.setting.by_generation
    assert all(e.score is not None and not e.partial for e in model.entries.values())
    env = {**ENV, "OPENAI_API_KEY": "sk-none"}
    common = ["--model", "openai:tiny", "--base-url", "http://127.0.0.1:9/v1", "--model-id",
              "legacy-tiny", "--data", data_root, "--limit", "6", "--store", store,
              "--max-retries", "0"]  # fmt: skip
    first = ok(gnomon("run", "--bench", "mmlu,arc_easy,gsm8k", *common, "--out", tmp_path / "a",
                      env=env))  # fmt: skip
    assert summary(first.stdout) == (18, 0, 0) and rescored(first.stdout) == 18
    second = ok(gnomon("run", "--bench", "arc_easy", "--choice-by", "generation", *common,
                       "--out", tmp_path / "b", env=env))  # fmt: skip
    assert summary(second.stdout) == (6, 0, 0) and rescored(second.stdout) == 6
    # the same scores the old runs reported
    with closing(sqlite3.connect(store)) as db:
        old = {
            (bench, metric): value
            for bench, metric, value in db.execute(
                "SELECT s.bench, j.key, AVG(j.value) FROM results s, json_each(s.metrics) j "
                "WHERE s.scorer_hash = 'legacy' AND s.prompt_hash IN (SELECT prompt_hash FROM "
                "run_benches b JOIN runs r ON r.run_id = b.run_id WHERE r.gnomon_version = "
                "'0.1.0' AND r.created = (SELECT MIN(created) FROM runs)) "
                "GROUP BY s.bench, j.key"
            )
        }
    new = results(tmp_path / "a")
    assert old and all(
        new[bench]["metrics"][metric]["value"] == pytest.approx(value)
        for (bench, metric), value in old.items()
    )
    ok(gnomon("rank", "--store", store, "--help"))
