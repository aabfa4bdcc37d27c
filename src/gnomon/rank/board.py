"""The leaderboard's numbers, read from the store: which run stands behind each (model,
benchmark) cell, its score with interval, and the dimension and overall means.

Scores come from per-cluster moments aggregated in SQL (`Store.moments`), so a board of
thousands of runs costs one query per 500 runs, not a pass over every sample.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, get_args

from gnomon.hub.spec import Dimension
from gnomon.rank.names import display_names, slugs
from gnomon.report import produced_headline, scores_from_moments
from gnomon.stats import Score
from gnomon.store import Store

DIMENSIONS: tuple[str, ...] = get_args(Dimension)
Z95 = NormalDist().inv_cdf(0.975)


@dataclass(frozen=True)
class Interval:
    """A mean of independent scores, with a normal-approximation 95% interval."""

    value: float
    stderr: float
    ci_low: float
    ci_high: float


@dataclass
class Entry:
    """One model's standing on one benchmark: the run chosen for it and its scores."""

    model_key: str
    bench: str
    run_id: str
    run_status: str
    created: float
    bench_version: int
    prompt_hash: str
    shots: int
    planned: int
    done: int
    limited: bool
    headline: str
    metrics: dict[str, Score]
    config: dict[str, Any]
    odd_prompt: bool = False  # prompt differs from the one most models on the board used
    headline_note: str | None = None  # why this run reports another metric than the column
    judge: str | None = None  # the model that judged this run's answers
    odd_judge: bool = False  # judged by another model than most runs of this benchmark

    @property
    def score(self) -> Score | None:
        return self.metrics.get(self.headline)

    @property
    def partial(self) -> bool:
        return self.done < self.planned


@dataclass
class Bench:
    id: str
    title: str
    dimension: str
    headline: str
    cluster_by: str | None
    spec: dict[str, Any]


@dataclass
class Model:
    key: str
    name: str
    slug: str
    entries: dict[str, Entry] = field(default_factory=dict)  # bench id -> entry
    dimensions: dict[str, Interval] = field(default_factory=dict)
    missing: dict[str, list[str]] = field(default_factory=dict)  # dimension -> benches lacking
    overall: Interval | None = None

    @property
    def complete(self) -> bool:
        return not any(self.missing.values())

    @property
    def in_progress(self) -> bool:
        return any(e.partial for e in self.entries.values())


@dataclass
class Board:
    models: list[Model]
    benches: dict[str, Bench]  # in display order: by dimension, then title
    dimensions: list[str]  # those with at least one benchmark on the board

    def benches_of(self, dimension: str) -> list[Bench]:
        return [b for b in self.benches.values() if b.dimension == dimension]

    def model(self, slug: str) -> Model | None:
        return next((m for m in self.models if m.slug == slug), None)


def headline_of(spec: dict[str, Any]) -> str:
    return spec.get("headline") or spec["metrics"][0]


def _choose(candidates: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (model, benchmark): the newest run that is not a `--limit` subset, or the newest
    limited one when that is all there is. A quick `--limit 10` check never hides a full run."""
    chosen: dict[tuple[str, str], dict[str, Any]] = {}
    for row in candidates:
        row["config"] = json.loads(row["config"])
        row["limited"] = row["config"].get("limit") is not None
        slot = (row["model_key"], row["bench"])
        best = chosen.get(slot)
        if best is None or (not row["limited"], row["created"]) > (
            not best["limited"],
            best["created"],
        ):
            chosen[slot] = row
    return chosen


def _same(score: Score | Interval) -> Interval:
    return Interval(score.value, score.stderr, score.ci_low, score.ci_high)


def mean_interval(scores: list[Score]) -> Interval:
    """Mean of independent benchmark scores; the standard error adds in quadrature. A mean of
    one score keeps that score's own (e.g. Wilson) interval."""
    return weighted_interval([(1.0 / len(scores), s) for s in scores])


def overall_weights(dimensions: list[str]) -> list[float]:
    """The weight of each part, named by its dimension, in an overall figure: every dimension
    counts the same, and so does every benchmark within one."""
    per_dim = Counter(dimensions)
    return [1.0 / (len(per_dim) * per_dim[d]) for d in dimensions]


def weighted_interval(parts: list[tuple[float, Score | Interval]]) -> Interval:
    if len(parts) == 1 and parts[0][0] == 1.0:
        return _same(parts[0][1])
    value = sum(w * s.value for w, s in parts)
    se = math.sqrt(sum((w * s.stderr) ** 2 for w, s in parts))
    return Interval(value, se, value - Z95 * se, value + Z95 * se)


def load_board(store: Store) -> Board:
    chosen = _choose(store.leaderboard_rows())
    specs: dict[str, dict[str, Any]] = {}  # every model's run repeats its benchmark's spec text

    def spec_of(row: dict[str, Any]) -> dict[str, Any]:
        if row["spec"] not in specs:
            specs[row["spec"]] = json.loads(row["spec"])
        return specs[row["spec"]]

    # the newest spec of each benchmark names its title, dimension and headline metric
    latest_spec: dict[str, dict[str, Any]] = {}
    newest: dict[str, float] = {}
    for (_, bench), row in chosen.items():
        if row["created"] >= newest.get(bench, -1.0):
            newest[bench] = row["created"]
            latest_spec[bench] = spec_of(row)
    benches = {
        bid: Bench(
            bid,
            spec.get("title", bid),
            spec.get("dimension", "knowledge"),
            headline_of(spec),
            spec.get("cluster_by"),
            spec,
        )  # fmt: skip
        for bid, spec in latest_spec.items()
    }
    order = {d: i for i, d in enumerate(DIMENSIONS)}
    benches = dict(
        sorted(benches.items(), key=lambda kv: (order.get(kv[1].dimension, 99), kv[1].title))
    )
    moments: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in store.moments([r["run_id"] for r in chosen.values()]):
        moments[(row["run_id"], row["bench"])].append(row)

    models: dict[str, Model] = {}
    names: dict[str, tuple[float, str]] = {}
    for (key, bench), row in chosen.items():
        if row["created"] >= names.get(key, (-1.0, ""))[0]:
            names[key] = (row["created"], row["model"])
        own_spec = spec_of(row)
        metrics, _ = scores_from_moments(
            moments[(row["run_id"], bench)], own_spec.get("cluster_by")
        )
        # the metric this run reports: the one it produced (a run answered by generation has
        # `acc` where the column reads `acc_norm`), marked on the board when it differs
        headline = produced_headline(
            row.get("headline") or benches[bench].headline, own_spec, metrics
        )
        done = metrics[headline].n if headline in metrics else 0
        note = row.get("headline_note") if headline != benches[bench].headline else None
        entry = Entry(
            key, bench, row["run_id"], row["status"], row["created"], row["bench_version"],
            row["prompt_hash"], row["shots"], row["planned"], done, row["limited"], headline,
            metrics, row["config"], headline_note=note or (
                None if headline == benches[bench].headline
                else f"this run reports {headline}, not {benches[bench].headline}"
            ), judge=row.get("judge"),
        )  # fmt: skip
        models.setdefault(key, Model(key, "", "")).entries[bench] = entry
    _name_models(models, names)
    _mark_odd_prompts(models, benches)
    dimensions = [d for d in DIMENSIONS if any(b.dimension == d for b in benches.values())]
    dimensions += sorted({b.dimension for b in benches.values()} - set(dimensions))
    for model in models.values():
        _aggregate(model, benches, dimensions)
    # models with every benchmark rank first: a partial mean is not comparable with full ones
    ranked = sorted(
        models.values(),
        key=lambda m: (
            m.overall is None,
            not m.complete,
            -(m.overall.value if m.overall else 0),
            m.name,
        ),
    )
    return Board(ranked, benches, dimensions)


def _name_models(models: dict[str, Model], names: dict[str, tuple[float, str]]) -> None:
    shown = display_names({key: names[key][1] for key in models})
    slug_of = slugs(shown)
    for key, model in models.items():
        model.name = shown[key]
        model.slug = slug_of[key]


def _mark_odd_prompts(models: dict[str, Model], benches: dict[str, Bench]) -> None:
    for bench in benches:
        seen = Counter(
            (m.entries[bench].bench_version, m.entries[bench].prompt_hash)
            for m in models.values()
            if bench in m.entries
        )
        if len(seen) > 1:
            common = seen.most_common(1)[0][0]
            for m in models.values():
                e = m.entries.get(bench)
                if e is not None and (e.bench_version, e.prompt_hash) != common:
                    e.odd_prompt = True
        judges = Counter(m.entries[bench].judge for m in models.values() if bench in m.entries)
        if len(judges) > 1:  # scores by different judges are not the same measurement
            usual = judges.most_common(1)[0][0]
            for m in models.values():
                e = m.entries.get(bench)
                if e is not None and e.judge != usual:
                    e.odd_judge = True


def _aggregate(model: Model, benches: dict[str, Bench], dimensions: list[str]) -> None:
    """Dimension = mean of its benchmarks; overall = mean of the dimensions. A benchmark the
    model lacks is listed in `missing`, never averaged in as zero."""
    parts: list[tuple[str, Score]] = []
    for dim in dimensions:
        ids = [b.id for b in benches.values() if b.dimension == dim]
        scores = (model.entries[b].score for b in ids if b in model.entries)
        have = [s for s in scores if s is not None]
        model.missing[dim] = [
            b for b in ids if b not in model.entries or model.entries[b].score is None
        ]
        if have:
            model.dimensions[dim] = mean_interval(have)
            parts.extend((dim, s) for s in have)
    if parts:
        weights = overall_weights([dim for dim, _ in parts])
        model.overall = weighted_interval(
            [(w, s) for w, (_, s) in zip(weights, parts, strict=True)]
        )
