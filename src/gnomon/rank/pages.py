"""What each page shows, as template contexts: built once here and rendered either by the web
app or by the static export, so the two cannot drift apart."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from gnomon.rank import charts
from gnomon.rank.board import Board, Entry, Model, corpus_of
from gnomon.rank.compare import compare, disagreements
from gnomon.rank.sample_detail import failure
from gnomon.rank.samples import FILTERS, sample_page
from gnomon.rank.scale import scale_of
from gnomon.stats import Score
from gnomon.store import Store

DISAGREE_PER_PAGE = 50


class NotFound(Exception):
    """A page for something the store does not hold: rendered as a 404 page."""


@dataclass(frozen=True)
class Page:
    template: str
    context: dict[str, Any]


def leaderboard(board: Board) -> Page:
    top = [(m, m.overall) for m in board.models if m.overall is not None][:30]
    chart = None
    if top:
        chart = charts.bars_with_errors(
            [m.name for m, _ in top],
            [o.value for _, o in top],
            [o.ci_low for _, o in top],
            [o.ci_high for _, o in top],
            "Overall score"
            + (" (grey: lacks some benchmarks)" if any(not m.complete for m, _ in top) else ""),
            muted=[not m.complete for m, _ in top],
        )
    return Page("leaderboard.html", {"title": "Leaderboard", "board": board, "chart": chart})


def model_page(store: Store, board: Board, slug: str) -> Page:
    model = board.model(slug)
    if model is None:
        raise NotFound(f"no model {slug!r} in this store")
    runs = {e.run_id: store.run(e.run_id) for e in model.entries.values()}
    history = store.run_history(model.key)
    dims = [d for d in board.dimensions if d in model.dimensions]
    dim_chart = None
    if len(dims) >= 3:
        dim_chart = charts.radar(dims, [model.dimensions[d].value for d in dims], "Dimensions")
    elif dims:
        dim_chart = charts.bars_with_errors(
            dims,
            [model.dimensions[d].value for d in dims],
            [model.dimensions[d].ci_low for d in dims],
            [model.dimensions[d].ci_high for d in dims],
            "Dimensions",
        )
    entries = [model.entries[b] for b in board.benches if b in model.entries]
    # one axis in %: BLEU or a perplexity is in the table, not on a chart of shares
    scored = [(e, e.score) for e in entries if e.score is not None and e.scale.share]
    bench_chart = None
    if scored:
        bench_chart = charts.bars_with_errors(
            [board.benches[e.column].title for e, _ in scored],
            [s.value for _, s in scored],
            [s.ci_low for _, s in scored],
            [s.ci_high for _, s in scored],
            "Benchmarks" + (" (shares)" if len(scored) < len(entries) else ""),
        )
    return Page(
        "model.html",
        {
            "title": model.name,
            "board": board,
            "model": model,
            "entries": entries,
            "runs": runs,
            "all_metrics": {e.column: _all_metrics(store, e) for e in entries},
            "flags": _entry_flags(store, entries),
            "history": history,
            "dim_chart": dim_chart,
            "bench_chart": bench_chart,
        },
    )


def _all_metrics(store: Store, entry: Entry) -> dict[str, Score]:
    """Every metric of the entry's run, its corpus ones too (LAMBADA's perplexity beside its
    acc): read from the samples for one model's page, never for the whole board."""
    info = next((b for b in store.run_benches(entry.run_id) if b["bench"] == entry.bench), None)
    spec = info["spec"] if info else {}
    names = spec.get("metrics", [])
    if all(m in entry.metrics or not scale_of(m, spec).corpus for m in names):
        return entry.metrics
    extra = corpus_of(store, entry.run_id, entry.bench, spec, entry.run_status, entry.created)
    order = {name: i for i, name in enumerate(names)}
    merged = entry.metrics | extra
    return dict(sorted(merged.items(), key=lambda kv: (order.get(kv[0], 99), kv[0])))


def bench_page(store: Store, board: Board, bench_id: str) -> Page:
    bench = board.benches.get(bench_id)
    if bench is None:
        raise NotFound(f"no benchmark {bench_id!r} in this store")
    rows: list[tuple[Model, Entry]] = [
        (m, m.entries[bench_id]) for m in board.models if bench_id in m.entries
    ]
    # best first: a lower-is-better metric (perplexity, TER) ascending; no score last
    sign = 1.0 if not bench.scale.higher_is_better else -1.0
    rows.sort(key=lambda me: _sort_value(me[1], sign))
    # a standard column may be empty: every model ran the benchmark in another setting
    newest = max((e for _, e in rows), key=lambda e: e.created, default=None)
    example = store.first_sample(newest.run_id, bench.bench) if newest else None
    scored = [(m, e.score) for m, e in rows if e.score is not None]
    chart = None
    if scored:
        chart = charts.bars_with_errors(
            [m.name for m, _ in scored],
            [s.value for _, s in scored],
            [s.ci_low for _, s in scored],
            [s.ci_high for _, s in scored],
            f"{bench.title}: {bench.headline}",
            scale=bench.scale,
        )
    return Page(
        "bench.html",
        {
            "title": bench.title,
            "board": board,
            "bench": bench,
            "rows": rows,
            "example": example,
            "example_run": newest.run_id if newest else None,
            "chart": chart,
        },
    )


def _sort_value(entry: Entry, sign: float) -> float:
    score = entry.score
    if score is None or math.isnan(score.value):
        return math.inf
    return sign * score.value


def compare_page(
    store: Store, board: Board, a: str, b: str, bench: str | None = None, page: int = 1
) -> Page:
    model_a, model_b = board.model(a), board.model(b)
    if model_a is None:
        raise NotFound(f"no model {a!r} in this store")
    if model_b is None:
        raise NotFound(f"no model {b!r} in this store")
    if bench and bench not in board.benches:
        raise NotFound(f"no benchmark {bench!r} in this store")
    comparison = compare(store, board, model_a, model_b)
    offset = (max(1, page) - 1) * DISAGREE_PER_PAGE
    total, rows = disagreements(store, comparison, bench, offset, DISAGREE_PER_PAGE)
    pages = max(1, -(-total // DISAGREE_PER_PAGE))
    return Page(
        "compare.html",
        {
            "title": f"{model_a.name} vs {model_b.name}",
            "board": board,
            "cmp": comparison,
            "bench_filter": bench,
            "disagree_total": total,
            "disagree_rows": rows,
            "page": min(max(1, page), pages),
            "pages": pages,
        },
    )


FAILURES_SHOWN = 50  # a page lists this many unscored samples; `gnomon runs show` lists all


def samples_view(
    store: Store,
    board: Board,
    run_id: str,
    bench: str,
    filter: str = "all",
    query: str = "",
    page: int = 1,
) -> Page:
    run = store.run_row(run_id)
    if run is None:
        raise NotFound(f"no run {run_id!r} in this store")
    benches = store.run_benches(run_id)
    info = next((b for b in benches if b["bench"] == bench), None)
    if info is None:
        raise NotFound(f"run {run_id} has no benchmark {bench!r}")
    chosen = next((f for f in FILTERS if f == filter), None)
    if chosen is None:
        raise NotFound(f"no filter {filter!r}: use one of {', '.join(FILTERS)}")
    spec = info["spec"]
    headline = info.get("headline") or spec.get("headline") or spec["metrics"][0]
    # the stored flag is acc for choice, exact_match for generation, the first completion for
    # code; a benchmark reported by another metric (acc_norm) is judged by that metric here
    verdict = None if headline in ("acc", "exact_match", "pass@1") else headline
    # BLEU or a perplexity has no value per sample: no sample is correct or wrong by it
    corpus = scale_of(headline, spec).corpus
    if corpus:
        verdict = None
    judge = spec.get("judge") if isinstance(spec.get("judge"), dict) else None
    result = sample_page(store, run_id, bench, chosen, query, page, verdict=verdict, judge=judge)
    # samples with no score (a judgment no reply could be read from): their reasons keep the
    # judge's raw replies, shown beside the scored ones so a reader sees what was left out
    failed = [f for f in store.failures(run_id) if f["bench"] == bench]
    shown_failures = [
        {"sample_id": f["sample_id"], **failure(f["reason"])} for f in failed[:FAILURES_SHOWN]
    ]
    model = next((m for m in board.models if m.key == run["model_key"]), None)
    # the column this run stands in (a 0-shot run's is `mmlu@0shot`), else the benchmark's own
    entries = model.entries.values() if model else ()
    column = next((e.column for e in entries if (e.run_id, e.bench) == (run_id, bench)), bench)
    return Page(
        "samples.html",
        {
            "title": f"{bench} samples of {run['model']}",
            "board": board,
            "run": run,
            "model": model,
            "benches": benches,
            "bench": info,
            "column": column,
            "sp": result,
            "filters": ("all",) if corpus else FILTERS,
            "corpus_headline": headline if corpus else None,
            "flags": _flag_counts(store, run_id, bench),
            "failures": shown_failures,
            "failed_total": len(failed),
        },
    )


def _flag_counts(store: Store, run_id: str, bench: str) -> dict[str, int]:
    """The run's samples of this benchmark that a score alone does not show: prompts cut to fit
    the window, generations cut at their token budget, answers no extractor could read."""
    return _run_flags(store, run_id).get(bench, {})


def _run_flags(store: Store, run_id: str) -> dict[str, dict[str, int]]:
    """`_flag_counts` of every benchmark of a run: three queries, whatever it holds."""
    counts = {
        "truncated": store.truncated_counts(run_id),
        "cut at max tokens": store.cut_counts(run_id),
        "no answer": store.no_answer_counts(run_id),
    }
    benches = {bench for per in counts.values() for bench in per}
    return {b: {name: per.get(b, 0) for name, per in counts.items()} for b in benches}


def _entry_flags(store: Store, entries: list[Entry]) -> dict[str, dict[str, int]]:
    """Each model-page entry's `_flag_counts`, each run read once."""
    runs = {e.run_id: _run_flags(store, e.run_id) for e in entries}
    return {e.column: runs[e.run_id].get(e.bench, {}) for e in entries}
