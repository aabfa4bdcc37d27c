#!/usr/bin/env python
"""The speed sweep: gnomon against lm-evaluation-harness's `hf` backend across model shapes.

    python benchmarks/speed_sweep.py                        # every shape and task, quiet and busy
    python benchmarks/speed_sweep.py --quick                # a smoke run: one tiny shape, seconds
    python benchmarks/speed_sweep.py --shapes h128-l2-v2k --tasks score --conditions quiet
    python benchmarks/speed_sweep.py --repeats 5 --json sweep.json

For every shape (random-weight Llama checkpoints from 128 to 1,024 wide, 2 to 24 layers, 2K to
50K vocabulary, and the real SmolLM2-135M-Instruct) it times three tasks:

- score: 5-shot MMLU format (lm-eval's own `mmlu_<subject>.yaml` over local rows), questions
  from tens to several hundred tokens long depending on the shape;
- gen: GSM8K format, greedy, beside gnomon specs that give the same prompts, stop strings and
  token budget (`--max-gen-toks`, applied to both: a random model rarely stops on its own), each
  task its own cell (`--gen-tasks`): lm-eval's `gsm8k_cot` (its 8 fixed exemplars), `gsm8k` with
  `fewshot_config.sampler: first_n` (5-shot, the same shots for every question) and `gsm8k` as
  it ships (5 shots drawn at random for each question: no few-shot block to share);
- served: the score task through `gnomon serve` (a subprocess on a free loopback port) and
  `gnomon run --model openai:...`, against gnomon in process (the target is at most 1.5x).

Both tools run as CLI subprocesses (start-up counts), alternating, each timed run on a fresh
gnomon store and a fresh lm-eval output dir, with their own defaults (threads included; `--threads
N` pins both); medians of `--repeats` runs. Each condition runs every cell: quiet, and busy, with
a CPU-bound process spinning beside the timed runs the whole time. Predictions are compared per
sample across every run of both sides (choices for scoring, the generated text for generation)
and the script exits 1 if any differ. Load averages are printed before and after each condition.

Everything is built offline under --workdir (default `.bench/sweep`, git-ignored) and reused.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gnomon_side import OFFLINE_ENV, Outcome, RunFailed, Server, gnomon_has_flag, run_gnomon
from lm_eval_side import GenRequest, ScoreRequest, TokenCounter, run_lm_eval
from sweep_prepare import (
    QUICK,
    SHAPES,
    GenData,
    ScoreData,
    Shape,
    Unavailable,
    build_model,
    gen_data,
    score_data,
)
from sweep_report import Cell, served_table, shape_table, summary_table, verdict

TASKS = ("score", "gen", "served")
# the GSM8K tasks a gen cell may run (each its own cell): gnomon benchmark id, table label
GEN_TASKS = {
    "cot": ("sweep_gsm8k_cot", "8-shot CoT"),
    "fixed": ("sweep_gsm8k_fixed", "5-shot, the same shots for all"),
    "5shot": ("sweep_gsm8k", "5-shot, shots drawn per question"),
}
CONDITIONS = ("quiet", "busy")


@contextmanager
def condition(name: str) -> Iterator[None]:
    """`busy`: one CPU-bound process spinning for as long as the condition's runs last."""
    if name != "busy":
        yield
        return
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.0)  # let it take its core before anything is timed
        yield
    finally:
        spinner.terminate()
        spinner.wait()


class Sweep:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args, self.workdir = args, workdir
        self.env = {**os.environ, **OFFLINE_ENV, "HF_DATASETS_CACHE": str(workdir / "datasets")}
        self.gnomon_extra: list[str] = []
        if args.threads is not None:
            self.env["OMP_NUM_THREADS"] = self.env["MKL_NUM_THREADS"] = str(args.threads)
            if gnomon_has_flag("--threads"):
                self.gnomon_extra = ["--threads", str(args.threads)]
        self.cells: list[Cell] = []
        self.requests: dict[str, tuple[list[ScoreRequest], list[GenRequest]]] = {}

    def _gnomon_base(self, model: Path) -> list[str]:
        return ["--model", f"hf:{model}", "--device", "cpu", "--dtype", "float32",
                "--batch-size", str(self.args.batch_size), *self.gnomon_extra]  # fmt: skip

    def _alternate(self, cell: Cell, repeats: int, first: Any, second: Any) -> None:
        """`repeats` timed pairs, the order swapped every time so drift hits both sides."""
        for r in range(repeats):
            order = [("gnomon", first), (cell.peer_name, second)]
            for side, run in order if r % 2 == 0 else order[::-1]:
                print(f"  {cell.condition} {cell.shape} {cell.task} {r + 1}/{repeats}: {side} ...",
                      end=" ", flush=True)  # fmt: skip
                outcome = run(r)
                (cell.gnomon if side == "gnomon" else cell.peer).append(outcome)
                print(f"{outcome.wall_s:.1f}s", flush=True)

    def score(self, cell: Cell, shape: Shape, model: Path, data: ScoreData) -> None:
        runs = self.workdir / "runs" / shape.name / cell.condition / "score"
        key_of = lambda task, doc: ("mmlu", data.rows_of[task][doc])  # noqa: E731
        gnomon_args = [*self._gnomon_base(model), "--bench", "mmlu", "--data", str(data.data_dir)]

        def lm_eval(r: int) -> Outcome:
            outcome, scored, _ = run_lm_eval(
                model, data.tasks_dir, data.tasks, key_of, runs / f"lm_eval-{r}", self.env,
                ["--num_fewshot", "5"], self.args.batch_size,
            )  # fmt: skip
            self.requests.setdefault(f"{shape.name}/score", (scored, []))
            return outcome

        gnomon = lambda r: run_gnomon(gnomon_args, runs / f"gnomon-{r}", self.env)  # noqa: E731
        self._alternate(cell, self.args.repeats, gnomon, lm_eval)

    def gen(self, cell: Cell, shape: Shape, model: Path, data: GenData) -> None:
        runs = self.workdir / "runs" / shape.name / cell.condition / f"gen-{cell.variant}"
        bench = GEN_TASKS[cell.variant][0]
        tasks = {bench: data.tasks[bench]}
        key_of = lambda task, doc: (bench, doc)  # noqa: E731
        gnomon_args = [*self._gnomon_base(model), "--bench", str(data.specs[bench])]
        extra = ["--gen_kwargs", f"max_gen_toks={data.max_gen_toks}"]

        def lm_eval(r: int) -> Outcome:
            outcome, _, generated = run_lm_eval(
                model, data.tasks_dir, list(tasks.values()), key_of, runs / f"lm_eval-{r}",
                self.env, extra, self.args.batch_size,
            )  # fmt: skip
            self.requests.setdefault(f"{shape.name}/gen/{cell.variant}", ([], generated))
            return outcome

        gnomon = lambda r: run_gnomon(gnomon_args, runs / f"gnomon-{r}", self.env)  # noqa: E731
        self._alternate(cell, self.args.repeats, gnomon, lm_eval)

    def served(self, cell: Cell, shape: Shape, model: Path, data: ScoreData) -> None:
        runs = self.workdir / "runs" / shape.name / cell.condition / "served"
        bench = ["--bench", "mmlu", "--data", str(data.data_dir)]
        local = [*self._gnomon_base(model), *bench]
        with Server(model, runs / "server.log", self.env) as server:
            cell.server_ready_s.append(server.ready_s)
            remote = ["--model", f"openai:{server.name}", "--base-url", server.base_url, *bench]
            gnomon = lambda r: run_gnomon(local, runs / f"local-{r}", self.env)  # noqa: E731
            served = lambda r: run_gnomon(remote, runs / f"served-{r}", self.env)  # noqa: E731
            self._alternate(cell, self.args.repeats, gnomon, served)

    def run_shape(self, shape: Shape, cond: str, prepared: dict[str, Any]) -> None:
        model, score, gen = prepared["model"], prepared["score"], prepared["gen"]
        cells = [
            (task, variant)
            for task in tasks_of(shape, self.args)
            for variant in (self.args.gen_tasks if task == "gen" else [""])
        ]
        for task, variant in cells:
            passage = f", {shape.passage}-sentence passages" if shape.passage else ""
            label = {
                "score": f"score: 5-shot MMLU, {shape.score_questions} q{passage}",
                "gen": f"gen: GSM8K {GEN_TASKS[variant][1] if variant else ''}, "
                f"{shape.gen_questions} q, {gen.max_gen_toks} new tokens",
                "served": f"served score: 5-shot MMLU, {shape.served_questions} q{passage}",
            }[task]
            cell = Cell(shape.name, task, cond, label, load_before=os.getloadavg(), variant=variant)
            self.cells.append(cell)
            try:
                if task == "gen":
                    self.gen(cell, shape, model, gen)
                elif task == "served":
                    self.served(cell, shape, model, prepared["served"])
                else:
                    self.score(cell, shape, model, score)
            except RunFailed as exc:
                cell.error = str(exc).splitlines()[0]
                print(f"\n  FAILED: {exc}", flush=True)

    def count_tokens(self, shape: Shape, model: Path) -> None:
        """lm-eval's tokens for the requests it sent, with its own code (untimed)."""
        scored, _ = self.requests.get(f"{shape.name}/score", ([], []))
        generated = {
            variant: self.requests.get(f"{shape.name}/gen/{variant}", ([], []))[1]
            for variant in GEN_TASKS
        }
        if not scored and not any(generated.values()):
            return
        counter = TokenCounter(model, self.args.batch_size)
        counts = {"score": counter.loglikelihood(scored) if scored else None}
        for variant, requests in generated.items():
            if requests:
                prompt, positions = counter.generate(requests)
                counts[f"gen/{variant}"] = (positions, prompt)
        for cell in self.cells:
            key = f"gen/{cell.variant}" if cell.task == "gen" else cell.task
            if cell.shape == shape.name and counts.get(key):
                cell.peer_tokens, cell.peer_padded = counts[key]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny shape, 1 run")
    parser.add_argument(
        "--shapes",
        nargs="+",
        choices=sorted(SHAPES),
        metavar="NAME",
        help=f"shapes to run [all]: {', '.join(SHAPES)}",
    )
    parser.add_argument(
        "--tasks",
        nargs="+",
        choices=TASKS,
        default=None,
        help="tasks to run on every shape [each shape's own]",
    )
    parser.add_argument(
        "--conditions",
        nargs="+",
        choices=CONDITIONS,
        default=None,
        help="[quiet busy; quiet with --quick]",
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per side [3; 1]")
    parser.add_argument(
        "--max-gen-toks",
        type=int,
        default=None,
        help="generation budget of both tools [64; 8 with --quick]",
    )
    parser.add_argument("--batch-size", type=int, default=8, help="the same for both tools")
    parser.add_argument(
        "--gen-tasks",
        nargs="+",
        choices=tuple(GEN_TASKS),
        default=list(GEN_TASKS),
        help="the GSM8K tasks gen runs, each its own cell [cot fixed 5shot]",
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply every shape's question counts (a shorter or longer sweep) [1]",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="pin both tools' threads [unset: each tool's default]",
    )
    parser.add_argument("--workdir", type=Path, default=Path(".bench/sweep"))
    parser.add_argument("--json", type=Path, default=None, help="also write everything here")
    args = parser.parse_args(argv)
    if args.quick and args.shapes:
        parser.error("--quick runs its own tiny shape; drop --shapes")
    args.conditions = args.conditions or (["quiet"] if args.quick else list(CONDITIONS))
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.max_gen_toks is None:
        args.max_gen_toks = 8 if args.quick else 64
    if args.scale <= 0:
        parser.error("--scale must be above 0")
    if min(args.repeats, args.batch_size, args.max_gen_toks) < 1 or (args.threads or 1) < 1:
        parser.error("--repeats, --batch-size, --max-gen-toks and --threads must be at least 1")
    return args


def scaled(shape: Shape, factor: float) -> Shape:
    def times(n: int) -> int:
        return max(1, round(n * factor))

    return dataclasses.replace(
        shape,
        score_questions=times(shape.score_questions),
        gen_questions=times(shape.gen_questions),
        served_questions=times(shape.served_questions),
    )


def tasks_of(shape: Shape, args: argparse.Namespace) -> list[str]:
    return list(args.tasks or shape.tasks)


def prepare(sweep: Sweep, shapes: list[Shape]) -> dict[str, dict[str, Any]]:
    prepared = {}
    for shape in shapes:
        try:
            model = build_model(sweep.workdir, shape)
        except Unavailable as exc:
            print(f"skipping {shape.name}: {exc}", flush=True)
            continue
        work, tasks = sweep.workdir, tasks_of(shape, sweep.args)
        prepared[shape.name] = {
            "model": model,
            "score": score_data(work, shape.score_questions, shape.passage, shape.subjects),
            "gen": gen_data(work, shape.gen_questions, sweep.args.max_gen_toks),
            "served": score_data(work, shape.served_questions, shape.passage)
            if "served" in tasks
            else None,
        }
    return prepared


def report(sweep: Sweep, shapes: list[Shape], loads: dict[str, Any], started: float) -> bool:
    verdicts = [verdict(c) for c in sweep.cells]
    names = [s.name for s in shapes if any(v["shape"] == s.name for v in verdicts)]
    print(f"\n## Speed sweep\n\n`{shlex.join(['python', *sys.argv])}`\n")
    print(f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}); batch size "
          f"{sweep.args.batch_size}; CPU float32; median of {sweep.args.repeats} run(s) "
          f"each; threads: {sweep.args.threads or 'each tool default'}")  # fmt: skip
    for cond, (before, after) in loads.items():
        print(f"- {cond}: load average (1/5/15 min) before {_load(before)}, after {_load(after)}")
    print()
    print("\n".join(summary_table(verdicts, names)))
    for shape in shapes:
        mine = [v for v in verdicts if v["shape"] == shape.name]
        if mine:
            print(f"\n### {shape.name}: {shape.describe()}\n")
            print("\n".join(shape_table(mine)))
    served = [v for v in verdicts if v["task"] == "served"]
    if served:
        print("\n### Served scoring (gnomon serve + gnomon run --model openai:...)\n")
        print("\n".join(served_table(served)))
    ok = all(v["ok"] for v in verdicts)
    for v in verdicts:
        if v.get("identical_prompts") is not None and v["identical_prompts"] != v["questions"]:
            print(f"note: {v['shape']} {v['task']}: prompts identical for "
                  f"{v['identical_prompts']}/{v['questions']} samples")  # fmt: skip
        for d in v.get("differing", [])[:3]:
            print(f"differs: {v['shape']} {v['task']} {v['condition']} {d}")
    verdict_line = "OK: every prediction identical" if ok else "PREDICTIONS DIFFER (or a failure)"
    print(f"\nsweep took {time.perf_counter() - started:.0f} s; {verdict_line}")
    if sweep.args.json is not None:
        figures = {
            "command": [sys.executable, *sys.argv],
            "cpus": os.cpu_count(),
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(sweep.args).items()},
            "load_average": loads,
            "seconds": time.perf_counter() - started,
            "cells": verdicts,
            "ok": ok,
        }
        sweep.args.json.parent.mkdir(parents=True, exist_ok=True)
        sweep.args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    return ok


def _load(values: tuple[float, float, float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    os.environ.update(OFFLINE_ENV)
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    shapes = [QUICK] if args.quick else [SHAPES[n] for n in (args.shapes or SHAPES)]
    if args.scale != 1:
        shapes = [scaled(shape, args.scale) for shape in shapes]
    sweep = Sweep(args, workdir)
    prepared = prepare(sweep, shapes)
    shapes = [s for s in shapes if s.name in prepared]
    print(f"prepared in {time.perf_counter() - started:.0f} s", flush=True)
    loads: dict[str, Any] = {}
    for cond in args.conditions:
        before = os.getloadavg()
        with condition(cond):
            for shape in shapes:
                sweep.run_shape(shape, cond, prepared[shape.name])
        loads[cond] = (before, os.getloadavg())
    for shape in shapes:
        try:
            sweep.count_tokens(shape, prepared[shape.name]["model"])
        except Exception as exc:  # the timed figures stand without it; say why it is missing
            print(f"could not count lm-eval's tokens on {shape.name}: {exc!r}", flush=True)
    return 0 if report(sweep, shapes, loads, started) else 1


if __name__ == "__main__":
    sys.exit(main())
