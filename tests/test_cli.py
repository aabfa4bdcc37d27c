"""The `gnomon` command end to end: the real console script in a subprocess, tiny models, offline.

One module-scoped run evaluates the Llama fixture on all five built-in benchmarks (both modes);
the tests below check its results.json and samples.jsonl against the data files row by row, and
use its store for `gnomon runs list/show`.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from gnomon_cli import gnomon, ok, summary

pytestmark = pytest.mark.slow

BENCHES = ["mmlu", "arc_easy", "arc_challenge", "hellaswag", "gsm8k"]
EVAL_SPLIT = {
    "mmlu": "test",
    "arc_easy": "test",
    "arc_challenge": "test",
    "hellaswag": "validation",
    "gsm8k": "test",
}
CHOICE_BENCHES = ["mmlu", "arc_easy", "arc_challenge", "hellaswag"]
MMLU_INTRO = "The following are multiple choice questions (with answers) about"


def read_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def argmax(values: list[float]) -> int:
    return max(range(len(values)), key=lambda i: (values[i], -i))


def expected_target(bench: str, row: dict[str, Any]) -> int | str:
    if bench == "mmlu":
        return row["answer"]
    if bench.startswith("arc_"):
        return row["choices"]["label"].index(row["answerKey"])
    if bench == "hellaswag":
        return int(row["label"])
    return row["answer"]  # gsm8k: the whole reference solution is the target text


def expected_sample_id(bench: str, row: dict[str, Any], index: int) -> str:
    if bench.startswith("arc_"):
        return row["id"]
    if bench == "hellaswag":
        return str(row["ind"])
    return str(index)  # no id field: the row's position


def n_choices(bench: str, row: dict[str, Any]) -> int:
    if bench.startswith("arc_"):
        return len(row["choices"]["text"])
    return 4  # mmlu letters, hellaswag endings


def check_score(score: dict[str, Any], n: int) -> None:
    value, stderr, (low, high) = score["value"], score["stderr"], score["ci95"]
    assert 0.0 <= value <= 1.0
    assert isinstance(stderr, float) and stderr >= 0.0
    assert 0.0 <= low <= value <= high <= 1.0
    assert score["n"] == n


def run_args(model: Path, store: Path, *extra: object) -> list[object]:
    return ["run", "--model", f"hf:{model}", "--store", store, "--device", "cpu",
            "--dtype", "float32", *extra]  # fmt: skip


@pytest.fixture(scope="module")
def full_run(
    llama_dir: Path, data_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """All five benchmarks in one run of the Llama fixture, written with --out."""
    work = tmp_path_factory.mktemp("e2e")
    store, out = work / "store.sqlite", work / "out"
    proc = ok(
        gnomon(
            *run_args(
                llama_dir, store, "--bench", ",".join(BENCHES), "--data", data_root, "--out", out
            )
        )  # fmt: skip
    )
    return {
        "proc": proc,
        "store": store,
        "results": json.loads((out / "results.json").read_text(encoding="utf-8")),
        "samples": read_rows(out / "samples.jsonl"),
        "data": {b: read_rows(data_root / b / f"{EVAL_SPLIT[b]}.jsonl") for b in BENCHES},
    }


def test_full_run_summary_and_status(full_run: dict[str, Any]) -> None:
    total = sum(len(rows) for rows in full_run["data"].values())
    assert summary(full_run["proc"].stdout) == (total, 0, total)
    results = full_run["results"]
    assert results["status"] == "complete"
    assert list(results["benchmarks"]) == BENCHES
    with sqlite3.connect(full_run["store"]) as db:
        status, computed, tokens = db.execute(
            "SELECT status, computed, tokens FROM runs"
        ).fetchone()
    assert (status, computed) == ("complete", total)
    assert tokens > 0


@pytest.mark.parametrize("bench", BENCHES)
def test_results_json_scores(full_run: dict[str, Any], bench: str) -> None:
    report = full_run["results"]["benchmarks"][bench]
    rows = full_run["data"][bench]
    samples = [s for s in full_run["samples"] if s["benchmark"] == bench]
    assert report["n"] == report["planned"] == len(rows)
    assert report["complete"] is True
    assert report["truncated"] == 0
    assert re.fullmatch(r"[0-9a-f]{16}", report["prompt_hash"])
    assert {s["prompt_hash"] for s in samples} == {report["prompt_hash"]}
    expected_metrics = {"acc"} if bench == "mmlu" else {"acc", "acc_norm"}
    if bench == "gsm8k":
        expected_metrics = {"exact_match", "exact_match_flexible"}
    assert set(report["metrics"]) == expected_metrics
    for name, score in report["metrics"].items():
        check_score(score, len(rows))
        mean = sum(s["metrics"][name] for s in samples) / len(samples)
        assert math.isclose(score["value"], mean, abs_tol=1e-12), name
    main = "exact_match" if bench == "gsm8k" else "acc"
    correct = sum(s["correct"] for s in samples) / len(samples)
    assert math.isclose(report["metrics"][main]["value"], correct, abs_tol=1e-12)


def test_mmlu_per_subject_clusters(full_run: dict[str, Any]) -> None:
    report = full_run["results"]["benchmarks"]["mmlu"]
    rows = full_run["data"]["mmlu"]
    samples = [s for s in full_run["samples"] if s["benchmark"] == "mmlu"]
    subjects = sorted({r["subject"] for r in rows})
    assert report["cluster_by"] == "subject"
    assert report["metrics"]["acc"]["n_clusters"] == len(subjects)
    per = report["clusters"]["acc"]
    assert sorted(per) == subjects
    for subject in subjects:
        mine = [s for s in samples if s["cluster"] == subject]
        check_score(per[subject], sum(r["subject"] == subject for r in rows))
        assert math.isclose(per[subject]["value"], sum(s["correct"] for s in mine) / len(mine))


@pytest.mark.parametrize("bench", BENCHES)
def test_samples_match_data_files(full_run: dict[str, Any], bench: str) -> None:
    rows = full_run["data"][bench]
    samples = [s for s in full_run["samples"] if s["benchmark"] == bench]
    assert sorted(s["index"] for s in samples) == list(range(len(rows)))
    for s in samples:
        row = rows[s["index"]]
        assert s["sample_id"] == expected_sample_id(bench, row, s["index"])
        assert s["target"] == expected_target(bench, row)
        assert s["truncated"] is False
        if bench == "mmlu":
            assert s["cluster"] == row["subject"]
        if bench in CHOICE_BENCHES:
            logprobs = s["choice_logprobs"]
            assert len(logprobs) == n_choices(bench, row)
            assert all(math.isfinite(lp) and lp <= 0.0 for lp in logprobs)
            assert s["prediction"] == argmax(logprobs)
            assert s["correct"] == (s["prediction"] == s["target"])
            assert s["metrics"]["acc"] == float(s["correct"])
            assert "output" not in s
        else:
            assert isinstance(s["output"], str)
            assert set(s["extracted"]) == {"strict", "flexible"}
            assert s["prediction"] == s["extracted"]["strict"]
            assert s["correct"] == bool(s["metrics"]["exact_match"])
            assert "choice_logprobs" not in s


def test_choice_predictions_are_not_constant(full_run: dict[str, Any]) -> None:
    """A model that always answers the same letter would hide a scoring bug behind chance."""
    mmlu = [s["prediction"] for s in full_run["samples"] if s["benchmark"] == "mmlu"]
    assert len(set(mmlu)) > 1


def test_qwen2_model_one_benchmark(qwen2_dir: Path, data_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = ok(
        gnomon(
            *run_args(
                qwen2_dir,
                tmp_path / "s.sqlite",
                "--bench",
                "arc_easy",
                "--data",
                data_root,
                "--limit",
                12,
                "--out",
                out,
            )
        )  # fmt: skip
    )
    rows = read_rows(data_root / "arc_easy" / "test.jsonl")[:12]
    assert summary(proc.stdout) == (len(rows), 0, len(rows))
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert str(qwen2_dir) in results["model"]
    report = results["benchmarks"]["arc_easy"]
    assert report["n"] == len(rows)
    for name in ("acc", "acc_norm"):
        check_score(report["metrics"][name], len(rows))
    samples = read_rows(out / "samples.jsonl")
    assert len(samples) == len(rows)
    for s in samples:
        row = rows[s["index"]]
        assert s["target"] == expected_target("arc_easy", row)
        assert len(s["choice_logprobs"]) == len(row["choices"]["text"])
        assert all(lp <= 0 for lp in s["choice_logprobs"])
        assert s["prediction"] == argmax(s["choice_logprobs"])
    acc = sum(s["correct"] for s in samples) / len(samples)
    assert math.isclose(report["metrics"]["acc"]["value"], acc)


# ------------------------------------------------------------------ runs list / runs show
def test_runs_list(full_run: dict[str, Any]) -> None:
    run_id = full_run["results"]["run_id"]
    proc = ok(gnomon("runs", "list", "--store", full_run["store"]))
    assert run_id in proc.stdout
    assert "complete" in proc.stdout
    assert "mmlu,arc_easy,arc_challenge,hellaswag,gsm8k" in proc.stdout


def test_runs_list_empty_store(tmp_path: Path) -> None:
    proc = ok(gnomon("runs", "list", "--store", tmp_path / "empty.sqlite"))
    assert "no runs" in proc.stdout


def test_runs_show_scores(full_run: dict[str, Any]) -> None:
    results = full_run["results"]
    run_id = results["run_id"]
    proc = ok(gnomon("runs", "show", run_id[:-2], "--store", full_run["store"]))  # a prefix
    assert run_id in proc.stdout
    for bench, report in results["benchmarks"].items():
        line = next(ln for ln in proc.stdout.splitlines() if f" {bench} " in ln)
        first_metric = next(iter(report["metrics"].values()))
        assert f"{first_metric['value']:.4f}" in line
        assert report["prompt_hash"] in line
    assert "batch_size=8" in proc.stdout
    assert "#0" not in proc.stdout  # no samples unless asked


def test_runs_show_samples_print_prompts(full_run: dict[str, Any]) -> None:
    run_id = full_run["results"]["run_id"]
    proc = ok(
        gnomon(
            "runs", "show", run_id, "--store", full_run["store"], "--samples", 2, "--bench", "mmlu"
        )  # fmt: skip
    )
    assert "mmlu #0" in proc.stdout and "mmlu #1" in proc.stdout
    assert "mmlu #2" not in proc.stdout
    first = full_run["data"]["mmlu"][0]
    subject = first["subject"].replace("_", " ")
    assert f"{MMLU_INTRO} {subject}." in proc.stdout
    flat = " ".join(proc.stdout.split())
    assert " ".join(first["question"].split()) in flat
    assert proc.stdout.count("prediction=") == 2


def test_runs_show_wrong_only(full_run: dict[str, Any]) -> None:
    run_id = full_run["results"]["run_id"]
    proc = ok(
        gnomon(
            "runs",
            "show",
            run_id,
            "--store",
            full_run["store"],
            "--samples",
            3,
            "--bench",
            "arc_easy",
            "--wrong",
        )  # fmt: skip
    )
    wrong = [s for s in full_run["samples"] if s["benchmark"] == "arc_easy" and not s["correct"]]
    wrong.sort(key=lambda s: s["index"])
    assert proc.stdout.count("prediction=") == min(3, len(wrong))
    assert "✓" not in proc.stdout
    for s in wrong[:3]:
        assert f"arc_easy #{s['index']} " in proc.stdout


# ------------------------------------------------------------------ hub
def test_hub_list() -> None:
    proc = ok(gnomon("hub", "list"))
    for bench in BENCHES:
        assert re.search(rf"\b{bench}\b", proc.stdout), bench


def _shown_prompt(stdout: str) -> str:
    """The text between the "example prompt" rule and the ⏎ end marker."""
    lines = stdout.splitlines()
    start = next(i for i, ln in enumerate(lines) if "example prompt" in ln) + 1
    end = next(i for i in range(start, len(lines)) if lines[i].endswith("⏎"))
    return "\n".join([*lines[start:end], lines[end].removesuffix("⏎")])


def test_hub_show_mmlu_with_local_data(data_root: Path) -> None:
    proc = ok(gnomon("hub", "show", "mmlu", "--data", data_root / "mmlu"))
    assert "made-up" not in proc.stdout
    prompt = _shown_prompt(proc.stdout)
    assert prompt.startswith(MMLU_INTRO)
    assert prompt.endswith("Answer:")
    # Rebuild the exact 5-shot prompt from the files: first five dev rows of the same subject.
    test_row = read_rows(data_root / "mmlu" / "test.jsonl")[0]
    dev = [r for r in read_rows(data_root / "mmlu" / "dev.jsonl")
           if r["subject"] == test_row["subject"]][:5]  # fmt: skip

    def block(row: dict[str, Any]) -> str:
        options = "\n".join(f"{'ABCD'[i]}. {c}" for i, c in enumerate(row["choices"]))
        return f"{row['question'].strip()}\n{options}\nAnswer:"

    subject = test_row["subject"].replace("_", " ")
    expected = f"{MMLU_INTRO} {subject}.\n\n" + "\n\n".join(
        [*(f"{block(r)} {'ABCD'[r['answer']]}" for r in dev), block(test_row)]
    )
    # Compare modulo whitespace so a terminal-width wrap cannot fail the test.
    assert " ".join(prompt.split()) == " ".join(expected.split())
    assert len(re.findall(r"\nAnswer: [ABCD]\n", prompt)) == 5


def test_hub_show_without_data_falls_back_offline() -> None:
    proc = ok(gnomon("hub", "show", "mmlu", timeout=120))
    assert "made-up" in proc.stdout
    prompt = _shown_prompt(proc.stdout)
    assert prompt.startswith(MMLU_INTRO)
    assert prompt.endswith("Answer:")
    assert len(re.findall(r"\nAnswer: [ABCD]\n", prompt)) == 5


def test_hub_show_shots_override(data_root: Path) -> None:
    proc = ok(gnomon("hub", "show", "mmlu", "--data", data_root / "mmlu", "--shots", 0))
    prompt = _shown_prompt(proc.stdout)
    assert prompt.startswith(MMLU_INTRO)
    assert prompt.count("Answer:") == 1
