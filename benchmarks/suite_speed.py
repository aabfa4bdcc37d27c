"""A whole suite (`suite:base` by default) on a tiny model: gnomon's wall time and tokens, and
lm-evaluation-harness's `hf` backend beside it on the benchmarks both have.

Both tools read the same made-up rows (`gnomon.rowgen`, each dataset's real schema) and the same
model; lm-eval runs its own task YAMLs, pointed at those rows (tests/lm_eval_bridge.py), with
gnomon's standard shot counts where its YAML leaves the count to the user. Every timed run starts
on a fresh store (gnomon) or output folder (lm-eval); runs alternate, and medians are quoted with
the machine's load average. lm-eval's tokens are counted with its own code after the timed runs:
non-padding tokens of loglikelihood requests, plus prompt and generated positions of generations,
as `speed_sweep.py` counts them.

    python benchmarks/suite_speed.py [--suite base] [--runs 3] [--scale 2] [--work DIR]

A benchmark with no made-up rows and no packaged data (MBPP reads the hub) is left out and
named; code benchmarks are timed for gnomon only (lm-eval runs generated code unsandboxed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

from gnomon_side import OFFLINE_ENV, run_gnomon  # noqa: E402
from lm_eval_bridge import write_tasks  # noqa: E402
from lm_eval_side import TokenCounter, run_lm_eval  # noqa: E402

from gnomon.hub import resolve_suite  # noqa: E402
from gnomon.hub.spec import BenchmarkSpec  # noqa: E402
from gnomon.rowgen import make_rows, maker  # noqa: E402


def _write_rows(specs: list[BenchmarkSpec], data: Path, scale: int) -> dict[str, dict]:
    rows: dict[str, dict] = {}
    for spec in specs:
        found = maker(spec.id)
        if found is None:
            continue
        rows[spec.id] = {}
        for split, n in found.sizes.items():
            made = make_rows(spec.id, split, n * scale if split == spec.source.eval_split else n)
            rows[spec.id][split] = made
            folder = data / spec.id
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{split}.jsonl").write_text(
                "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in made), encoding="utf-8"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="base")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale", type=int, default=2, help="eval rows = row maker's size x N")
    parser.add_argument("--model", type=Path, help="a model folder (default: the tiny Llama)")
    parser.add_argument("--work", type=Path, help="working folder (default: a temporary one)")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="gnomon-suite-speed-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **OFFLINE_ENV, "OMP_NUM_THREADS": str(os.cpu_count() or 1)}
    if args.model is None:
        from gnomon.tiny import build_model

        args.model = build_model(work / "model", "llama", seed=1)
    specs = resolve_suite(f"suite:{args.suite}")
    rows = _write_rows(specs, work / "data", args.scale)
    runnable = [s for s in specs if s.id in rows or s.source.package]
    left_out = [s.id for s in specs if s not in runnable]
    both = [
        s
        for s in runnable
        if s.id in rows and s.reference and s.reference.startswith("lm-eval:") and s.mode != "code"
    ]
    wrappers: list[str] = []
    for spec in both:
        split = spec.fewshot.split or spec.source.eval_split
        fewshot = rows[spec.id].get(split, []) if spec.fewshot.count else []
        assert spec.reference is not None
        written = write_tasks(
            spec.reference, rows[spec.id][spec.source.eval_split], fewshot, work / "lm",
            prefix=f"suite_{spec.id}__", shots=spec.fewshot.count,
        )  # fmt: skip
        wrappers += [wrapper for wrapper, _ in written.values()]

    common = ["--model", f"hf:{args.model}", "--data", str(work / "data"), "--device", "cpu",
              "--dtype", "float32", "--batch-size", str(args.batch_size)]  # fmt: skip
    gap = f"; left out (no offline rows): {', '.join(left_out)}" if left_out else ""
    print(f"suite:{args.suite}: {len(runnable)} benchmarks run{gap}")
    print(f"both tools: {', '.join(s.id for s in both)} ({len(wrappers)} lm-eval tasks)")
    whole = run_gnomon([*common, "--bench", ",".join(s.id for s in runnable)],
                       work / "gnomon-whole", env)  # fmt: skip
    print(f"gnomon, whole suite: {whole.wall_s:.1f} s wall, {whole.tokens:,} tokens")

    ours, theirs = [], []
    requests = None
    for i in range(args.runs):
        order = ("gnomon", "lm-eval") if i % 2 == 0 else ("lm-eval", "gnomon")
        for tool in order:
            load = os.getloadavg()[0]
            if tool == "gnomon":
                got = run_gnomon([*common, "--bench", ",".join(s.id for s in both)],
                                 work / f"gnomon-{i}", env)  # fmt: skip
                ours.append(got)
                print(f"run {i + 1} gnomon:  {got.wall_s:7.1f} s  (load {load:.2f})", flush=True)
            else:
                outcome, scored, generated = run_lm_eval(
                    args.model, work / "lm" / "tasks", wrappers, lambda t, d: (t, d),
                    work / f"lm-eval-{i}", env, batch_size=args.batch_size,
                )  # fmt: skip
                theirs.append(outcome)
                requests = (scored, generated)
                print(f"run {i + 1} lm-eval: {outcome.wall_s:7.1f} s  (load {load:.2f})",
                      flush=True)  # fmt: skip
    assert requests is not None
    counter = TokenCounter(args.model, args.batch_size)
    scored, generated = requests
    peer_tokens = (counter.loglikelihood(scored)[0] if scored else 0) + (
        counter.generate(generated)[1] if generated else 0
    )
    g = statistics.median(o.wall_s for o in ours)
    t = statistics.median(o.wall_s for o in theirs)
    print(f"\nbenchmarks both have ({len(both)}), median of {args.runs} alternating runs:")
    print(f"  gnomon  {g:7.1f} s  {ours[0].tokens:>12,} tokens")
    print(f"  lm-eval {t:7.1f} s  {peer_tokens:>12,} tokens")
    fewer = peer_tokens / max(1, ours[0].tokens)
    print(f"  ratio   {t / g:7.2f}x faster, {fewer:.2f}x fewer tokens")
    print(f"load average now: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
