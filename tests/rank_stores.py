"""Stores for the leaderboard tests: synthetic ones written through the real Store API (many
models, hostile model text, a run caught part-way), and one filled by real `gnomon run`s."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

from gnomon_cli import gnomon, ok

from gnomon import __version__
from gnomon.hub import resolve
from gnomon.store import ResultRow, Store
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


def write_corpus_run(
    store: Store, model: str, bench: str, quality: float, samples: int = 40, written: int = -1
) -> str:
    """A finished run of a built-in corpus-headline benchmark (`wmt16_de_en`: BLEU; `wikitext`:
    word perplexity), written through the Store API with the payloads its mode writes: a
    translation keeping about `quality` of the reference's words, or a loglikelihood of
    `-(1 - quality) * 8` nats per word. Samples carry no per-sample metric, as real ones.
    `written` < `samples` leaves the run going after that many samples."""
    spec = resolve(bench).model_dump()
    rng = random.Random(f"{model}:{bench}")
    model_key = f"hf:{model}@main|float32"
    prompt_hash = hashlib.sha256(f"{bench}:prompt".encode()).hexdigest()[:16]
    run_id = f"syn-{hashlib.sha256(f'{model}:{bench}'.encode()).hexdigest()[:12]}"
    keys = [hashlib.sha256(f"{model_key}:{bench}:{i}".encode()).hexdigest() for i in range(samples)]
    store.begin_run(run_id, model, model_key, {"model": model, "benches": [bench]}, __version__)
    store.add_bench(run_id, bench, spec["version"], prompt_hash, 0, keys, spec)
    words = ["the", "cat", "sat", "on", "a", "mat", "while", "two", "small", "dogs", "ran",
             "past", "the", "old", "red", "house"]  # fmt: skip
    rows = []
    for i in range(samples):
        reference = " ".join(rng.sample(words, 9))
        if bench == "wikitext":
            n_words, n_bytes = len(reference.split()), len(reference.encode())
            ll = -(1.0 - quality) * 8.0 * n_words * rng.uniform(0.8, 1.2)
            payload = {
                "prediction": ll, "target": reference, "correct": False, "loglikelihood": ll,
                "corpus": {"word_perplexity": [ll, n_words], "byte_perplexity": [ll, n_bytes],
                           "bits_per_byte": [ll, n_bytes]},
            }  # fmt: skip
        else:
            kept = [w if rng.random() < quality else "zebra" for w in reference.split()]
            payload = {"prediction": " ".join(kept), "target": " " + reference, "correct": False}
        rows.append(
            ResultRow(
                keys[i],
                model_key,
                bench,
                spec["version"],
                prompt_hash,
                f"{bench}-{i}",
                i,
                None,
                False,
                {},
                payload,
                f"Sentence {i}:",
            )  # fmt: skip
        )
    if written >= 0:
        store.add_results(run_id, rows[:written])
        return run_id
    store.add_results(run_id, rows)
    store.finish_run(run_id, "complete", planned=samples, tokens=samples * 20)
    store.moments([run_id])
    return run_id


CORPUS_BENCHES = ("wikitext", "wmt16_de_en")  # headlines word_perplexity (lower) and bleu


def build_corpus_synthetic(path: Path) -> dict[tuple[str, str], str]:
    """`good` and `poor` on a share benchmark (bench_a), WMT16 (BLEU) and WikiText (perplexity);
    `plain` on bench_a only. Returns the run ids by (model, benchmark)."""
    store = Store(path)
    runs = {}
    try:
        for name, quality in (("good", 0.8), ("poor", 0.4), ("plain", 0.6)):
            runs[(name, "bench_a")] = write_run(
                store, model=name, ability=4 * quality - 2, bench="bench_a", kind="choice",
                dimension="knowledge", samples=80,
            ).run_id  # fmt: skip
            if name != "plain":
                for bench in CORPUS_BENCHES:
                    runs[(name, bench)] = write_corpus_run(store, name, bench, quality)
    finally:
        store.close()
    return runs
