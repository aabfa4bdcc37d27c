"""Two models side by side: the paired difference on the questions both answered, per benchmark
and overall, and the questions where they disagree.

Pairing by question removes the variance that question difficulty shares between the models,
so a real difference shows up with far fewer questions than two independent intervals need.
A corpus metric (BLEU, perplexity) has no value per question to pair: such a benchmark is listed
apart with each model's own score, and only shares go into the overall difference, as only they
go into the overall score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

from gnomon.rank.board import Z95, Board, Model, overall_weights
from gnomon.rank.scale import SHARE, Scale
from gnomon.stats import PairedResult, Score, paired_difference
from gnomon.store import Store
from gnomon.store_reads import MetricValue, StoredSample


@dataclass
class BenchComparison:
    bench: str  # the board column: a benchmark in one setting, the same for both models
    title: str
    dimension: str
    metric: str
    run_a: str
    run_b: str
    a_mean: float
    b_mean: float
    result: PairedResult
    differ: list[str]  # sample ids whose headline metric differs, in question order
    same_prompt: bool
    # differing sample id -> the two results rows (rowid): a page of them is read by rowid, not
    # found by sample id among every row of both runs
    rowids: dict[str, tuple[int, int]] = field(default_factory=dict)
    standard: bool = True  # the benchmark's standard setting: the only ones overall counts
    scale: Scale = SHARE  # the compared metric's unit: only shares go into the overall


@dataclass
class Unpaired:
    """A column both models ran whose headline is a corpus metric: no per-question values, so
    no paired difference; each model's own score (with its interval) is shown instead."""

    bench: str
    title: str
    metric: str
    a: Score | None
    b: Score | None
    scale: Scale


@dataclass
class Comparison:
    a: Model
    b: Model
    benches: list[BenchComparison]
    overall: PairedResult | None  # over shared benchmarks, weighted as the overall score is
    only_a: list[str]
    only_b: list[str]
    unpaired: list[Unpaired] = field(default_factory=list)


def _paired_values(
    store: Store, bench: str, metric: str, run_a: str, n_a: int, run_b: str, n_b: int
) -> tuple[dict[str, MetricValue], dict[str, MetricValue], list[str]]:
    """Both runs' values and the shared questions in question order; when one run is much
    larger, only the questions the smaller one answered are read from it."""
    if n_a * 4 < n_b:
        va = store.headline_values(run_a, bench, metric)
        vb = store.headline_values(run_b, bench, metric, list(va))
        return va, vb, [i for i in va if i in vb]
    if n_b * 4 < n_a:
        vb = store.headline_values(run_b, bench, metric)
        va = store.headline_values(run_a, bench, metric, list(vb))
        return va, vb, [i for i in vb if i in va]
    va = store.headline_values(run_a, bench, metric)
    vb = store.headline_values(run_b, bench, metric)
    return va, vb, [i for i in va if i in vb]


def compare(store: Store, board: Board, a: Model, b: Model) -> Comparison:
    """Like with like: each board column (a benchmark in one setting) pairs the two models'
    runs in that column, so a 0-shot run is never paired with a 5-shot one."""
    shared = [bid for bid in board.benches if bid in a.entries and bid in b.entries]
    results: list[BenchComparison] = []
    unpaired: list[Unpaired] = []
    for bid in shared:
        bench = board.benches[bid]
        ea, eb = a.entries[bid], b.entries[bid]
        if bench.scale.corpus or ea.scale.corpus or eb.scale.corpus:
            unpaired.append(
                Unpaired(bid, bench.title, bench.headline, ea.score, eb.score, bench.scale)
            )
            continue
        va, vb, ids = _paired_values(
            store, bench.bench, bench.headline, ea.run_id, ea.done, eb.run_id, eb.done
        )
        xa = [float(va[i][0]) for i in ids]
        xb = [float(vb[i][0]) for i in ids]
        clusters = [va[i][1] for i in ids] if bench.cluster_by else None
        result = paired_difference(xa, xb, clusters)
        differ = [i for i, x, y in zip(ids, xa, xb, strict=True) if x != y]
        results.append(
            BenchComparison(
                bid,
                bench.title,
                bench.dimension,
                bench.headline,
                ea.run_id,
                eb.run_id,
                sum(xa) / len(xa) if xa else math.nan,
                sum(xb) / len(xb) if xb else math.nan,
                result,
                differ,
                (ea.bench_version, ea.prompt_hash) == (eb.bench_version, eb.prompt_hash),
                {i: (va[i][2], vb[i][2]) for i in differ},
                bench.standard,
                bench.scale,
            )  # fmt: skip
        )
    return Comparison(
        a,
        b,
        results,
        _overall(results),
        [bid for bid in a.entries if bid not in b.entries],
        [bid for bid in b.entries if bid not in a.entries],
        unpaired,
    )


def _overall(results: list[BenchComparison]) -> PairedResult | None:
    """Mean over dimensions of the mean over benchmarks in their standard settings, as the
    overall score is built; the benchmarks are independent, so their variances add."""
    usable = [
        r
        for r in results
        if r.standard and r.scale.share and r.result.n and not math.isnan(r.result.stderr)
    ]
    if not usable:
        return None
    weights = list(zip(overall_weights([r.dimension for r in usable]), usable, strict=True))
    diff = sum(w * r.result.mean_diff for w, r in weights)
    se = math.sqrt(sum((w * r.result.stderr) ** 2 for w, r in weights))
    n = sum(r.result.n for r in usable)
    if se == 0.0:
        p = 1.0 if diff == 0.0 else 0.0
        return PairedResult(diff, 0.0, diff, diff, n, p, "normal, benchmarks independent")
    p = 2.0 * (1.0 - NormalDist().cdf(abs(diff) / se))
    return PairedResult(
        diff, se, diff - Z95 * se, diff + Z95 * se, n, p, "normal, benchmarks independent"
    )


def disagreements(
    store: Store, comparison: Comparison, bench: str | None, offset: int, limit: int
) -> tuple[int, list[dict[str, Any]]]:
    """Questions whose headline metric differs between the two models: (total, one page)."""
    chosen = [bc for bc in comparison.benches if not bench or bc.bench == bench]
    total = sum(len(bc.differ) for bc in chosen)
    rows: list[dict[str, Any]] = []
    skip = offset
    for bc in chosen:
        if len(rows) >= limit:
            break
        if skip >= len(bc.differ):
            skip -= len(bc.differ)
            continue
        ids = bc.differ[skip : skip + limit - len(rows)]
        skip = 0
        a = _samples_at(store, [bc.rowids[sid][0] for sid in ids])
        b = _samples_at(store, [bc.rowids[sid][1] for sid in ids])
        for sid in ids:
            pa, pb = a[sid], b[sid]
            rows.append(
                {
                    "bench": bc.bench,
                    "run_a": bc.run_a,
                    "run_b": bc.run_b,
                    "sample_id": sid,
                    "index": pa.index,
                    "prompt": pa.prompt,
                    "a": _answer(pa.payload, bc.metric),
                    "b": _answer(pb.payload, bc.metric),
                    "a_value": pa.metrics.get(bc.metric),
                    "b_value": pb.metrics.get(bc.metric),
                    "target": _target(pa.payload),
                }
            )
    return total, rows


def _samples_at(store: Store, rowids: list[int]) -> dict[str, StoredSample]:
    """sample_id -> its results row, for these rows of one run."""
    return {r.sample_id: r for r in store.results_by_rowid(rowids).values()}


def _answer(payload: dict[str, Any], metric: str) -> str:
    """The answer the compared metric judged: acc_norm picks its own choice."""
    choices, norm = payload.get("choices"), payload.get("prediction_norm")
    if metric == "acc_norm" and choices and norm is not None:
        return str(choices[norm])
    for key in ("prediction_text", "prediction", "output"):
        if payload.get(key) is not None:
            return str(payload[key])
    return ""


def _target(payload: dict[str, Any]) -> str:
    for key in ("target_text", "target"):
        if payload.get(key) is not None:
            return str(payload[key])
    return ""
