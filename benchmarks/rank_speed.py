#!/usr/bin/env python
"""`gnomon rank` speed: pages of a 50-model x 30-benchmark leaderboard and of a 100,000-sample run.

    python benchmarks/rank_speed.py                        # 50 x 30 x 200 samples + a 100k run
    python benchmarks/rank_speed.py --dir .bench/rank      # keep the store; later runs reuse it
    python benchmarks/rank_speed.py --quick                # 10 x 6 x 50 + a 10k run: a smoke run
    python benchmarks/rank_speed.py --big-kind choice      # the big run on a choice benchmark
    python benchmarks/rank_speed.py --repeats 11 --json out.json

The store is synthetic (`gnomon_testing.synthetic`, written through the real `Store` API): every
model has one run per benchmark, the benchmarks cycle through the choice, clustered (MMLU-like,
7 clusters) and generate kinds, and model 00 has a newer run of `bench_01` (clustered; or of
`bench_00`, choice, with `--big-kind choice`) with 100,000 samples, which therefore stands behind
that cell of the board (its first questions are the ones model 00 already answered in its small
run, so the store reuses those results, as a real re-run does). A choice benchmark is reported by
acc_norm, so its sample pages judge correct / wrong by that metric (read from each row's
metrics), not by the stored flag (read from an index): the two kinds exercise both paths.
Building takes a while and is timed; with `--dir` the store is kept, named after its size and
the generator's source, and reused. Each run works on a copy of it, opened once before any timing
so that indexes this gnomon adds to an older store are built then, not in a timed request.

Pages: the real app (`gnomon.rank.web.create_app`) is served by uvicorn on loopback in a thread
and fetched with httpx; the time is the client's, request sent to body read. Every page is fetched
once first (imports, templates), then per page:

- cold: the first request after `run_moments` and `run_moments_done` are emptied, so the page
  first aggregates the moments of every run on the board in SQL (a store written before moments
  were kept; a finished run stores its own when it ends, so this is a one-off);
- warm: the median of `--repeats` requests (rotated order, interleaved across pages).

Each page reads the board (every page's header does), so the leaderboard's warm time is a floor
for every other page. "budget" is the issue's "well under a second": OK below 300 ms warm.

Peer, in the same run and process: the naive approach the issue warns against, loading every
sample into Python and aggregating there.

- board: for every (model, benchmark) cell of the board, iterate `store.samples(run, bench)` and
  call `gnomon.stats.summarize(values, clusters)` per metric; against `load_board` with moments
  kept (warm) and with moments emptied first (cold: the same aggregation, done in SQL). The naive
  peer is given the board's choice of runs and skips the dimension and overall means, so it does
  less than `load_board`.
- 100k run: the same for the big run (overall and per-cluster scores), against
  `report.bench_reports(store, run)`, warm and with that run's moments emptied.
- sample pages: fetch every sample row of the run, filter and search in Python (case-insensitive
  substring of the prompt, the sample id or a payload field the page shows, as the page's LIKE),
  sort by index and slice a page; against `rank.samples.sample_page`.

Ratios are naive / gnomon (medians over `--naive-repeats` for the naive side): above 1 means
gnomon is faster. The script also guards correctness and exits 1 on a mismatch: every naive
score (value, stderr, interval ends, n) must equal the board's and the report's to 1e-9, the
naive pages must hold the same samples in the same order with the same totals, and each sample
page must show the total the store holds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import gnomon_testing.synthetic as synthetic
from gnomon.rank.board import DIMENSIONS, Board, load_board
from gnomon.rank.samples import PER_PAGE, sample_page
from gnomon.report import bench_reports
from gnomon.stats import Score, summarize
from gnomon.store import Store
from gnomon.store_reads import SHOWN_FIELDS  # the fields the page's search covers
from gnomon_testing.synthetic import build_store, write_run

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from loopback import running  # noqa: E402  (the tests' loopback server: one way to serve the app)

BUDGET_S = 1.0  # the issue: "well under a second"
WELL_UNDER_S = 0.3  # what "well under" is taken to mean here
TOLERANCE = 1e-9
BIG_MODEL = "synthetic-model-00"  # build_store's first (best) model
# build_store's kinds cycle choice, clustered, generate over bench_00, bench_01, bench_02, ...
BIG_BENCH = {"clustered": 1, "choice": 0}
SYNTHETIC_HASH = hashlib.sha256(Path(synthetic.__file__).read_bytes()).hexdigest()[:8]


@dataclass(frozen=True)
class Scale:
    models: int
    benches: int
    samples: int  # per (model, benchmark) run
    big: int  # samples in model 00's newer run of one benchmark
    big_kind: str = "clustered"  # of that benchmark: clustered (bench_01) or choice (bench_00)

    @property
    def big_bench(self) -> str:
        return f"bench_{BIG_BENCH[self.big_kind]:02d}"

    @property
    def tag(self) -> str:
        """Names the store file: a changed generator (synthetic.py) builds afresh."""
        return (
            f"rank-m{self.models}-b{self.benches}-s{self.samples}-big{self.big}-{self.big_kind}"
            f"-{SYNTHETIC_HASH}"
        )


FULL = Scale(50, 30, 200, 100_000)
QUICK = Scale(10, 6, 50, 10_000)


# ------------------------------------------------------------------------------------ store
def build(path: Path, scale: Scale) -> float:
    """Write the store at `path` (via a `.part` file, so a killed build is never reused)."""
    part = path.with_name(path.name + ".part")
    for leftover in (part, Path(f"{part}-wal"), Path(f"{part}-shm")):
        leftover.unlink(missing_ok=True)
    started = time.perf_counter()
    build_store(part, models=scale.models, benches=scale.benches, samples=scale.samples)
    store = Store(part)
    try:
        b = BIG_BENCH[scale.big_kind]
        write_run(
            store, model=BIG_MODEL, ability=2.0, bench=scale.big_bench, kind=scale.big_kind,
            dimension=DIMENSIONS[b % len(DIMENSIONS)], samples=scale.big, seed=1,
        )  # fmt: skip
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        store.close()
    seconds = time.perf_counter() - started
    os.replace(part, path)
    return seconds


def clear_moments(path: Path, run_id: str | None = None) -> None:
    """Forget the kept moments (all, or one run's): the next read aggregates them afresh."""
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        where, params = ("WHERE run_id = ?", (run_id,)) if run_id else ("", ())
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(f"DELETE FROM run_moments {where}", params)
        conn.execute(f"DELETE FROM run_moments_done {where}", params)
        conn.execute("COMMIT")
    finally:
        conn.close()


def store_size(path: Path) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    try:
        tables = ("runs", "run_benches", "results", "run_results", "run_moments")
        rows = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}
    finally:
        conn.close()
    return {"rows": rows, "megabytes": path.stat().st_size / 1e6}


# ----------------------------------------------------------------------------------- server
@dataclass
class PageSpec:
    name: str
    url: str
    expect: str | None = None  # text the body must contain


def fetch(client: Any, page: PageSpec) -> tuple[float, int]:
    started = time.perf_counter()
    response = client.get(page.url)
    body = response.text
    seconds = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"{page.url}: HTTP {response.status_code}: {body[:300]}")
    if page.expect and page.expect not in body:
        raise RuntimeError(f"{page.url}: the page lacks {page.expect!r}")
    return seconds, len(response.content)


# ------------------------------------------------------------------------------------ peers
def naive_scores(store: Store, run_id: str, bench: str, cluster_by: str | None) -> dict:
    """Every sample into Python, then `summarize` per metric (and per cluster)."""
    values: dict[str, list[float]] = defaultdict(list)
    clusters: dict[str, list[Any]] = defaultdict(list)
    for sample in store.samples(run_id, bench):
        for metric, value in sample["metrics"].items():
            values[metric].append(value)
            clusters[metric].append(sample["cluster"])
    overall = {m: summarize(v, clusters[m] if cluster_by else None) for m, v in values.items()}
    per_cluster: dict[str, dict[str, Score]] = {}
    if cluster_by:
        for metric, vals in values.items():
            groups: dict[str, list[float]] = defaultdict(list)
            for value, cluster in zip(vals, clusters[metric], strict=True):
                groups[str(cluster)].append(value)
            per_cluster[metric] = {c: summarize(g) for c, g in sorted(groups.items())}
    return {"metrics": overall, "clusters": per_cluster}


def naive_board(store: Store, board: Board) -> dict[tuple[str, str], dict[str, Score]]:
    out = {}
    for model in board.models:
        for bid, entry in model.entries.items():
            cluster_by = board.benches[bid].cluster_by
            out[(model.key, bid)] = naive_scores(store, entry.run_id, bid, cluster_by)["metrics"]
    return out


def _searched(row: Any) -> Iterator[str]:
    """The texts the page's search looks in: prompt, sample id and the payload fields the page
    shows, each as SQLite's json_extract gives it to LIKE."""
    yield row["prompt"]
    yield row["sample_id"]
    payload = json.loads(row["payload"])
    for name in SHOWN_FIELDS:
        value = payload.get(name)
        if value is None:
            continue
        if isinstance(value, bool):
            yield str(int(value))
        elif isinstance(value, dict | list):
            yield json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        else:
            yield str(value)


def verdict_of(spec: dict[str, Any]) -> str | None:
    """The metric the sample page judges correct / wrong by, as `pages.samples_view` picks it."""
    headline = spec.get("headline") or spec["metrics"][0]
    return None if headline in ("acc", "exact_match", "pass@1") else headline


def naive_page(
    store: Store, run_id: str, bench: str, filter: str, query: str, page: int, verdict: str | None
) -> tuple[int, list[str]]:
    """Every sample row of the run into Python; filter, search, sort and slice there."""
    rows = store.conn.execute(
        "SELECT s.* FROM run_results r JOIN results s ON s.key = r.key "
        "WHERE r.run_id = ? AND r.bench = ?",
        (run_id, bench),
    ).fetchall()
    if filter != "all":
        want = filter == "correct"
        if verdict:
            rows = [r for r in rows if (json.loads(r["metrics"]).get(verdict) == 1) == want]
        else:
            rows = [r for r in rows if bool(r["correct"]) == want]
    if query:
        q = query.lower()
        rows = [r for r in rows if any(q in text.lower() for text in _searched(r))]
    rows.sort(key=lambda r: r["idx"])
    pages = max(1, -(-len(rows) // PER_PAGE))
    page = min(max(1, page), pages)
    chosen = rows[(page - 1) * PER_PAGE : page * PER_PAGE]
    for r in chosen:  # what the page shows of each row
        json.loads(r["payload"]), json.loads(r["metrics"])
    return len(rows), [r["sample_id"] for r in chosen]


# ------------------------------------------------------------------------------ correctness
def score_diff(a: Score, b: Score) -> float:
    if a.n != b.n or a.n_clusters != b.n_clusters:
        return math.inf
    worst = 0.0
    for x, y in ((a.value, b.value), (a.stderr, b.stderr), (a.ci_low, b.ci_low),
                 (a.ci_high, b.ci_high)):  # fmt: skip
        if math.isnan(x) and math.isnan(y):
            continue
        worst = max(worst, abs(x - y))
    return worst


def check_board(board: Board, naive: dict[tuple[str, str], dict[str, Score]]) -> dict[str, Any]:
    value_diff, any_diff, cells, problems = 0.0, 0.0, 0, []
    for model in board.models:
        for bid, entry in model.entries.items():
            theirs = naive[(model.key, bid)]
            cells += 1
            if set(theirs) != set(entry.metrics):
                problems.append(f"{model.name}/{bid}: metrics {sorted(theirs)} vs {entry.metrics}")
                continue
            for metric, score in entry.metrics.items():
                value_diff = max(value_diff, abs(score.value - theirs[metric].value))
                any_diff = max(any_diff, score_diff(score, theirs[metric]))
    return {"cells": cells, "max_value_diff": value_diff, "max_diff": any_diff,
            "problems": problems}  # fmt: skip


def check_report(reports: list[Any], bench: str, naive: dict) -> dict[str, Any]:
    report = next(r for r in reports if r.bench == bench)
    worst, problems = 0.0, []
    if set(report.metrics) != set(naive["metrics"]):
        problems.append(f"metrics {sorted(report.metrics)} vs {sorted(naive['metrics'])}")
    for metric, score in report.metrics.items():
        worst = max(worst, score_diff(score, naive["metrics"].get(metric, score)))
        ours, theirs = report.clusters.get(metric, {}), naive["clusters"].get(metric, {})
        if set(ours) != set(theirs):
            problems.append(f"{metric}: clusters {sorted(ours)} vs {sorted(theirs)}")
        for cluster, cscore in ours.items():
            worst = max(worst, score_diff(cscore, theirs.get(cluster, cscore)))
    return {"max_diff": worst, "problems": problems}


# ----------------------------------------------------------------------------------- helpers
def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def ms(seconds: float) -> str:
    return "—" if math.isnan(seconds) else f"{seconds * 1000:.1f}"


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def rotated(items: list[Any], shift: int) -> list[Any]:
    shift %= len(items)
    return items[shift:] + items[:shift]


# -------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 x 6 x 50 and a 10k run")
    parser.add_argument("--models", type=int, default=None, help="[50; 10 --quick]")
    parser.add_argument("--benches", type=int, default=None, help="[30; 6 --quick]")
    parser.add_argument("--samples", type=int, default=None, help="per run [200; 50 --quick]")
    parser.add_argument(
        "--big", type=int, default=None, help="samples in the big run [100000; 10000 --quick]"
    )
    parser.add_argument(
        "--dir", type=Path, default=None, help="keep the built store here and reuse it"
    )
    parser.add_argument("--repeats", type=int, default=7, help="warm requests per page")
    parser.add_argument("--naive-repeats", type=int, default=3, help="runs of each naive peer")
    parser.add_argument(
        "--deep-page", type=int, default=None, help="a deep sample page [3/4 of the way: 1500]"
    )
    parser.add_argument(
        "--query", default="answer 99", help="search text (~1.1%% of the big run's samples)"
    )
    parser.add_argument(
        "--big-kind",
        choices=sorted(BIG_BENCH),
        default="clustered",
        help="the big run's benchmark: clustered (MMLU-like, bench_01) or choice (ARC-like, "
        "reported by acc_norm, bench_00)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    scale = QUICK if args.quick else FULL
    for name in ("models", "benches", "samples", "big", "big_kind"):
        if getattr(args, name) is not None:
            scale = replace(scale, **{name: getattr(args, name)})
    if scale.models < 2 or scale.benches < 2 or scale.samples < 1 or scale.big < 1:
        parser.error("need at least 2 models, 2 benchmarks and 1 sample per run")
    if args.repeats < 1 or args.naive_repeats < 1:
        parser.error("--repeats and --naive-repeats must be at least 1")
    big_bench = scale.big_bench
    big_pages = -(-scale.big // PER_PAGE)
    deep = args.deep_page or max(1, big_pages * 3 // 4)

    import httpx

    from gnomon.rank.web import create_app

    print(
        f"store: {scale.models} models x {scale.benches} benchmarks x {scale.samples} samples, "
        f"plus a {scale.big}-sample run ({BIG_MODEL} on {scale.big_bench}, {scale.big_kind})"
    )
    print(
        f"host: {platform.platform()}, {os.cpu_count()} cores; python "
        f"{sys.version.split()[0]}; sqlite {sqlite3.sqlite_version}"
    )
    with tempfile.TemporaryDirectory(prefix="gnomon-rank-speed-") as tmp:
        home = args.dir.resolve() if args.dir else Path(tmp)
        home.mkdir(parents=True, exist_ok=True)
        pristine = home / f"{scale.tag}.sqlite"
        build_seconds = None
        if pristine.is_file():
            print(f"reusing {pristine}")
        else:
            print(f"building {pristine} ...", flush=True)
            build_seconds = build(pristine, scale)
            print(f"built in {build_seconds:.1f} s")
        size = store_size(pristine)
        print(
            f"store size: {size['megabytes']:.0f} MB; rows: "
            + ", ".join(f"{t} {n:,}" for t, n in size["rows"].items())
        )
        work = Path(tmp) / "work.sqlite"
        shutil.copyfile(pristine, work)
        # a store built by an older gnomon gets this one's new indexes here, not in a timed request
        migrate_s, _ = timed(lambda: Store(work).close())
        if migrate_s > 0.5:
            print(f"opening the copy took {migrate_s:.1f} s (indexes added to an older store)")
        clear_moments(work)

        # ------------------------------------------------------------------ pages over HTTP
        app = create_app(work)
        http: dict[str, dict[str, Any]] = {}
        with running(app) as base, httpx.Client(base_url=base, timeout=600) as client:
            first_s, _ = fetch(client, PageSpec("first", "/"))
            store = Store(work, create=False)
            board = load_board(store)
            by_name = {m.name: m for m in board.models}
            top, other = by_name[BIG_MODEL], by_name["synthetic-model-01"]
            big_run = top.entries[big_bench].run_id
            if top.entries[big_bench].done != scale.big:
                raise RuntimeError(f"the board's {big_bench} cell is not the {scale.big} run")
            verdict = verdict_of(board.benches[big_bench].spec)
            cluster_by = board.benches[big_bench].cluster_by
            totals = {
                key: sample_page(store, big_run, big_bench, f, q, p, verdict=verdict).total
                for key, (f, q, p) in {
                    "all": ("all", "", 1), "wrong": ("wrong", "", 1), "q": ("all", args.query, 1)
                }.items()
            }  # fmt: skip
            run_url = f"/run/{big_run}/{big_bench}"
            count = 'id="sample-count">{} sample'
            wrong_count = count.format(totals["wrong"])
            pages = [
                PageSpec("leaderboard /", "/", top.name),
                PageSpec("model page", f"/model/{top.slug}", top.name),
                PageSpec(f"bench page ({big_bench})", f"/bench/{big_bench}", top.name),
                PageSpec("compare two models", f"/compare?a={top.slug}&b={other.slug}", other.name),
                PageSpec("samples: page 1", run_url, count.format(totals["all"])),
                PageSpec(f"samples: page {deep}", f"{run_url}?page={deep}", f"page {deep} of"),
                PageSpec("samples: filter=wrong", f"{run_url}?filter=wrong", wrong_count),
                PageSpec(
                    f"samples: q={args.query!r}",
                    f"{run_url}?" + str(httpx.QueryParams({"q": args.query})),
                    count.format(totals["q"]),
                ),
            ]
            print(
                f"big run {big_run}: {totals['all']:,} samples, {totals['wrong']:,} wrong, "
                f"{totals['q']:,} match {args.query!r} "
                f"({100 * totals['q'] / max(1, totals['all']):.2f}%)"
            )
            print(f"first request after start (moments all computed then): {ms(first_s)} ms")
            sizes = {}
            for page in pages:  # templates and code paths, untimed
                sizes[page.name] = fetch(client, page)[1]
            store.close()
            for page in pages:
                clear_moments(work)
                http[page.name] = {"url": page.url, "bytes": sizes[page.name]}
                http[page.name]["cold_s"] = fetch(client, page)[0]
                http[page.name]["warm_s"] = []
            for repeat in range(args.repeats):
                for page in rotated(pages, repeat):
                    http[page.name]["warm_s"].append(fetch(client, page)[0])
        for fig in http.values():
            fig["warm_median_s"] = median(fig["warm_s"])

        # ------------------------------------------------------- in-process: gnomon vs naive
        store = Store(work, create=False)
        board = load_board(store)
        query_args = {
            "page 1": ("all", "", 1),
            f"page {deep}": ("all", "", deep),
            "filter=wrong": ("wrong", "", 1),
            f"q={args.query!r}": ("all", args.query, 1),
        }

        def board_cold() -> Board:
            clear_moments(work)
            return load_board(store)

        def report_cold() -> list[Any]:
            clear_moments(work, big_run)
            return bench_reports(store, big_run)

        gnomon_fns: dict[str, Callable[[], Any]] = {
            "board: load_board, cold": board_cold,
            "board: load_board, warm": lambda: load_board(store),
            "big run: bench_reports, cold": report_cold,
            "big run: bench_reports, warm": lambda: bench_reports(store, big_run),
        }
        naive_fns: dict[str, Callable[[], Any]] = {
            "board: naive": lambda: naive_board(store, board),
            "big run: naive": lambda: naive_scores(store, big_run, big_bench, cluster_by),
        }
        for label, (f, q, p) in query_args.items():
            gnomon_fns[f"samples {label}: sample_page"] = lambda f=f, q=q, p=p: sample_page(
                store, big_run, big_bench, f, q, p, verdict=verdict
            )
            naive_fns[f"samples {label}: naive"] = lambda f=f, q=q, p=p: naive_page(
                store, big_run, big_bench, f, q, p, verdict
            )
        times: dict[str, list[float]] = {name: [] for name in [*gnomon_fns, *naive_fns]}
        last: dict[str, Any] = {}
        print(f"in-process peers: {args.naive_repeats} naive / {args.repeats} gnomon repeats ...",
              flush=True)  # fmt: skip
        for repeat in range(max(args.repeats, args.naive_repeats)):
            jobs = list(gnomon_fns.items()) if repeat < args.repeats else []
            jobs += list(naive_fns.items()) if repeat < args.naive_repeats else []
            for name, fn in rotated(jobs, repeat):
                seconds, last[name] = timed(fn)
                times[name].append(seconds)
        store.close()
    peers = {name: median(values) for name, values in times.items()}

    # ---------------------------------------------------------------------------- correctness
    status = 0
    board_check = check_board(last["board: load_board, warm"], last["board: naive"])
    report_check = check_report(
        last["big run: bench_reports, warm"], big_bench, last["big run: naive"]
    )
    page_problems = []
    for label in query_args:
        page_result = last[f"samples {label}: sample_page"]
        total, ids = last[f"samples {label}: naive"]
        if (page_result.total, [r["sample_id"] for r in page_result.rows]) != (total, ids):
            page_problems.append(f"{label}: total {page_result.total} vs {total}, ids differ")
    correct = (
        board_check["max_value_diff"] <= TOLERANCE
        and board_check["max_diff"] <= TOLERANCE
        and report_check["max_diff"] <= TOLERANCE
        and not board_check["problems"] + report_check["problems"] + page_problems
    )
    status = 0 if correct else 1

    # ---------------------------------------------------------------------------------- report
    print(f"\npages over HTTP (cold: moments emptied first; warm: median of {args.repeats}):")
    print(f"  {'page':<28} {'cold ms':>9} {'warm ms':>9} {'warm min-max':>15} {'KB':>6}  budget")
    for name, fig in http.items():
        warm = fig["warm_median_s"]
        verdict = "OK" if warm < WELL_UNDER_S else ("slow" if warm < BUDGET_S else "OVER 1 s")
        spread = f"{ms(min(fig['warm_s']))}-{ms(max(fig['warm_s']))}"
        print(
            f"  {name:<28} {ms(fig['cold_s']):>9} {ms(warm):>9} {spread:>15} "
            f"{fig['bytes'] / 1000:6.0f}  {verdict} ({warm / BUDGET_S:.0%} of 1 s)"
        )

    print(f"\nin-process, medians (naive: {args.naive_repeats} runs; gnomon: {args.repeats}):")
    ratios: dict[str, float] = {}
    pairs = [
        ("board: naive", "board: load_board, cold"),
        ("board: naive", "board: load_board, warm"),
        ("big run: naive", "big run: bench_reports, cold"),
        ("big run: naive", "big run: bench_reports, warm"),
    ]
    pairs += [(f"samples {k}: naive", f"samples {k}: sample_page") for k in query_args]
    print(f"  {'naive':<30} {'ms':>9}   {'gnomon':<34} {'ms':>9} {'naive/gnomon':>13}")
    for naive_name, gnomon_name in pairs:
        ratio = peers[naive_name] / peers[gnomon_name]
        ratios[f"{naive_name} / {gnomon_name}"] = ratio
        print(
            f"  {naive_name:<30} {ms(peers[naive_name]):>9}   {gnomon_name:<34} "
            f"{ms(peers[gnomon_name]):>9} {ratio:12.1f}x"
        )
    http_ratio = peers["board: naive"] / http["leaderboard /"]["warm_median_s"]
    ratios["board: naive / GET / warm"] = http_ratio
    print(f"  naive board / whole leaderboard page over HTTP, warm: {http_ratio:.1f}x")

    print(
        f"\ncorrectness: {'OK' if correct else 'FAILED'}: {board_check['cells']} board cells, "
        f"max |naive - board| score value {board_check['max_value_diff']:.2e}, over value, "
        f"stderr and interval {board_check['max_diff']:.2e}; big run (overall and per cluster) "
        f"{report_check['max_diff']:.2e}; sample pages "
        f"{'identical' if not page_problems else 'DIFFER'} (tolerance {TOLERANCE:g})"
    )
    for problem in board_check["problems"] + report_check["problems"] + page_problems:
        print(f"  {problem}", file=sys.stderr)
    if build_seconds is not None:
        print(f"build: {build_seconds:.1f} s")

    if args.json:
        payload = {
            "benchmark": "rank_speed",
            "scale": asdict(scale),
            "repeats": args.repeats,
            "naive_repeats": args.naive_repeats,
            "host": {"platform": platform.platform(), "cores": os.cpu_count()},
            "python": sys.version.split()[0],
            "sqlite": sqlite3.sqlite_version,
            "build_seconds": build_seconds,
            "store": size,
            "first_request_seconds": first_s,
            "pages": http,
            "in_process_medians_seconds": peers,
            "in_process_seconds": times,
            "ratios": ratios,
            "correct": correct,
            "checks": {"board": board_check, "big_run": report_check, "pages": page_problems},
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"figures written to {args.json}")
    return status


if __name__ == "__main__":
    sys.exit(main())
