"""The leaderboard's numbers, read from the store: which run stands behind each (model,
benchmark, setting) cell, its score with interval, and the dimension and overall means.

Scores come from per-cluster moments aggregated in SQL (`Store.moments`), so a board of
thousands of runs costs one query per 500 runs, not a pass over every sample. A benchmark whose
headline is a corpus metric (BLEU, perplexity) has no per-sample value: only its runs' samples
are read, as `gnomon run`'s report reads them. Only shares (0..1, higher is better) go into the
means; BLEU or a perplexity is shown in its own unit beside them (`gnomon.rank.scale`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from statistics import NormalDist
from typing import Any, get_args

from gnomon.hub.spec import Dimension
from gnomon.judge_info import (
    Reliability,
    judge_names,
    judge_prompt_hash,
    judge_sampling,
    reliability,
)
from gnomon.rank.names import display_names, slugs
from gnomon.rank.scale import SHARE, Scale, scale_of
from gnomon.rank.settings import STANDARD, Setting, column_id, setting_of
from gnomon.report import corpus_scores, produced_headline, scores_from_moments
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
    judge: str | None = None  # the model key of the judge that scored this run's answers
    judge_name: str | None = None  # ... and the name it is shown under
    judge_prompt_hash: str | None = None  # the judge section of the run's spec, hashed
    judge_sampling: str | None = None  # K ratings at a temperature, where the judge sampled
    reliability: Reliability | None = None  # position flips or rating spread, when measured
    odd_judge_prompt: bool = False  # another judge prompt than most runs in its column
    setting: Setting = STANDARD
    column: str = ""  # the board column it sits in; `bench` stays the store's id for queries
    scale: Scale = SHARE  # the unit of its headline metric

    def __post_init__(self) -> None:
        self.column = self.column or self.bench

    @property
    def score(self) -> Score | None:
        return self.metrics.get(self.headline)

    @property
    def partial(self) -> bool:
        return self.done < self.planned


@dataclass
class Bench:
    """A column: a benchmark in its standard setting (`id` is the benchmark id) or in another
    setting (`id` like `mmlu@0shot`); `bench` is the store's benchmark id either way."""

    id: str
    title: str
    dimension: str
    headline: str
    cluster_by: str | None
    spec: dict[str, Any]
    bench: str = ""
    setting: Setting = STANDARD
    judge: str | None = None  # a judged column: its judge's shown name (one judge a column)
    judge_key: str | None = None

    def __post_init__(self) -> None:
        self.bench = self.bench or self.id

    @property
    def standard(self) -> bool:
        return self.setting.standard

    @cached_property
    def scale(self) -> Scale:
        return scale_of(self.headline, self.spec)

    @property
    def averaged(self) -> bool:
        """Whether the means count it: the standard setting of a benchmark scored as a share."""
        return self.standard and self.scale.share


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

    def benches_of(self, dimension: str, variants: bool = True) -> list[Bench]:
        """The dimension's columns in display order; `variants=False`: only the columns its
        means are made of (standard settings scored as shares)."""
        return [
            b
            for b in self.benches.values()
            if b.dimension == dimension and (variants or b.averaged)
        ]

    @property
    def unaveraged(self) -> list[Bench]:
        """Standard columns left out of the means: scored in another unit than a share."""
        return [b for b in self.benches.values() if b.standard and not b.scale.share]

    @property
    def standard_benches(self) -> list[Bench]:
        return [b for b in self.benches.values() if b.standard]

    def settings_of(self, bench: str) -> list[Bench]:
        """Every column of one store benchmark: its standard setting first, then variants."""
        return [b for b in self.benches.values() if b.bench == bench]

    def model(self, slug: str) -> Model | None:
        return next((m for m in self.models if m.slug == slug), None)


def headline_of(spec: dict[str, Any]) -> str:
    return spec.get("headline") or spec["metrics"][0]


Slot = tuple[str, str, Setting]  # (model key, store benchmark id, setting)


def _choose(
    candidates: list[dict[str, Any]],
    spec_of: Callable[[dict[str, Any]], dict[str, Any]],
    other_judge: Callable[[dict[str, Any]], str | None],
) -> dict[Slot, dict[str, Any]]:
    """Per (model, benchmark, setting): the newest run that is not a `--limit` subset, or the
    newest limited one when that is all there is. A quick `--limit 10` check never hides a full
    run, and a 0-shot run never hides a 5-shot one: each setting keeps its own cell, and so
    does each judge (`other_judge`: the shown name of a judge other than the usual one).
    `config` is decoded already."""
    chosen: dict[Slot, dict[str, Any]] = {}
    for row in candidates:
        row["limited"] = row["config"].get("limit") is not None
        row["setting"] = setting_of(row["shots"], spec_of(row), row["config"], row["model_key"])
        judge = other_judge(row)
        if judge is not None:
            row["setting"] = dataclasses.replace(row["setting"], judge=judge)
        slot = (row["model_key"], row["bench"], row["setting"])
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
    specs: dict[str, dict[str, Any]] = {}  # every model's run repeats its benchmark's spec text

    def spec_of(row: dict[str, Any]) -> dict[str, Any]:
        if row["spec"] not in specs:
            specs[row["spec"]] = json.loads(row["spec"])
        return specs[row["spec"]]

    rows = store.leaderboard_rows()
    for row in rows:
        row["config"] = json.loads(row["config"])
    names = _judge_names(rows)
    usual = _usual_judges(rows)

    def other_judge(row: dict[str, Any]) -> str | None:
        judge = row.get("judge")
        return names[judge] if judge and judge != usual.get(row["bench"]) else None

    chosen = _choose(rows, spec_of, other_judge)
    benches = _columns(chosen, spec_of, names)
    column_of = {(b.bench, b.setting): b.id for b in benches.values()}
    moments: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in store.moments([r["run_id"] for r in chosen.values()]):
        moments[(row["run_id"], row["bench"])].append(row)

    models: dict[str, Model] = {}
    model_names: dict[str, tuple[float, str]] = {}
    for (key, bench, setting), row in chosen.items():
        if row["created"] >= model_names.get(key, (-1.0, ""))[0]:
            model_names[key] = (row["created"], row["model"])
        column = benches[column_of[(bench, setting)]]
        own_spec = spec_of(row)
        metrics, _ = scores_from_moments(
            moments[(row["run_id"], bench)], own_spec.get("cluster_by")
        )
        wanted = row.get("headline") or column.headline
        if scale_of(wanted, own_spec).corpus:  # read the samples only where the headline needs
            corpus = corpus_of(store, row["run_id"], bench, own_spec, row["status"], row["created"])
            metrics |= {name: s for name, s in corpus.items() if s.n}  # none yet: a dash
        # the metric this run reports: the one it produced (a run answered by generation has
        # `acc` where the column reads `acc_norm`), marked on the board when it differs
        headline = produced_headline(wanted, own_spec, metrics)
        done = metrics[headline].n if headline in metrics else 0
        note = row.get("headline_note") if headline != column.headline else None
        entry = Entry(
            key, bench, row["run_id"], row["status"], row["created"], row["bench_version"],
            row["prompt_hash"], row["shots"], row["planned"], done, row["limited"], headline,
            metrics, row["config"], headline_note=note or (
                None if headline == column.headline
                else f"this run reports {headline}, not {column.headline}"
            ), judge=row.get("judge"), setting=setting, column=column.id,
            scale=scale_of(headline, own_spec),
        )  # fmt: skip
        if entry.judge:
            entry.judge_name = names.get(entry.judge, entry.judge)
            entry.judge_prompt_hash = judge_prompt_hash(own_spec)
            entry.judge_sampling = judge_sampling(own_spec)
            entry.reliability = reliability(metrics)
        models.setdefault(key, Model(key, "", "")).entries[column.id] = entry
    _name_models(models, model_names)
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


_CORPUS_KEPT: dict[tuple[str, str, str, float], dict[str, Score]] = {}


def corpus_of(
    store: Store, run_id: str, bench: str, spec: dict[str, Any], status: str, created: float
) -> dict[str, Score]:
    """The run's corpus metrics on one benchmark, as its report computes them. A complete run
    never changes, so its scores are kept for the process (the web app rebuilds the board
    whenever the store changes, which a run elsewhere does all the time)."""
    if status != "complete":
        return corpus_scores(store, run_id, bench, spec)
    key = (str(store.path), run_id, bench, created)
    if key not in _CORPUS_KEPT:
        if len(_CORPUS_KEPT) > 4096:
            _CORPUS_KEPT.clear()
        _CORPUS_KEPT[key] = corpus_scores(store, run_id, bench, spec)
    return _CORPUS_KEPT[key]


def _judge_names(rows: list[dict[str, Any]]) -> dict[str, str]:
    """Judge model key -> shown name: the `--judge` its newest run was given, told apart from
    another judge of that name as models are."""
    displays: dict[str, tuple[float, str]] = {}
    for row in rows:
        judge = row.get("judge")
        if judge and row["created"] >= displays.get(judge, (-1.0, ""))[0]:
            displays[judge] = (row["created"], str(row["config"].get("judge") or judge))
    return judge_names({key: shown for key, (_, shown) in displays.items()})


def _usual_judges(rows: list[dict[str, Any]]) -> dict[str, str]:
    """Per judged benchmark, the judge whose scores make its standard column: the one that
    judged the most models (then the one judging most recently). Scores by any other judge are
    another measurement, kept in a column of their own. A run that stored no score (its judge
    never answered) judged nobody."""
    models: dict[tuple[str, str], set[str]] = defaultdict(set)
    newest: dict[tuple[str, str], float] = {}
    for row in rows:
        if row.get("judge") and row.get("scored"):
            slot = (row["bench"], row["judge"])
            models[slot].add(row["model_key"])
            newest[slot] = max(newest.get(slot, -1.0), row["created"])
    best: dict[str, tuple[int, float, str]] = {}
    for (bench, judge), keys in models.items():
        rank = (len(keys), newest[(bench, judge)], judge)
        if bench not in best or rank > best[bench]:
            best[bench] = rank
    return {bench: rank[2] for bench, rank in best.items()}


def _columns(
    chosen: dict[Slot, dict[str, Any]],
    spec_of: Callable[[dict[str, Any]], dict[str, Any]],
    judges: dict[str, str],
) -> dict[str, Bench]:
    """One column per benchmark in its standard setting, whether or not any model ran that
    setting, and one beside it per other setting seen. The newest spec of a benchmark names
    its title, dimension and headline metric; a variant reports what its newest run reported
    (a choice benchmark answered by generation has `acc`, not `acc_norm`)."""
    newest: dict[tuple[str, Setting | None], dict[str, Any]] = {}
    for (_, bench, setting), row in chosen.items():
        for slot in ((bench, None), (bench, setting)):
            if slot not in newest or row["created"] >= newest[slot]["created"]:
                newest[slot] = row
    columns: dict[str, Bench] = {}
    for (bench, which), row in newest.items():
        if which is None:
            spec = spec_of(row)
            columns[bench] = Bench(
                bench, spec.get("title", bench), spec.get("dimension", "knowledge"),
                headline_of(spec), spec.get("cluster_by"), spec,
            )  # fmt: skip
    for bench, column in columns.items():  # a column's runs share one judge
        judge = newest.get((bench, STANDARD), {}).get("judge")
        if judge:
            column.judge, column.judge_key = judges.get(judge, judge), judge
    variants = sorted(
        (slot for slot in newest if slot[1] is not None and not slot[1].standard),
        key=lambda slot: (slot[0], slot[1].order),  # type: ignore[union-attr]
    )
    for bench, variant in variants:
        assert variant is not None
        setting = variant
        main, spec = columns[bench], spec_of(newest[(bench, setting)])
        ident = column_id(bench, setting, columns)
        judge = newest[(bench, setting)].get("judge")
        columns[ident] = Bench(
            ident, f"{main.title} · {setting.label}", main.dimension,
            newest[(bench, setting)].get("headline") or headline_of(spec),
            spec.get("cluster_by"), spec, bench, setting,
            judges.get(judge, judge) if judge else None, judge,
        )  # fmt: skip
    order = {d: i for i, d in enumerate(DIMENSIONS)}

    def place(b: Bench) -> tuple[int, str, str, tuple[Any, ...]]:
        main = columns[b.bench]
        return (order.get(main.dimension, 99), main.title, b.bench, b.setting.order)

    return {b.id: b for b in sorted(columns.values(), key=place)}


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
        # one judge a column; a judge asked with another prompt is marked as a prompt is
        prompts = Counter(
            m.entries[bench].judge_prompt_hash for m in models.values() if bench in m.entries
        )
        if len(prompts) > 1:
            usual = prompts.most_common(1)[0][0]
            for m in models.values():
                e = m.entries.get(bench)
                if e is not None and e.judge_prompt_hash != usual:
                    e.odd_judge_prompt = True


def _counted(entry: Entry | None) -> Score | None:
    """The entry's score when the means may use it: a run that reports another metric than
    a share in a share column (none should) is not averaged in."""
    if entry is None or entry.score is None or not entry.scale.share:
        return None
    return entry.score


def _aggregate(model: Model, benches: dict[str, Bench], dimensions: list[str]) -> None:
    """Dimension = mean of its benchmarks; overall = mean of the dimensions. A benchmark the
    model lacks is listed in `missing`, never averaged in as zero. Only standard settings
    count: a variant is the same benchmark measured again, and must not weigh twice. Only
    shares count: BLEU points or a perplexity cannot be averaged with accuracies, so such a
    benchmark is neither in a mean nor ever missing from one."""
    parts: list[tuple[str, Score]] = []
    for dim in dimensions:
        ids = [b.id for b in benches.values() if b.dimension == dim and b.averaged]
        counted = {b: _counted(model.entries.get(b)) for b in ids}
        have = [s for s in counted.values() if s is not None]
        model.missing[dim] = [b for b, s in counted.items() if s is None]
        if have:
            model.dimensions[dim] = mean_interval(have)
            parts.extend((dim, s) for s in have)
    if parts:
        weights = overall_weights([dim for dim, _ in parts])
        model.overall = weighted_interval(
            [(w, s) for w, (_, s) in zip(weights, parts, strict=True)]
        )
