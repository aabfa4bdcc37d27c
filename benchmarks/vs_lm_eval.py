#!/usr/bin/env python
"""gnomon vs lm-evaluation-harness: the same model, the same 5-shot MMLU-format rows, one machine.

Both tools run as command-line subprocesses, so start-up (imports, task indexing, model loading)
counts the same way it does for a user; runs alternate between the tools and the median of each
is reported. Per-sample predictions must be identical: the script exits 1 if they are not.

    python benchmarks/vs_lm_eval.py                 # 256-wide 4-layer Llama, 1000 questions, 3 runs
    python benchmarks/vs_lm_eval.py --quick         # smaller model, 40 questions, 1 run, no warm-up
    python benchmarks/vs_lm_eval.py --threads 1     # one torch thread each: steadier when busy
    python benchmarks/vs_lm_eval.py --json out.json # also write the figures as JSON

"As the tool reports" is gnomon's stored run time (from planning, including its lazy import of
transformers and the model load) and lm-eval's `total_evaluation_time_seconds` (from its tracker's
creation: task indexing, model load, evaluation); the wall time is the one to compare.

Everything is built offline under --workdir (default `.bench/`, git-ignored): a random-weight
Llama-architecture checkpoint from `gnomon.tiny`, synthetic rows in the cais/mmlu schema, and for
lm-eval one task per subject that includes lm-eval's own `mmlu_<subject>.yaml` unchanged and only
points its dataset at the same rows as local JSON files.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import statistics
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from gnomon_side import OFFLINE_ENV, RunFailed, gnomon_command, run_logged
from lm_eval_side import TokenCounter, first_argmax


@dataclass(frozen=True)
class Setup:
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    vocab_size: int
    max_positions: int
    questions: int  # MMLU test rows, spread over the 4 synthetic subjects; dev has 5 per subject

    @property
    def tag(self) -> str:
        return (
            f"llama-h{self.hidden_size}-l{self.num_layers}-a{self.num_heads}kv{self.num_kv_heads}"
            f"-v{self.vocab_size}-p{self.max_positions}"
        )


FULL = Setup(256, 4, 8, 4, 4096, 2048, 1000)
QUICK = Setup(128, 2, 4, 2, 2048, 2048, 40)


@dataclass
class ToolRuns:
    wall_s: list[float] = field(default_factory=list)  # subprocess start to exit
    tool_s: list[float] = field(default_factory=list)  # the time the tool itself reports
    tokens: int | None = None  # tokens through the model (non-padding)
    padded_tokens: int | None = None  # including padding positions, where known
    accuracy: float | None = None
    predictions: list[dict[int, int]] = field(default_factory=list)  # per run: row -> choice
    logprobs: dict[int, list[float]] = field(default_factory=dict)  # first run: row -> per choice

    @property
    def median_wall_s(self) -> float:
        return statistics.median(self.wall_s)

    @property
    def median_tool_s(self) -> float:
        return statistics.median(self.tool_s)


# ---------------------------------------------------------------------------- preparation
def build_model(workdir: Path, setup: Setup) -> Path:
    from gnomon.tiny import build_model as tiny_build

    model_dir = workdir / setup.tag
    stamp = model_dir / "bench_setup.json"
    wanted = json.dumps(asdict(setup) | {"questions": None}, sort_keys=True)
    if stamp.is_file() and stamp.read_text() == wanted and (model_dir / "config.json").is_file():
        return model_dir
    shutil.rmtree(model_dir, ignore_errors=True)
    print(f"building {model_dir} ...", flush=True)
    tiny_build(
        model_dir,
        "llama",
        hidden_size=setup.hidden_size,
        num_layers=setup.num_layers,
        num_heads=setup.num_heads,
        num_kv_heads=setup.num_kv_heads,
        vocab_size=setup.vocab_size,
        max_positions=setup.max_positions,
        seed=0,
    )
    stamp.write_text(wanted)
    return model_dir


def write_data(workdir: Path, setup: Setup) -> tuple[Path, Path, list[str], dict[str, list[int]]]:
    """gnomon's data dir, lm-eval's task dir, the lm-eval task names, and for each task the
    gnomon row index (position in test.jsonl) of each of its docs, in doc order."""
    import lm_eval

    from gnomon.tiny import MMLU_SUBJECTS, write_synthetic_data

    root = workdir / f"data-mmlu-{setup.questions}"
    data_dir = root / "gnomon" / "mmlu"
    write_synthetic_data(root / "gnomon", sizes={"mmlu": {"test": setup.questions}})
    tasks_dir = root / "lm_eval_tasks"
    shutil.rmtree(tasks_dir, ignore_errors=True)
    tasks_dir.mkdir(parents=True)
    own_yaml_dir = Path(lm_eval.__file__).parent / "tasks" / "mmlu" / "default"
    tasks: list[str] = []
    rows_of: dict[str, list[int]] = {}
    for subject in sorted(MMLU_SUBJECTS):
        task = f"gnomon_bench_mmlu_{subject}"
        files = {}
        for split in ("test", "dev"):
            lines = (data_dir / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
            mine = [
                (i, line) for i, line in enumerate(lines) if json.loads(line)["subject"] == subject
            ]
            files[split] = tasks_dir / f"{subject}_{split}.jsonl"
            files[split].write_text("".join(line + "\n" for _, line in mine), encoding="utf-8")
            if split == "test":
                rows_of[task] = [i for i, _ in mine]
        config = {
            # lm-eval's own subject task (its template, description, first_n dev shots), unchanged
            "include": str(own_yaml_dir / f"mmlu_{subject}.yaml"),
            "task": task,
            "tag": [],  # do not join lm-eval's mmlu_*_tasks tags
            # ... except that the rows come from the same local files gnomon reads
            "dataset_path": "json",
            "dataset_name": None,
            "dataset_kwargs": {"data_files": {s: str(p) for s, p in files.items()}},
        }
        (tasks_dir / f"{task}.yaml").write_text(json.dumps(config, indent=2) + "\n")
        tasks.append(task)
    return data_dir, tasks_dir, tasks, rows_of


# ---------------------------------------------------------------------------- runs
def run_gnomon(
    model_dir: Path, data_dir: Path, out: Path, batch_size: int, env: dict[str, str], res: ToolRuns
) -> None:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    store = out / "store.sqlite"  # a fresh store: nothing can be reused from an earlier run
    cmd = gnomon_command() + [
        "run",
        "--model", f"hf:{model_dir}",
        "--bench", "mmlu",
        "--data", str(data_dir),
        "--device", "cpu",
        "--dtype", "float32",
        "--batch-size", str(batch_size),
        "--store", str(store),
        "--out", str(out / "out"),
    ]  # fmt: skip
    wall, stdout, _ = run_logged(cmd, out / "log.txt", env)
    with sqlite3.connect(store) as db:
        ((tokens, seconds, reused),) = db.execute("SELECT tokens, seconds, reused FROM runs")
    if reused:
        sys.exit(f"gnomon reused {reused} stored samples; the timing would not be honest")
    printed = re.search(r"([\d,]+) tokens through the model", stdout)
    if printed and int(printed.group(1).replace(",", "")) != tokens:
        sys.exit(f"gnomon printed {printed.group(1)} tokens but stored {tokens}")
    res.wall_s.append(wall)
    res.tool_s.append(float(seconds))
    res.tokens = int(tokens)
    preds = {}
    for line in (out / "out" / "samples.jsonl").read_text(encoding="utf-8").splitlines():
        sample = json.loads(line)
        preds[int(sample["index"])] = int(sample["prediction"])
        if not res.predictions:
            res.logprobs[int(sample["index"])] = [float(x) for x in sample["choice_logprobs"]]
    res.predictions.append(preds)
    results = json.loads((out / "out" / "results.json").read_text(encoding="utf-8"))
    res.accuracy = results["benchmarks"]["mmlu"]["metrics"]["acc"]["value"]


def run_lm_eval(
    model_dir: Path,
    tasks_dir: Path,
    tasks: list[str],
    rows_of: dict[str, list[int]],
    out: Path,
    batch_size: int,
    env: dict[str, str],
    res: ToolRuns,
) -> list[tuple[str, str]]:
    """One CLI run; returns the (context, continuation) pairs it sent, from its samples log."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    cmd = [
        sys.executable, "-m", "lm_eval", "run",
        "--model", "hf",
        "--model_args", f"pretrained={model_dir},dtype=float32",
        "--tasks", ",".join(tasks),
        "--include_path", str(tasks_dir),
        "--num_fewshot", "5",
        "--batch_size", str(batch_size),
        "--device", "cpu",
        "--log_samples",
        "--output_path", str(out / "out"),
    ]  # fmt: skip
    wall, _, _ = run_logged(cmd, out / "log.txt", env)
    (results_file,) = (out / "out").rglob("results_*.json")
    results = json.loads(results_file.read_text(encoding="utf-8"))
    res.wall_s.append(wall)
    res.tool_s.append(float(results["total_evaluation_time_seconds"]))
    preds: dict[int, int] = {}
    requests: list[tuple[str, str]] = []
    correct = 0
    for task in tasks:
        (samples_file,) = (out / "out").rglob(f"samples_{task}_*.jsonl")
        for line in samples_file.read_text(encoding="utf-8").splitlines():
            sample = json.loads(line)
            # filtered_resps: one (loglikelihood, is_greedy) per choice, in choice order
            lls = [float(r[0]) for r in sample["filtered_resps"]]
            row = rows_of[task][int(sample["doc_id"])]
            preds[row] = first_argmax(lls)
            correct += preds[row] == int(sample["target"])
            if not res.predictions:
                res.logprobs[row] = lls
            args = sample["arguments"]
            for key in sorted(args, key=lambda k: int(k.rsplit("_", 1)[1])):
                requests.append((args[key]["arg_0"], args[key]["arg_1"]))
    res.predictions.append(preds)
    res.accuracy = correct / len(preds)
    return requests


def lm_eval_tokens(
    model_dir: Path, requests: list[tuple[str, str]], batch_size: int
) -> tuple[int, int]:
    """Tokens lm-eval's `hf` backend puts through the model for these requests (non-padding,
    and with its padding), counted with its own code in process: see `TokenCounter`."""
    return TokenCounter(model_dir, batch_size).loglikelihood(requests)


# ---------------------------------------------------------------------------- report
def _fmt_s(values: list[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


def report(
    setup: Setup, batch_size: int, repeats: int, g: ToolRuns, e: ToolRuns, requests: int
) -> dict[str, Any]:
    rows = sorted(e.predictions[0])
    all_runs = g.predictions + e.predictions
    identical = sum(len({run.get(r) for run in all_runs}) == 1 for r in rows)
    missing = set(rows) ^ set(g.predictions[0])
    diffs = [
        abs(a - b)
        for r in rows
        if r in g.logprobs
        for a, b in zip(g.logprobs[r], e.logprobs[r], strict=True)
    ]
    assert g.tokens and e.tokens and e.padded_tokens
    wall_ratio = e.median_wall_s / g.median_wall_s
    tool_ratio = e.median_tool_s / g.median_tool_s
    token_ratio = e.tokens / g.tokens
    print()
    print(
        f"5-shot MMLU-format, {len(rows)} questions ({requests} loglikelihood requests); "
        f"random-weight Llama ({setup.hidden_size} wide, {setup.num_layers} layers, "
        f"vocab {setup.vocab_size}); CPU float32, batch size {batch_size}, {repeats} run(s) each"
    )
    table = [
        ("", "gnomon", "lm-eval", "lm-eval/gnomon"),
        (
            "wall time, median (s)",
            f"{g.median_wall_s:.1f}",
            f"{e.median_wall_s:.1f}",
            f"{wall_ratio:.2f}x",
        ),
        (
            "  as the tool reports (s)",
            f"{g.median_tool_s:.1f}",
            f"{e.median_tool_s:.1f}",
            f"{tool_ratio:.2f}x",
        ),
        ("tokens computed", f"{g.tokens:,}", f"{e.tokens:,}", f"{token_ratio:.2f}x"),
        ("accuracy", f"{g.accuracy:.4f}", f"{e.accuracy:.4f}", ""),
    ]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        print(
            "  ".join(
                c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)
            )
        )
    print(f"wall times (s): gnomon {_fmt_s(g.wall_s)}; lm-eval {_fmt_s(e.wall_s)}")
    print(
        f"lm-eval token count excludes padding; with its right-padding it computed "
        f"{e.padded_tokens:,} positions"
    )
    ok = identical == len(rows) and not missing
    print(
        f"identical per-sample predictions: {identical}/{len(rows)} (all runs of both tools)"
        + (f"; {len(missing)} rows missing from one side" if missing else "")
        + f"; max |logprob difference| {max(diffs):.2e}"
    )
    print("OK" if ok else "PREDICTIONS DIFFER")
    return {
        "setup": asdict(setup),
        "batch_size": batch_size,
        "repeats": repeats,
        "questions": len(rows),
        "requests": requests,
        "gnomon": {
            "wall_s": g.wall_s,
            "median_wall_s": g.median_wall_s,
            "tool_s": g.tool_s,
            "median_tool_s": g.median_tool_s,
            "tokens": g.tokens,
            "accuracy": g.accuracy,
        },
        "lm_eval": {
            "wall_s": e.wall_s,
            "median_wall_s": e.median_wall_s,
            "tool_s": e.tool_s,
            "median_tool_s": e.median_tool_s,
            "tokens": e.tokens,
            "padded_tokens": e.padded_tokens,
            "accuracy": e.accuracy,
        },
        "wall_ratio": wall_ratio,
        "tool_time_ratio": tool_ratio,
        "token_ratio": token_ratio,
        "identical_predictions": identical,
        "max_abs_logprob_diff": max(diffs),
        "ok": ok,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path(".bench"))
    parser.add_argument("--repeats", type=int, default=None, help="runs per tool [3; 1 --quick]")
    parser.add_argument("--batch-size", type=int, default=8, help="the same for both tools")
    parser.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="untimed runs of each tool first (page cache, lm-eval's dataset cache) [1; 0 --quick]",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="OMP_NUM_THREADS for both tools [unset: torch uses one thread per core]; 1 is "
        "steadier on a machine that other work is using",
    )
    parser.add_argument("--quick", action="store_true", help="smaller model, 40 questions")
    parser.add_argument(
        "--questions", type=int, default=None, help="MMLU test rows [1000; 40 --quick]"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    setup = QUICK if args.quick else FULL
    if args.questions is not None:
        if args.questions < 4:
            parser.error("--questions must be at least 4 (one per subject)")
        setup = replace(setup, questions=args.questions)
    repeats = args.repeats or (1 if args.quick else 3)
    warmup = args.warmup if args.warmup is not None else (0 if args.quick else 1)
    if repeats < 1 or args.batch_size < 1 or warmup < 0:
        parser.error("--repeats and --batch-size must be at least 1, --warmup at least 0")

    os.environ.update(OFFLINE_ENV)
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_DATASETS_CACHE": str(workdir / "hf_datasets_cache")}
    if args.threads is not None:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(args.threads)
    model_dir = build_model(workdir, setup)
    data_dir, tasks_dir, tasks, rows_of = write_data(workdir, setup)

    runs = workdir / "runs"
    for w in range(warmup):
        print(f"warm-up {w + 1}/{warmup} (untimed) ...", flush=True)
        run_gnomon(model_dir, data_dir, runs / "warmup-gnomon", args.batch_size, env, ToolRuns())
        run_lm_eval(
            model_dir, tasks_dir, tasks, rows_of, runs / "warmup-lm_eval", args.batch_size, env,
            ToolRuns(),
        )  # fmt: skip
    load = os.getloadavg()[0]
    threads = env.get("OMP_NUM_THREADS", "torch default")
    print(
        f"load average before the timed runs: {load:.2f} on {os.cpu_count()} CPUs; "
        f"threads per tool: {threads}"
    )
    g, e = ToolRuns(), ToolRuns()
    requests: list[tuple[str, str]] = []
    for r in range(repeats):
        order = ["gnomon", "lm-eval"] if r % 2 == 0 else ["lm-eval", "gnomon"]
        for tool in order:
            print(f"run {r + 1}/{repeats}: {tool} ...", end=" ", flush=True)
            if tool == "gnomon":
                run_gnomon(model_dir, data_dir, runs / f"gnomon-{r}", args.batch_size, env, g)
                print(f"{g.wall_s[-1]:.1f}s", flush=True)
            else:
                sent = run_lm_eval(
                    model_dir, tasks_dir, tasks, rows_of, runs / f"lm_eval-{r}",
                    args.batch_size, env, e,
                )  # fmt: skip
                requests = requests or sent
                print(f"{e.wall_s[-1]:.1f}s", flush=True)
    e.tokens, e.padded_tokens = lm_eval_tokens(model_dir, requests, args.batch_size)
    figures = report(setup, args.batch_size, repeats, g, e, len(requests))
    figures["load_average_before"] = load
    figures["threads"] = args.threads
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0 if figures["ok"] else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RunFailed as exc:
        sys.exit(str(exc))
