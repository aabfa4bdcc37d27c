"""Bad input through the real `gnomon` command: one `error:` line, exit 2, no traceback, and a
store that is left as it was.

Where a test must fail before the model is loaded, it uses a "poisoned" copy of the Llama fixture
(real config and tokenizer, garbage weights): a run that got as far as loading would fail on the
weights instead of reporting the problem under test.
"""

from __future__ import annotations

import copy
import json
import random
import re
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import yaml
from gnomon_cli import ENV, gnomon

pytestmark = pytest.mark.slow

TABLES = ("meta", "runs", "results", "run_results", "run_benches")


def run_args(model: Path | str, store: Path, *extra: object) -> list[object]:
    model = model if isinstance(model, str) else f"hf:{model}"
    return ["run", "--model", model, "--store", store, "--device", "cpu", "--dtype", "float32",
            *extra]  # fmt: skip


def expect_error(proc: subprocess.CompletedProcess[str], *needles: str, alone: bool = True) -> str:
    """Exit 2, exactly one `error:` line on stderr, no traceback; returns the message.

    `alone`: the error line is all there is on stderr (the run never started); otherwise log
    lines may precede it, but it must come last."""
    report = f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr + proc.stdout, report
    assert proc.returncode == 2, report
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1, report
    if alone:
        assert lines == errors, report
    else:
        assert lines[-1] == errors[0], report
    for needle in needles:
        assert needle in errors[0], report
    return errors[0]


def snapshot(store: Path) -> dict[str, list[tuple[Any, ...]]]:
    with closing(sqlite3.connect(store)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return {t: sorted(db.execute(f"SELECT * FROM {t}").fetchall()) for t in TABLES}


def read_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def write_rows(path: Path, rows: list[Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def poisoned_model(llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = tmp_path_factory.mktemp("poisoned") / "model"
    shutil.copytree(llama_dir, model)
    for path in model.glob("*.safetensors"):
        path.write_bytes(random.Random(0).randbytes(path.stat().st_size))
    return model


QUIZ_SPEC: dict[str, Any] = {
    "id": "my_quiz",
    "title": "My quiz",
    "dimension": "knowledge",
    "version": 1,
    "source": {"files": "quiz_data", "eval_split": "test", "id_field": "qid"},
    "fewshot": {"count": 1, "split": "train"},
    "prompt": {
        "template": "Q: {{ q }}\nA:",
        "choices": "options",
        "target": "options.index(gold)",
    },
    "mode": "choice",
    "metrics": ["acc", "acc_norm"],
}
QUIZ_TRAIN = [
    {"qid": "t1", "q": "What is frozen water?", "options": ["ice", "fire"], "gold": "ice"}
]
QUIZ_TEST = [
    {
        "qid": "q1",
        "q": "What color is the sky?",
        "options": ["blue", "green", "red"],
        "gold": "blue",
    },
    {"qid": "q2", "q": "How many legs has a cat?", "options": ["two", "four"], "gold": "four"},
    {
        "qid": "q3",
        "q": "Which is a fruit?",
        "options": ["stone", "apple", "chair"],
        "gold": "apple",
    },
    {"qid": "q4", "q": "What do bees make?", "options": ["honey", "milk"], "gold": "honey"},
]


def write_quiz(root: Path, spec: dict[str, Any] | None = None) -> Path:
    """A user spec file with its rows in a folder next to it (`source.files` is relative)."""
    write_rows(root / "quiz_data" / "train.jsonl", QUIZ_TRAIN)
    write_rows(root / "quiz_data" / "test.jsonl", QUIZ_TEST)
    path = root / "quiz.yaml"
    path.write_text(yaml.safe_dump(spec or QUIZ_SPEC, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def quiz_run(llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A user spec run with `--bench path/to/quiz.yaml`; its store seeds the error tests."""
    work = tmp_path_factory.mktemp("quiz")
    spec = write_quiz(work / "specs")
    store = work / "store.sqlite"
    proc = gnomon(*run_args(llama_dir, store, "--bench", spec, "--out", work / "out"))
    assert proc.returncode == 0, proc.stderr
    return {"proc": proc, "store": store, "out": work / "out"}


@pytest.fixture
def store(quiz_run: dict[str, Any], tmp_path: Path) -> Path:
    """A copy of a store holding one finished run, for tests that check it is left alone."""
    path = tmp_path / "store.sqlite"
    for suffix in ("", "-wal"):  # a checkpointed store has no -wal left, but be safe
        if Path(f"{quiz_run['store']}{suffix}").exists():
            shutil.copyfile(f"{quiz_run['store']}{suffix}", f"{path}{suffix}")
    return path


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A folder with a short path, for messages that quote a file and are long by themselves
    (pydantic lists every allowed value): the long-line wrap is its own test below."""
    path = Path(tempfile.mkdtemp(prefix="gn-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def assert_store_unchanged(store: Path) -> Iterator[None]:
    before = snapshot(store)
    yield
    assert snapshot(store) == before


# ------------------------------------------------------------------ user spec file (the good case)
def test_user_spec_file_runs(quiz_run: dict[str, Any]) -> None:
    assert "Traceback" not in quiz_run["proc"].stderr
    assert (
        "4 samples: 0 reused from the store, 0 re-scored from stored answers, 4 computed"
        in quiz_run["proc"].stdout
    )
    results = json.loads((quiz_run["out"] / "results.json").read_text(encoding="utf-8"))
    report = results["benchmarks"]["my_quiz"]
    assert (report["n"], report["shots"], report["complete"]) == (4, 1, True)
    assert set(report["metrics"]) == {"acc", "acc_norm"}
    for score in report["metrics"].values():
        assert score["ci95"][0] <= score["value"] <= score["ci95"][1]
    samples = read_rows(quiz_run["out"] / "samples.jsonl")
    assert [s["sample_id"] for s in samples] == ["q1", "q2", "q3", "q4"]
    for s in samples:
        row = QUIZ_TEST[s["index"]]
        assert s["sample_id"] == row["qid"]
        assert s["target"] == row["options"].index(row["gold"])
        assert len(s["choice_logprobs"]) == len(row["options"])
    with closing(sqlite3.connect(quiz_run["store"])) as db:
        prompt = db.execute("SELECT prompt FROM results WHERE sample_id = 'q2'").fetchone()[0]
    assert prompt == "Q: What is frozen water?\nA: ice\n\nQ: How many legs has a cat?\nA:"


# ------------------------------------------------------------------ names and paths
def test_unknown_benchmark_suggests_the_nearest(
    llama_dir: Path, store: Path, assert_store_unchanged: None
) -> None:
    proc = gnomon(*run_args(llama_dir, store, "--bench", "mmmlu"))
    expect_error(proc, "mmmlu", "did you mean mmlu")


def test_missing_spec_file(llama_dir: Path, store: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    expect_error(gnomon(*run_args(llama_dir, store, "--bench", missing)), str(missing))


def test_unknown_model_directory(
    data_root: Path, store: Path, tmp_path: Path, assert_store_unchanged: None
) -> None:
    missing = tmp_path / "no-such-model"
    proc = gnomon(*run_args(missing, store, "--bench", "mmlu", "--data", data_root))
    expect_error(proc, str(missing), "not found")


def test_directory_without_config_json(
    data_root: Path, store: Path, tmp_path: Path, assert_store_unchanged: None
) -> None:
    empty = tmp_path / "empty-model"
    empty.mkdir()
    (empty / "README.md").write_text("no model here\n")
    proc = gnomon(*run_args(empty, store, "--bench", "mmlu", "--data", data_root))
    expect_error(proc, "config.json")


def test_hub_model_id_offline_fails_fast(data_root: Path, store: Path) -> None:
    before = snapshot(store)
    started = time.monotonic()
    proc = gnomon(
        *run_args("hf:nonexistent-org/nonexistent-model", store, "--bench", "mmlu",
                  "--data", data_root, "--limit", 2),
        env={**ENV, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
        timeout=120,
    )  # fmt: skip
    assert time.monotonic() - started < 30
    expect_error(proc, "nonexistent-org/nonexistent-model", alone=False)
    after = snapshot(store)
    for table in TABLES:  # nothing added but, at most, a run recorded as failed
        assert set(before[table]) <= set(after[table])
    assert after["results"] == before["results"]
    with closing(sqlite3.connect(store)) as db:
        statuses = [r[0] for r in db.execute("SELECT status FROM runs")]
    assert "running" not in statuses


def test_corrupted_weights_file(poisoned_model: Path, data_root: Path, store: Path) -> None:
    proc = gnomon(*run_args(poisoned_model, store, "--bench", "mmlu", "--data", data_root,
                            "--limit", 2))  # fmt: skip
    assert proc.returncode != 0
    expect_error(proc, "cannot load model", alone=False)


# ------------------------------------------------------------------ spec files
def _mutated(change: str) -> dict[str, Any]:
    spec = copy.deepcopy(QUIZ_SPEC)
    if change == "no_choices":
        del spec["prompt"]["choices"]
    elif change == "cooking":
        spec["dimension"] = "cooking"
    elif change == "bad_metric":
        spec["metrics"] = ["acc", "exact_match"]
    elif change == "typo_field":
        spec["metric"] = spec.pop("metrics")
    elif change == "no_generation":
        spec.update(
            mode="generate", metrics=["exact_match"], prompt={"template": "x", "target": "q"}
        )
    elif change == "shots_without_split":
        spec["fewshot"] = {"count": 2}
    elif change == "bad_id":
        spec["id"] = "My Quiz!"
    return spec


@pytest.mark.parametrize(
    ("change", "needles"),
    [
        ("no_choices", ["prompt.choices"]),
        ("cooking", ["`dimension`", "knowledge"]),
        ("bad_metric", ["exact_match", "choice"]),
        ("typo_field", ["metric"]),
        ("no_generation", ["generation"]),
        ("shots_without_split", ["fewshot", "split"]),
        ("bad_id", ["`id`"]),
    ],
)
def test_malformed_spec_names_the_field(
    change: str,
    needles: list[str],
    poisoned_model: Path,
    store: Path,
    short_dir: Path,
    assert_store_unchanged: None,
) -> None:
    spec = write_quiz(short_dir, _mutated(change))
    proc = gnomon(*run_args(poisoned_model, store, "--bench", spec))
    expect_error(proc, str(spec), *needles)


def test_spec_yaml_syntax_error(
    poisoned_model: Path, store: Path, tmp_path: Path, assert_store_unchanged: None
) -> None:
    spec = write_quiz(tmp_path)
    spec.write_text("id: my_quiz\ntitle: My quiz\nprompt: {template: [unclosed\nmode: choice\n")
    proc = gnomon(*run_args(poisoned_model, store, "--bench", spec))
    message = expect_error(proc, "YAML")
    assert re.search(rf"{re.escape(str(spec))}:\d+", message), message


def test_spec_errors_also_reach_hub_show(short_dir: Path) -> None:
    spec = write_quiz(short_dir, _mutated("cooking"))
    expect_error(gnomon("hub", "show", spec), str(spec), "`dimension`")


# ------------------------------------------------------------------ data rows
def _mmlu_copy(data_root: Path, dest: Path) -> Path:
    shutil.copytree(data_root / "mmlu", dest)
    return dest


def _break(data: Path, how: str) -> str:
    """Damage one row of test.jsonl; returns the `file:line` the error must name."""
    path = data / "test.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    if how == "invalid_json":
        lines[2] = lines[2][:-5]
        line = 3
    elif how == "missing_question":
        row = json.loads(lines[1])
        del row["question"]
        lines[1] = json.dumps(row)
        line = 2
    else:  # "answer_7"
        row = json.loads(lines[3])
        row["answer"] = 7
        lines[3] = json.dumps(row)
        line = 4
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return f"{path}:{line}"


@pytest.mark.parametrize(
    ("how", "needle"),
    [
        ("invalid_json", "JSON"),
        ("missing_question", "question"),
        ("answer_7", "7"),
    ],
)
def test_malformed_data_row_names_file_and_line_before_loading_the_model(
    how: str,
    needle: str,
    poisoned_model: Path,
    data_root: Path,
    store: Path,
    tmp_path: Path,
    assert_store_unchanged: None,
) -> None:
    data = _mmlu_copy(data_root, tmp_path / "mmlu")
    where = _break(data, how)
    proc = gnomon(*run_args(poisoned_model, store, "--bench", "mmlu", "--data", data))
    # The poisoned weights would fail to load: reporting the row proves it came first.
    expect_error(proc, where, needle)


def test_data_directory_missing(
    poisoned_model: Path, store: Path, tmp_path: Path, assert_store_unchanged: None
) -> None:
    missing = tmp_path / "no-data"
    proc = gnomon(*run_args(poisoned_model, store, "--bench", "mmlu", "--data", missing))
    expect_error(proc, str(missing))


def test_data_directory_without_the_split_file(
    poisoned_model: Path, store: Path, tmp_path: Path, assert_store_unchanged: None
) -> None:
    data = tmp_path / "data"
    write_rows(data / "dev.jsonl", [])  # the few-shot split alone
    proc = gnomon(*run_args(poisoned_model, store, "--bench", "mmlu", "--data", data))
    expect_error(proc, "test.jsonl", str(data))


# ------------------------------------------------------------------ store files
def test_corrupted_store_file_is_refused_and_untouched(
    poisoned_model: Path, data_root: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "store.sqlite"
    bad.write_bytes(random.Random(1).randbytes(16384))
    before = bad.read_bytes()
    proc = gnomon(*run_args(poisoned_model, bad, "--bench", "mmlu", "--data", data_root))
    expect_error(proc, str(bad))
    expect_error(gnomon("runs", "list", "--store", bad), str(bad))
    assert bad.read_bytes() == before


def _foreign_db(path: Path) -> bytes:
    with closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE recipes (name TEXT, minutes INTEGER)")
        db.execute("INSERT INTO recipes VALUES ('soup', 30)")
        db.commit()
    return path.read_bytes()


def test_foreign_sqlite_database_is_refused(
    poisoned_model: Path, data_root: Path, tmp_path: Path
) -> None:
    foreign = tmp_path / "recipes.db"
    before = _foreign_db(foreign)
    proc = gnomon(*run_args(poisoned_model, foreign, "--bench", "mmlu", "--data", data_root))
    expect_error(proc, str(foreign), "not a gnomon store")
    expect_error(gnomon("runs", "list", "--store", foreign), "not a gnomon store")
    with closing(sqlite3.connect(foreign)) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        assert tables == ["recipes"]
        assert db.execute("SELECT * FROM recipes").fetchall() == [("soup", 30)]
    assert foreign.read_bytes() == before  # not even switched to WAL
    assert not Path(f"{foreign}-wal").exists()


def test_runs_show_unknown_run(store: Path, assert_store_unchanged: None) -> None:
    expect_error(gnomon("runs", "show", "no-such-run", "--store", store), "no-such-run")


# ------------------------------------------------------------------ options
@pytest.mark.parametrize(
    "bad", [("--limit", "0"), ("--batch-size", "0"), ("--shots", "-1")], ids=lambda b: b[0]
)
def test_out_of_range_options_are_rejected(
    bad: tuple[str, str], poisoned_model: Path, data_root: Path, store: Path
) -> None:
    proc = gnomon(*run_args(poisoned_model, store, "--bench", "mmlu", "--data", data_root, *bad))
    expect_error(proc, bad[0])


# ------------------------------------------------------------------ how messages are printed
@pytest.mark.parametrize("kind", ["data_dir", "bench"])
def test_messages_are_printed_verbatim(
    kind: str, poisoned_model: Path, store: Path, tmp_path: Path
) -> None:
    if kind == "data_dir":
        missing = tmp_path / "runs [v2]"
        proc = gnomon(*run_args(poisoned_model, store, "--bench", "mmlu", "--data", missing))
        expect_error(proc, str(missing))
    else:
        proc = gnomon(*run_args(poisoned_model, store, "--bench", "mmlu[/]"))
        expect_error(proc, "mmlu[/]")


def test_long_message_stays_on_one_line(poisoned_model: Path, store: Path, tmp_path: Path) -> None:
    missing = tmp_path / ("d" * 120) / ("e" * 100)
    proc = gnomon(*run_args(poisoned_model, store, "--bench", "mmlu", "--data", missing))
    expect_error(proc, str(missing))


# ------------------------------------------------------------------ context window
def test_prompt_longer_than_the_context_is_truncated_and_reported(
    llama_dir: Path, data_root: Path, tmp_path: Path
) -> None:
    # The Llama fixture with a 64-token window (what build_model(max_positions=64) writes; RoPE
    # weights do not depend on it): every 5-shot mmlu prompt is longer than that.
    model = tmp_path / "short"
    shutil.copytree(llama_dir, model)
    for name, key in (("config.json", "max_position_embeddings"),
                      ("tokenizer_config.json", "model_max_length")):  # fmt: skip
        config = json.loads((model / name).read_text())
        config[key] = 64
        (model / name).write_text(json.dumps(config))
    out = tmp_path / "out"
    proc = gnomon(*run_args(model, tmp_path / "s.sqlite", "--bench", "mmlu", "--data", data_root,
                            "--limit", 6, "--out", out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["engine"]["max_length"] == "64"
    report = results["benchmarks"]["mmlu"]
    samples = read_rows(out / "samples.jsonl")
    assert report["n"] == 6
    assert 0 < report["truncated"] <= 6
    assert report["truncated"] == sum(s["truncated"] for s in samples)
    assert f"{report['truncated']} truncated" in proc.stdout
    for s in samples:
        assert all(lp <= 0 for lp in s["choice_logprobs"])
