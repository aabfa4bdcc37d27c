"""Re-scoring a large run from its stored answers, against computing it afresh.

A 4-way multiple-choice benchmark of N rows (100,000 by default) is answered once by an engine
that costs nothing (a plugin engine registered in-process: every score is instant), so the
"compute" figure is gnomon's own overhead only: rendering, keying, storing answers and scores.
Then the benchmark's scorer changes (`metrics: [acc]` becomes `[acc, acc_norm]`) and the same
command re-scores the stored answers without the engine. Runs alternate on fresh stores;
medians are printed with the machine's load.

    python benchmarks/rescore_speed.py [--rows 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from gnomon.engines import parse_model
from gnomon.engines.base import Engine, GenerateResult, ScoreResult
from gnomon.engines.registry import EngineKind, _plugins, plain_name
from gnomon.hub.spec import load_spec
from gnomon.run import RunOptions, execute
from gnomon.store import Store


class FreeEngine(Engine):
    """Answers at no cost: a score is minus the continuation's length."""

    def score(self, requests):  # type: ignore[no-untyped-def]
        for start in range(0, len(requests), 4096):
            chunk = range(start, min(start + 4096, len(requests)))
            yield [(i, ScoreResult(-float(len(requests[i].continuation)), False)) for i in chunk]

    def generate(self, requests):  # type: ignore[no-untyped-def]
        yield [(i, GenerateResult("A")) for i in range(len(requests))]


_plugins["free"] = EngineKind(
    "free", plain_name("free"), lambda ref, dtype, api: "free:engine", lambda ref, o: FreeEngine()
)


def write_bench(root: Path, rows: int, metrics: list[str]) -> Path:
    data = root / "data"
    if not data.exists():
        data.mkdir(parents=True)
        rng = random.Random(0)
        with (data / "test.jsonl").open("w") as handle:
            for i in range(rows):
                options = [
                    f"option {rng.randrange(10**6)} {'x' * rng.randrange(20)}" for _ in "abcd"
                ]
                row = {"qid": f"q{i}", "q": f"Question {i}: which one?", "options": options,
                       "gold": rng.randrange(4)}  # fmt: skip
                handle.write(json.dumps(row) + "\n")
    spec = {
        "id": "big_choice", "title": "Big choice", "dimension": "knowledge", "version": 1,
        "source": {"files": "data", "eval_split": "test", "id_field": "qid"},
        "prompt": {"template": "{{ q }}\nAnswer:", "choices": "options", "target": "gold"},
        "mode": "choice", "metrics": metrics,
    }  # fmt: skip
    path = root / f"spec-{'-'.join(metrics)}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def timed_run(spec_path: Path, store_path: Path) -> tuple[float, str]:
    options = RunOptions(parse_model("free:engine"), [load_spec(spec_path)], store_path,
                         device="cpu", dtype="float32")  # fmt: skip
    store = Store(store_path)
    lines: list[str] = []
    try:
        started = time.perf_counter()
        outcome = execute(options, store, lambda bench, total: lambda n: None, lines.append)
        seconds = time.perf_counter() - started
    finally:
        store.close()
    return (
        seconds,
        f"reused {outcome.reused}, re-scored {outcome.rescored}, computed {outcome.computed}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    compute, rescore, reuse = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        only_acc = write_bench(root, args.rows, ["acc"])
        both = write_bench(root, args.rows, ["acc", "acc_norm"])
        for i in range(args.repeats):
            store = root / f"store-{i}.sqlite"  # fresh: the compute run must compute
            seconds, what = timed_run(only_acc, store)
            compute.append(seconds)
            print(f"compute  {seconds:7.2f} s  ({what})")
            seconds, what = timed_run(both, store)
            rescore.append(seconds)
            print(f"re-score {seconds:7.2f} s  ({what})")
            seconds, what = timed_run(both, store)
            reuse.append(seconds)
            print(f"reuse    {seconds:7.2f} s  ({what})")
    c, r, u = (statistics.median(x) for x in (compute, rescore, reuse))
    print(f"\n{args.rows} samples (x4 answers), medians of {args.repeats}; load {os.getloadavg()}")
    print(f"compute with a free engine {c:.2f} s; re-score {r:.2f} s; reuse {u:.2f} s")
    print(f"re-score / compute = {r / c:.2f}; reuse / compute = {u / c:.2f}")


if __name__ == "__main__":
    main()
