"""Stores of made-up results at any scale, written through the real `Store` API: for the
leaderboard's speed benchmark and for tests that need many models, hostile model text or a run
caught half-way. Scores follow a simple ability-minus-difficulty model so rankings mean something.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from pathlib import Path

from gnomon import __version__
from gnomon.hub import resolve
from gnomon.rank.board import DIMENSIONS
from gnomon.store import ResultRow, Store
from gnomon.text import encode

# Text a model might write that would run if a page forgot to escape it.
HOSTILE = (
    "<script>window.__gnomon_pwned = (window.__gnomon_pwned || 0) + 1</script>",
    '<img src=x onerror="window.__gnomon_pwned = (window.__gnomon_pwned || 0) + 1">',
    "</pre></td></tr></table><b>bold?</b>{{ 7*7 }}",
)


@dataclass(frozen=True)
class SyntheticRun:
    run_id: str
    model: str
    model_key: str
    bench: str


def _spec(kind: str, bench_id: str, dimension: str, title: str) -> dict:
    base = {"choice": "arc_easy", "clustered": "mmlu", "generate": "gsm8k"}[kind]
    spec = resolve(base).model_dump()
    spec.update(id=bench_id, title=title, dimension=dimension)
    return spec


def _p(ability: float, difficulty: float) -> float:
    return 1.0 / (1.0 + math.exp(difficulty - ability))


def write_run(
    store: Store,
    *,
    model: str,
    ability: float,
    bench: str,
    kind: str,
    dimension: str,
    samples: int,
    planned: int | None = None,
    status: str = "complete",
    seed: int = 0,
    hostile: bool = False,
    created_offset: float = 0.0,
    dtype: str = "float32",
    limit: int | None = None,
    extractor: str | None = None,
    shots: int | None = None,
    chat: bool = False,
    choice_scored_by: str = "loglikelihood",
) -> SyntheticRun:
    """One run of one model on one benchmark; `planned > samples` leaves it part-way.
    `extractor` names what read each scored answer (payload `extractor`); None writes none.
    `shots` (default: the spec's own count), `chat` and `choice_scored_by` set the run's
    setting, which the leaderboard keeps apart (a different prompt, so other result keys)."""
    rng = random.Random(f"{seed}:{model}:{bench}")
    model_key = f"hf:{model}@main|{dtype}"
    spec = _spec(kind, bench, dimension, bench.replace("_", " ").title())
    own_shots = spec["fewshot"]["count"]
    standard = shots in (None, own_shots) and not chat and choice_scored_by == "loglikelihood"
    setting = "" if standard else f":{shots}:{chat}:{choice_scored_by}"
    prompt_hash = hashlib.sha256(encode(f"{bench}:prompt{setting}")).hexdigest()[:16]
    run_key = encode(f"{seed}:{model}:{bench}:{status}{setting}")
    run_id = f"syn-{hashlib.sha256(run_key).hexdigest()[:12]}"
    config = {
        "model": model, "benches": [bench], "shots": shots, "limit": limit, "dtype": dtype,
        "device": "cpu", "chat_template": chat, "batch_size": 8,
        "choice_scored_by": choice_scored_by,
    }  # fmt: skip
    store.begin_run(run_id, model, model_key, config, __version__)
    if created_offset:  # an older or newer run than now: history the Store API cannot write
        store.conn.execute(
            "UPDATE runs SET created = created + ? WHERE run_id = ?", (created_offset, run_id)
        )
    keys = [
        hashlib.sha256(encode(f"{model_key}:{bench}:{prompt_hash}:{i}")).hexdigest()
        for i in range(planned or samples)
    ]
    store.add_bench(
        run_id, bench, 1, prompt_hash, own_shots if shots is None else shots, keys, spec
    )
    rows = []
    for i in range(samples):
        difficulty = random.Random(f"{bench}:{i}").gauss(0.0, 1.5)
        correct = rng.random() < _p(ability, difficulty)
        target = i % 4
        text = HOSTILE[i % len(HOSTILE)] if hostile and i % 2 == 0 else f"answer {i}"
        if kind == "generate":
            extracted = str(target) if correct else str((target + 1) % 4)
            payload = {
                "prediction": extracted, "target": str(target), "correct": correct,
                "output": f"{text}\nThe answer is {extracted}.", "extracted": {"strict": extracted},
                "truncated": False,
            }  # fmt: skip
            metrics = {"exact_match": float(correct)}
        else:
            pred = target if correct else (target + 1 + rng.randrange(3)) % 4
            logprobs = [-1.0 - rng.random() * 3 for _ in range(4)]
            logprobs[pred] = -0.5
            choices = [text if c == 0 else f"choice {c}" for c in range(4)]
            payload = {
                "prediction": pred, "prediction_text": choices[pred], "target": target,
                "target_text": choices[target], "correct": correct, "choices": choices,
                "choice_logprobs": logprobs, "truncated": False,
            }  # fmt: skip
            norm = correct if rng.random() < 0.8 else not correct
            payload["prediction_norm"] = target if norm else (target + 1) % 4
            metrics = {"acc": float(correct), "acc_norm": float(norm)}
        if extractor is not None:
            payload["extractor"] = extractor
        cluster = f"subject_{i % 7}" if kind == "clustered" else None
        prompt = f"Question {i} of {bench}: {text}\nAnswer:"
        rows.append(
            ResultRow(
                keys[i],
                model_key,
                bench,
                1,
                prompt_hash,
                f"{bench}-{i}",
                i,
                cluster,
                correct,
                {k: v for k, v in metrics.items() if k in spec["metrics"]},
                payload,
                prompt,
            )  # fmt: skip
        )
        if len(rows) == 2000:
            store.add_results(run_id, rows)
            rows = []
    if rows:
        store.add_results(run_id, rows)
    if status != "running":
        store.finish_run(run_id, status, planned=planned or samples, tokens=samples * 50)
        store.moments([run_id])  # as a real run does when it ends
    return SyntheticRun(run_id, model, model_key, bench)


def build_store(
    path: Path,
    *,
    models: int,
    benches: int,
    samples: int,
    seed: int = 0,
    hostile: bool = False,
) -> list[SyntheticRun]:
    """`models` x `benches`, each model a run per benchmark, benchmarks spread over dimensions."""
    store = Store(path)
    kinds = ("choice", "clustered", "generate")
    runs = []
    try:
        for m in range(models):
            name = f"synthetic-model-{m:02d}"
            ability = 2.0 - 4.0 * m / max(1, models - 1)
            for b in range(benches):
                runs.append(
                    write_run(
                        store,
                        model=name,
                        ability=ability,
                        bench=f"bench_{b:02d}",
                        kind=kinds[b % 3],
                        dimension=DIMENSIONS[b % len(DIMENSIONS)],
                        samples=samples,
                        seed=seed,
                        hostile=hostile,
                    )  # fmt: skip
                )
    finally:
        store.close()
    return runs
