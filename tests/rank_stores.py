"""Stores for the leaderboard tests: synthetic ones written through the real Store API (many
models, hostile model text, a run caught part-way), and one filled by real `gnomon run`s."""

from __future__ import annotations

from pathlib import Path

from gnomon_cli import gnomon, ok

from gnomon.store import Store
from gnomon_testing.synthetic import write_run

BENCHES = [  # (id, kind, dimension)
    ("bench_a", "choice", "knowledge"),
    ("bench_b", "clustered", "knowledge"),
    ("bench_c", "generate", "math"),
    ("bench_d", "choice", "reasoning"),
]
MODELS = [("alpha", 1.5), ("bravo", 0.5), ("charlie", -0.5), ("delta", -1.5)]
SAMPLES = 120


def build_synthetic(path: Path) -> dict[str, object]:
    """Four complete models on four benchmarks (two in one dimension), plus:
    `echo` lacks bench_c (a missing benchmark), `foxtrot` is still running on bench_a (60 of
    120), `alpha` has a newer `--limit 10` run on bench_a that must not replace its full run,
    and every even sample's text is hostile HTML/script."""
    store = Store(path)
    runs: dict[tuple[str, str], str] = {}
    try:
        for name, ability in MODELS:
            for bench, kind, dim in BENCHES:
                run = write_run(
                    store, model=name, ability=ability, bench=bench, kind=kind, dimension=dim,
                    samples=SAMPLES, hostile=True,
                )  # fmt: skip
                runs[(name, bench)] = run.run_id
        for bench, kind, dim in BENCHES:
            if bench != "bench_c":
                runs[("echo", bench)] = write_run(
                    store, model="echo", ability=0.0, bench=bench, kind=kind, dimension=dim,
                    samples=SAMPLES, hostile=True,
                ).run_id  # fmt: skip
        runs[("foxtrot", "bench_a")] = write_run(
            store, model="foxtrot", ability=1.0, bench="bench_a", kind="choice",
            dimension="knowledge", samples=60, planned=SAMPLES, status="running", hostile=True,
        ).run_id  # fmt: skip
        runs[("alpha-limited", "bench_a")] = write_run(
            store, model="alpha", ability=-3.0, bench="bench_a", kind="choice",
            dimension="knowledge", samples=10, limit=10, created_offset=60.0, seed=7,
        ).run_id  # fmt: skip
    finally:
        store.close()
    return {"path": path, "runs": runs}


def build_real(path: Path, llama: Path, qwen2: Path, data: Path) -> Path:
    """Two tiny random-weight models through `gnomon run` on MMLU (clustered), ARC-Easy and
    GSM8K rows: real prompts, real outputs, real logprobs."""
    for model in (llama, qwen2):
        ok(gnomon(
            "run", "--model", f"hf:{model}", "--store", path, "--device", "cpu",
            "--dtype", "float32", "--bench", "mmlu,arc_easy,gsm8k", "--data", data,
            "--limit", "12",
        ))  # fmt: skip
    return path
