"""Cache and resume through the real `gnomon` command: reuse, prompt hashes, kill -9 and Ctrl-C."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from gnomon_cli import ENV, GNOMON, gnomon, ok, summary

pytestmark = pytest.mark.slow

N_BIG = 120  # mmlu rows for the interrupt tests: several seconds at batch size 2


def run_args(model: Path, store: Path, *extra: object) -> list[object]:
    return ["run", "--model", f"hf:{model}", "--store", store, "--device", "cpu",
            "--dtype", "float32", *extra]  # fmt: skip


def read_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def runs_table(store: Path) -> list[dict[str, Any]]:
    with closing(sqlite3.connect(store)) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM runs ORDER BY created")]


def stored_results(store: Path) -> int:
    """Results committed so far, read through a read-only connection (the writer may be live)."""
    if not store.exists():
        return 0
    try:
        with closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5)) as db:
            return db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet, or briefly locked
        return 0


def poison_weights(model_dir: Path) -> None:
    """Overwrite the weights with garbage of the same size and timestamps: the model's identity
    (config, tokenizer, weight sizes and mtimes) is unchanged, but loading it would fail."""
    weights = list(model_dir.glob("*.safetensors"))
    assert weights
    for path in weights:
        st = path.stat()
        path.write_bytes(os.urandom(st.st_size))
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


# ------------------------------------------------------------------ reuse
def test_reuse_without_loading_the_model_limit_prefix_and_shots(
    llama_dir: Path, data_root: Path, tmp_path: Path
) -> None:
    """One store, four runs: the same command again (the model made unloadable in between), a
    full run after --limit 5, and a different --shots."""
    model = tmp_path / "model"
    shutil.copytree(llama_dir, model)
    store = tmp_path / "store.sqlite"
    limited = ("--bench", "mmlu,hellaswag,gsm8k", "--data", data_root, "--limit", 5)
    first = ok(gnomon(*run_args(model, store, *limited, "--out", tmp_path / "a")))
    assert summary(first.stdout) == (15, 0, 15)

    # Same command again, with the weights replaced by garbage of the same size and mtime: the
    # model's identity is unchanged, so this only succeeds if the model is never loaded.
    weights = {p: (p.read_bytes(), p.stat()) for p in model.glob("*.safetensors")}
    poison_weights(model)
    second = ok(gnomon(*run_args(model, store, *limited, "--out", tmp_path / "a2")))
    assert summary(second.stdout) == (15, 15, 0)
    assert "loading" not in second.stderr
    samples_a = (tmp_path / "a" / "samples.jsonl").read_bytes()
    assert samples_a == (tmp_path / "a2" / "samples.jsonl").read_bytes()
    results = [
        json.loads((tmp_path / name / "results.json").read_text(encoding="utf-8"))
        for name in ("a", "a2")
    ]
    assert results[0]["benchmarks"] == results[1]["benchmarks"]
    assert results[0]["run_id"] != results[1]["run_id"]
    runs = runs_table(store)
    assert [r["status"] for r in runs] == ["complete", "complete"]
    assert runs[0]["tokens"] > 0 and runs[0]["computed"] == 15
    assert (runs[1]["tokens"], runs[1]["computed"], runs[1]["reused"]) == (0, 0, 15)
    for path, (data, st) in weights.items():  # put the real weights back, same identity
        path.write_bytes(data)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))

    # --limit 5 then the full benchmark: the first five are reused, byte for byte.
    mmlu = ("--bench", "mmlu", "--data", data_root)
    n_rows = len(read_rows(data_root / "mmlu" / "test.jsonl"))
    full = ok(gnomon(*run_args(model, store, *mmlu, "--out", tmp_path / "b")))
    assert summary(full.stdout) == (n_rows, 5, n_rows - 5)
    first5 = [s for s in read_rows(tmp_path / "a" / "samples.jsonl") if s["benchmark"] == "mmlu"]
    everything = sorted(read_rows(tmp_path / "b" / "samples.jsonl"), key=lambda s: s["index"])
    assert len(everything) == n_rows
    assert everything[:5] == sorted(first5, key=lambda s: s["index"])

    # Another shot count is another prompt: a new hash, everything computed again.
    one_shot = ok(
        gnomon(*run_args(model, store, *mmlu, "--limit", 5, "--shots", 1, "--out", tmp_path / "c"))
    )
    assert summary(one_shot.stdout) == (5, 0, 5)
    reports = {
        name: json.loads((tmp_path / name / "results.json").read_text())["benchmarks"]["mmlu"]
        for name in "abc"
    }
    assert reports["a"]["prompt_hash"] == reports["b"]["prompt_hash"]
    assert reports["c"]["prompt_hash"] != reports["a"]["prompt_hash"]
    assert (reports["a"]["shots"], reports["c"]["shots"]) == (5, 1)
    with closing(sqlite3.connect(store)) as db:
        prompts = dict(db.execute("SELECT prompt_hash, prompt FROM results WHERE idx = 0 "
                                  "AND bench = 'mmlu'").fetchall())  # fmt: skip
    assert prompts[reports["a"]["prompt_hash"]].count("Answer:") == 6
    assert prompts[reports["c"]["prompt_hash"]].count("Answer:") == 2


# ------------------------------------------------------------------ interrupts
@pytest.fixture(scope="module")
def big_mmlu(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gnomon.tiny import write_synthetic_data

    root = tmp_path_factory.mktemp("big")
    write_synthetic_data(root, sizes={"mmlu": {"test": N_BIG, "dev": 5}})
    return root / "mmlu"


def big_args(model: Path, data: Path, store: Path, *extra: object) -> list[str]:
    args = run_args(model, store, "--bench", "mmlu", "--data", data, "--batch-size", 2, *extra)
    return [str(GNOMON), *map(str, args)]


@pytest.fixture(scope="module")
def reference(
    llama_dir: Path, big_mmlu: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The same benchmark, uninterrupted, in a store of its own."""
    work = tmp_path_factory.mktemp("reference")
    args = big_args(llama_dir, big_mmlu, work / "store.sqlite", "--out", work / "out")
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300, env=ENV)
    ok(proc)
    assert summary(proc.stdout) == (N_BIG, 0, N_BIG)
    return {
        "results": json.loads((work / "out" / "results.json").read_text(encoding="utf-8")),
        "samples": {s["sample_id"]: s for s in read_rows(work / "out" / "samples.jsonl")},
    }


def start_and_wait_for_results(
    args: list[str], store: Path, logs: Path, at_least: int
) -> subprocess.Popen[bytes]:
    """Start a run and return once `at_least` results are committed (the run still going)."""
    logs.mkdir()
    with (logs / "stdout").open("wb") as out, (logs / "stderr").open("wb") as err:
        proc = subprocess.Popen(args, stdout=out, stderr=err, env=ENV)
    deadline = time.monotonic() + 120
    while stored_results(store) < at_least:
        assert proc.poll() is None, (logs / "stderr").read_text()
        assert time.monotonic() < deadline, "no results were stored in time"
        time.sleep(0.03)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    return proc


def test_ctrl_c_then_kill_9_then_resume_matches_an_uninterrupted_run(
    llama_dir: Path, big_mmlu: Path, tmp_path: Path, reference: dict[str, Any]
) -> None:
    store = tmp_path / "store.sqlite"
    args = big_args(llama_dir, big_mmlu, store)

    # 1. Ctrl-C: exit 130, one line saying so, no traceback; the run is marked interrupted and
    # what was computed stays in the store.
    proc = start_and_wait_for_results(args, store, tmp_path / "sigint", at_least=10)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    stderr = (tmp_path / "sigint" / "stderr").read_text()
    assert "Traceback" not in stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert sum("interrupted" in ln for ln in lines) == 1, stderr
    assert "interrupted" in lines[-1]
    after_sigint = stored_results(store)
    assert 10 <= after_sigint < N_BIG
    (run,) = runs_table(store)
    assert run["status"] == "interrupted"
    assert run["finished"] is not None
    assert run["computed"] == after_sigint

    # 2. Resume, then kill -9 mid-way: the file stays a sound database, batches committed so far
    # survive, and the run stays marked running (it never finished).
    proc = start_and_wait_for_results(args, store, tmp_path / "sigkill", after_sigint + 10)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    after_kill = stored_results(store)
    assert after_sigint + 10 <= after_kill < N_BIG
    with closing(sqlite3.connect(store)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        killed_id, linked = db.execute(
            "SELECT run_id, COUNT(*) FROM run_results GROUP BY run_id ORDER BY COUNT(*) DESC"
        ).fetchone()
    runs = {r["run_id"]: r for r in runs_table(store)}
    assert sorted(r["status"] for r in runs.values()) == ["interrupted", "running"]
    assert runs[killed_id]["status"] == "running"
    assert runs[killed_id]["finished"] is None
    assert linked == after_kill  # reused ones linked at the start, the rest batch by batch
    assert runs[killed_id]["computed"] == after_kill - after_sigint

    # 3. The same command completes, reusing exactly what is stored.
    resumed = subprocess.run(
        [*args, "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=300,
        env=ENV,
    )
    ok(resumed)
    assert summary(resumed.stdout) == (N_BIG, after_kill, N_BIG - after_kill)
    statuses = sorted(r["status"] for r in runs_table(store))
    assert statuses == ["complete", "interrupted", "running"]

    # 4. ... with the scores and every log-probability of an uninterrupted run.
    results = json.loads((tmp_path / "out" / "results.json").read_text(encoding="utf-8"))
    mine, ref = results["benchmarks"]["mmlu"], reference["results"]["benchmarks"]["mmlu"]
    assert mine["n"] == ref["n"] == N_BIG
    assert mine["prompt_hash"] == ref["prompt_hash"]
    for name, score in ref["metrics"].items():
        assert mine["metrics"][name]["value"] == pytest.approx(score["value"], abs=1e-12)
        assert mine["metrics"][name]["ci95"] == pytest.approx(score["ci95"], abs=1e-9)
    for subject, score in ref["clusters"]["acc"].items():
        assert mine["clusters"]["acc"][subject]["value"] == pytest.approx(score["value"])
    samples = {s["sample_id"]: s for s in read_rows(tmp_path / "out" / "samples.jsonl")}
    assert samples.keys() == reference["samples"].keys()
    for sample_id, expected in reference["samples"].items():
        got = samples[sample_id]
        assert (got["index"], got["prediction"], got["target"], got["correct"]) == (
            expected["index"], expected["prediction"], expected["target"], expected["correct"]
        )  # fmt: skip
        assert len(got["choice_logprobs"]) == len(expected["choice_logprobs"]) == 4
        for a, b in zip(got["choice_logprobs"], expected["choice_logprobs"], strict=True):
            # 1e-6 relative: samples computed in other batches and prefix groups than in the
            # uninterrupted run differ by a few float32 ulps (up to ~5e-6 absolute at -15).
            assert math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6), (sample_id, a, b)


def test_ctrl_c_while_the_model_loads_exits_130(
    llama_dir: Path, data_root: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store.sqlite"
    args = run_args(llama_dir, store, "--bench", "mmlu", "--data", data_root)
    proc = subprocess.Popen(
        [str(GNOMON), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith("loading"):
            proc.send_signal(signal.SIGINT)
            break
    _, rest = proc.communicate(timeout=60)
    stderr = "".join(seen) + rest
    assert any(ln.startswith("loading") for ln in seen), stderr
    assert "Traceback" not in stderr
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    assert all(r["status"] != "running" for r in runs_table(store))
