"""The leaderboard's numbers: SQL moments rebuild `summarize` exactly, the board picks the right
run for each cell, dimension and overall means follow their definition, comparisons are paired,
and the sample pages filter and page in SQL."""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path

import pytest

from gnomon.rank.board import load_board
from gnomon.rank.compare import compare, disagreements
from gnomon.rank.samples import sample_page
from gnomon.report import bench_reports
from gnomon.stats import Moments, paired_difference, summarize, summarize_moments
from gnomon.store import Store
from gnomon_testing.synthetic import write_run


def _moments(values: list[float], clusters: list[str] | None) -> list[Moments]:
    groups: dict[str, list[float]] = {}
    for i, v in enumerate(values):
        groups.setdefault(clusters[i] if clusters else "", []).append(v)
    return [Moments(len(g), sum(g), sum(x * x for x in g)) for g in groups.values()]


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("n_clusters", [None, 1, 2, 9])
@pytest.mark.parametrize("n", [0, 1, 2, 37, 500])
def test_moments_rebuild_summarize(binary: bool, n_clusters: int | None, n: int) -> None:
    rng = random.Random(f"{binary}{n_clusters}{n}")
    values = [
        float(rng.random() < 0.6) if binary else rng.choice([0.0, 0.1, 0.5, 0.9, 1.0])
        for _ in range(n)
    ]
    clusters = [f"c{rng.randrange(n_clusters)}" for _ in range(n)] if n_clusters else None
    expected = summarize(values, clusters)
    is_binary = all(v in (0.0, 1.0) for v in values)
    got = summarize_moments(_moments(values, clusters), is_binary, clustered=bool(n_clusters))
    assert got.method == expected.method
    assert got.n == expected.n
    assert got.n_clusters == (len(set(clusters)) if clusters is not None else None)
    assert got.n_clusters == expected.n_clusters
    for field in ("value", "stderr", "ci_low", "ci_high"):
        a, b = getattr(got, field), getattr(expected, field)
        assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-9, abs=1e-12)


def _raw(store: Store, run_id: str, bench: str, metric: str) -> tuple[list[float], list]:
    rows = store.conn.execute(
        "SELECT s.metrics, s.cluster FROM run_results r JOIN results s ON s.key = r.key "
        "WHERE r.run_id = ? AND r.bench = ? ORDER BY s.idx",
        (run_id, bench),
    ).fetchall()
    return [json.loads(m)[metric] for m, _ in rows], [c for _, c in rows]


def test_board_cells_are_the_runs_own_scores(rank_store: dict) -> None:
    store = Store(rank_store["path"], create=False)
    board = load_board(store)
    assert {m.name for m in board.models} == {
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot"
    }  # fmt: skip
    checked = 0
    for model in board.models:
        for bench_id, entry in model.entries.items():
            bench = board.benches[bench_id]
            values, clusters = _raw(store, entry.run_id, bench_id, bench.headline)
            expected = summarize(values, clusters if bench.cluster_by else None)
            assert entry.score.value == pytest.approx(expected.value, abs=1e-12)
            assert entry.score.ci_low == pytest.approx(expected.ci_low, abs=1e-9)
            assert entry.score.ci_high == pytest.approx(expected.ci_high, abs=1e-9)
            assert entry.score.method == expected.method
            checked += 1
    assert checked == 4 * 4 + 3 + 1
    # ARC-like choice benchmarks report acc_norm, as published leaderboards do
    assert board.benches["bench_a"].headline == "acc_norm"
    assert board.benches["bench_b"].cluster_by == "subject"
    assert board.benches["bench_b"].headline == "acc"


def test_board_picks_full_runs_and_marks_gaps(rank_store: dict) -> None:
    board = load_board(Store(rank_store["path"], create=False))
    models = {m.name: m for m in board.models}
    alpha = models["alpha"].entries["bench_a"]
    assert alpha.run_id == rank_store["runs"][("alpha", "bench_a")]  # not the newer --limit run
    assert (alpha.done, alpha.limited) == (120, False)
    foxtrot = models["foxtrot"]
    assert foxtrot.entries["bench_a"].partial
    assert (foxtrot.entries["bench_a"].done, foxtrot.entries["bench_a"].planned) == (60, 120)
    assert foxtrot.in_progress and not foxtrot.complete
    echo = models["echo"]
    assert echo.missing["math"] == ["bench_c"] and "math" not in echo.dimensions
    assert not echo.complete and echo.overall is not None
    # complete models rank first, by overall; partial ones follow
    order = [m.name for m in board.models]
    assert order[:4] == ["alpha", "bravo", "charlie", "delta"]
    assert set(order[4:]) == {"echo", "foxtrot"}
    assert board.dimensions == ["knowledge", "reasoning", "math"]


def test_dimension_and_overall_means(rank_store: dict) -> None:
    board = load_board(Store(rank_store["path"], create=False))
    for model in board.models:
        parts = []
        for dim in board.dimensions:
            scores = [
                model.entries[b.id].score for b in board.benches_of(dim) if b.id in model.entries
            ]
            if not scores:
                assert dim not in model.dimensions  # never a zero for a missing dimension
                continue
            got = model.dimensions[dim]
            assert got.value == pytest.approx(sum(s.value for s in scores) / len(scores))
            if len(scores) == 1:  # one benchmark: its own (Wilson) interval
                assert (got.ci_low, got.ci_high) == (scores[0].ci_low, scores[0].ci_high)
            else:
                se = math.sqrt(sum(s.stderr**2 for s in scores)) / len(scores)
                assert got.stderr == pytest.approx(se)
                assert got.ci_high - got.value == pytest.approx(1.959964 * se, rel=1e-5)
            parts.append(got.value)
        assert model.overall.value == pytest.approx(sum(parts) / len(parts))


def test_compare_is_paired_on_shared_questions(rank_store: dict) -> None:
    store = Store(rank_store["path"], create=False)
    board = load_board(store)
    models = {m.name: m for m in board.models}
    cmp = compare(store, board, models["alpha"], models["echo"])
    assert [bc.bench for bc in cmp.benches] == ["bench_a", "bench_b", "bench_d"]
    assert cmp.only_a == ["bench_c"] and cmp.only_b == []
    for bc in cmp.benches:
        va, clusters = _raw(store, bc.run_a, bc.bench, bc.metric)
        vb, _ = _raw(store, bc.run_b, bc.bench, bc.metric)
        expected = paired_difference(
            va, vb, clusters if board.benches[bc.bench].cluster_by else None
        )
        assert bc.result.mean_diff == pytest.approx(expected.mean_diff)
        assert bc.result.p_value == pytest.approx(expected.p_value)
        assert bc.result.ci_low == pytest.approx(expected.ci_low)
        assert len(bc.differ) == sum(a != b for a, b in zip(va, vb, strict=True))
    assert cmp.overall is not None and cmp.overall.ci_low < cmp.overall.mean_diff
    # foxtrot answered 60 questions of bench_a: only those are paired
    partial = compare(store, board, models["alpha"], models["foxtrot"])
    assert [bc.result.n for bc in partial.benches] == [60]
    total = sum(len(bc.differ) for bc in cmp.benches)
    seen = []
    for offset in range(0, total, 7):
        count, rows = disagreements(store, cmp, None, offset, 7)
        assert count == total
        seen += [(r["bench"], r["sample_id"]) for r in rows]
        for r in rows:
            assert r["a_value"] != r["b_value"]
    assert len(seen) == len(set(seen)) == total
    count, rows = disagreements(store, cmp, "bench_d", 0, 1000)
    assert count == len(rows) == len(cmp.benches[2].differ)
    assert {r["bench"] for r in rows} == {"bench_d"}


def test_sample_pages_filter_search_and_page_in_sql(rank_store: dict) -> None:
    store = Store(rank_store["path"], create=False)
    run = rank_store["runs"][("bravo", "bench_c")]
    first = sample_page(store, run, "bench_c")
    correct = store.conn.execute(
        "SELECT SUM(s.correct), COUNT(*) FROM run_results r JOIN results s ON s.key = r.key "
        "WHERE r.run_id = ?",
        (run,),
    ).fetchone()
    assert first.counts == {"all": 120, "correct": correct[0], "wrong": 120 - correct[0]}
    assert (first.pages, len(first.rows)) == (3, 50)
    assert [r["index"] for r in first.rows] == list(range(50))
    last = sample_page(store, run, "bench_c", page=99)  # past the end: the last page
    assert (last.page, [r["index"] for r in last.rows]) == (3, list(range(100, 120)))
    wrong = sample_page(store, run, "bench_c", "wrong", per_page=500)
    assert len(wrong.rows) == wrong.total == 120 - correct[0]
    assert not any(r["correct"] for r in wrong.rows)
    found = sample_page(store, run, "bench_c", query="onerror", per_page=500)
    assert found.total == len(found.rows) == 20  # every 6th sample carries the <img> text
    assert all("onerror" in r["prompt"] for r in found.rows)
    # LIKE wildcards in a search are literal characters
    assert sample_page(store, run, "bench_c", query="%").total == 0
    assert sample_page(store, run, "bench_c", query="q_estion").total == 0
    assert sample_page(store, run, "bench_c", query="target").total == 0  # not JSON keys
    assert sample_page(store, run, "bench_c", query="QUESTION 7 OF").total == 1


def test_moments_are_kept_only_for_finished_runs(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    running = write_run(
        store, model="m", ability=0.0, bench="b", kind="choice", dimension="knowledge",
        samples=30, planned=60, status="running",
    )  # fmt: skip
    first = store.moments([running.run_id])
    assert sum(r["n"] for r in first if r["metric"] == "acc") == 30
    assert store.conn.execute("SELECT COUNT(*) FROM run_moments").fetchone()[0] == 0
    store.finish_run(running.run_id, "interrupted")
    again = store.moments([running.run_id])
    kept = store.conn.execute("SELECT COUNT(*) FROM run_moments").fetchone()[0]
    assert kept == len(again) == len(first)
    store.moments([running.run_id, running.run_id])  # read from the table, never kept twice
    assert store.conn.execute("SELECT COUNT(*) FROM run_moments").fetchone()[0] == kept


def test_reports_of_real_runs_match_per_sample_summaries(real_rank_store: Path, tmp_path) -> None:
    """`gnomon runs show` and --out read the same SQL moments; they equal the per-sample way."""
    copy = tmp_path / "copy.sqlite"
    shutil.copyfile(real_rank_store, copy)
    store = Store(copy, create=False)
    for run in store.runs():
        for report in bench_reports(store, run["run_id"]):
            samples = list(store.samples(run["run_id"], report.bench))
            clusters = [s["cluster"] for s in samples] if report.cluster_by else None
            for metric, score in report.metrics.items():
                expected = summarize([s["metrics"][metric] for s in samples], clusters)
                assert score.value == pytest.approx(expected.value, abs=1e-12)
                assert score.ci_low == pytest.approx(expected.ci_low, abs=1e-9)
                assert score.n == expected.n == report.done
    board = load_board(store)
    assert len(board.models) == 2
    assert set(board.benches) == {"mmlu", "arc_easy", "gsm8k"}
    assert board.dimensions == ["knowledge", "reasoning", "math"]


def test_sample_verdicts_follow_the_reported_metric(rank_store: dict) -> None:
    """ARC-like benchmarks report acc_norm; their sample pages judge by it, not by acc."""
    store = Store(rank_store["path"], create=False)
    run = rank_store["runs"][("alpha", "bench_a")]
    norm = [v for v in _raw(store, run, "bench_a", "acc_norm")[0]]
    acc = _raw(store, run, "bench_a", "acc")[0]
    assert norm != acc  # the synthetic data makes them disagree on some samples
    page = sample_page(store, run, "bench_a", "wrong", per_page=500, verdict="acc_norm")
    assert page.counts["correct"] == sum(norm) and page.total == norm.count(0.0)
    assert [r["index"] for r in page.rows] == [i for i, v in enumerate(norm) if v == 0.0]
    assert not any(r["correct"] for r in page.rows)
    assert all(r["metrics"]["acc_norm"] == 0.0 for r in page.rows)
    assert all(r["prediction_norm"] is not None for r in page.rows)


def test_compare_reads_only_shared_questions_of_a_much_larger_run(tmp_path: Path) -> None:
    """A 40-question run against a 400-question one: the large run is read through the
    (bench, sample_id) index, and the result equals pairing the full rows by hand."""
    store = Store(tmp_path / "s.sqlite")
    big = write_run(store, model="big", ability=1.0, bench="b", kind="clustered",
                    dimension="knowledge", samples=400)  # fmt: skip
    small = write_run(store, model="small", ability=0.0, bench="b", kind="clustered",
                      dimension="knowledge", samples=40, planned=400, status="running")  # fmt: skip
    board = load_board(store)
    models = {m.name: m for m in board.models}
    for a, b in (("big", "small"), ("small", "big")):
        cmp = compare(store, board, models[a], models[b])
        (bc,) = cmp.benches
        runs = {"big": big.run_id, "small": small.run_id}
        va, clusters = _raw(store, runs[a], "b", "acc")
        vb, _ = _raw(store, runs[b], "b", "acc")
        n = min(len(va), len(vb))
        expected = paired_difference(va[:n], vb[:n], clusters[:n])
        assert bc.result.n == 40
        assert bc.result.mean_diff == pytest.approx(expected.mean_diff)
        assert bc.result.p_value == pytest.approx(expected.p_value)
        assert bc.differ == [f"b-{i}" for i in range(n) if va[i] != vb[i]]  # question order
