"""The leaderboard in a real browser: Debian's headless Chromium, driven by Playwright, over the
web app on a loopback port and over the static export opened from disk.

What a reader sees is checked against the store itself: the figures equal `load_board`'s and the
comparison's, the page scripts sort, filter, toggle and page as they claim, model text that is
hostile HTML stays text (no script runs), charts are drawn, and bad stores or URLs give plain
pages rather than tracebacks. Chromium starts once per module; each test opens its own tab.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlparse

import pytest
from loopback import running
from rank_stores import build_corpus_synthetic

from gnomon.rank.board import Board, Model, load_board
from gnomon.rank.compare import Comparison, compare
from gnomon.rank.export import export_site
from gnomon.rank.web import create_app
from gnomon.store import Store
from gnomon_testing.synthetic import HOSTILE, write_run

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
REQUIRED = os.environ.get("GNOMON_BROWSER_REQUIRED") == "1"
PWNED = "<script>window.__gnomon_pwned"  # the start of gnomon_testing.synthetic.HOSTILE[0]
PER_PAGE = 50  # samples per page, and disagreements per comparison page


def _missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed"
    if not os.access(CHROMIUM, os.X_OK):
        return f"no Chromium at {CHROMIUM} (scripts/browser installs Debian's)"
    return None


MISSING = _missing()
if MISSING and not REQUIRED:
    pytest.skip(f"browser tests need a browser: {MISSING}", allow_module_level=True)

pytestmark = pytest.mark.slow


# ------------------------------------------------------------------------------ formatting
def pct(x: float | None) -> str:
    """As the pages print a score: points with one decimal."""
    return "?" if x is None or math.isnan(x) else f"{100 * x:.1f}"


def signed(x: float) -> str:
    return "?" if math.isnan(x) else f"{100 * x:+.1f}"


def pvalue(p: float) -> str:
    if math.isnan(p):
        return "?"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def shown(score: Any) -> dict[str, str]:
    """What a score cell must read: the value and its interval, or a dash for no result."""
    if score is None:
        return {"missing": "—"}
    return {"score": pct(score.value), "ci": f"{pct(score.ci_low)}–{pct(score.ci_high)}"}


# ------------------------------------------------------------------------------ browser
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium for the module: starting it costs a second or two."""
    if MISSING:
        pytest.fail(f"GNOMON_BROWSER_REQUIRED=1 but {MISSING}", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


# Every chart div gets plotly's <svg class="main-svg">: poll for it, report how many are drawn.
CHARTS_DRAWN = """async () => {
  const drawn = () => Array.from(document.querySelectorAll('div.chart'))
    .filter((d) => d.querySelector('.main-svg')).length;
  for (let i = 0; i < 200 && drawn() < document.querySelectorAll('div.chart').length; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return drawn();
}"""


@dataclass
class Tab:
    """A page that records every console error and uncaught exception it sees."""

    page: Page
    errors: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, text, url)

    def open(self, url: str, *, status: int = 200, charts: int = 0) -> None:
        response = self.page.goto(url)
        self.arrived(url, response.status if response else None, status, charts)

    def click_through(self, target: Locator, *, status: int = 200, charts: int = 0) -> None:
        """Follow a link or submit a form by clicking it, as a reader would."""
        with self.page.expect_response(lambda r: r.request.is_navigation_request()) as info:
            target.click()
        self.page.wait_for_load_state("load")
        self.arrived(self.page.url, info.value.status, status, charts)

    def arrived(self, where: str, got: int | None, status: int, charts: int) -> None:
        assert got == status, f"{where}: HTTP {got}, expected {status}"
        if status != 200:  # Chromium logs the page's own error status as a console error
            own = self.page.url
            self.errors[:] = [
                e
                for e in self.errors
                if not (e[0] == "console" and e[2] == own and "status" in e[1])
            ]
        drawn = self.page.evaluate(CHARTS_DRAWN)
        found = self.page.locator("div.chart").count()
        assert (found, drawn) == (charts, charts), f"{where}: {found} charts, {drawn} drawn"
        self.assert_clean(where)

    def assert_clean(self, where: str) -> None:
        assert not self.errors, f"{where}: errors in the browser: {self.errors}"

    def texts(self, selector: str) -> list[str]:
        return [t.strip() for t in self.page.locator(selector).all_text_contents()]

    def attrs(self, selector: str, name: str) -> list[str | None]:
        return [el.get_attribute(name) for el in self.page.locator(selector).all()]


@pytest.fixture
def tab(browser: Browser) -> Iterator[Tab]:
    """A fresh context per test: no cookies, cache or history carried from another test."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    opened = Tab(page)

    def console(message: Any) -> None:
        if message.type == "error":
            opened.errors.append(("console", message.text, message.location.get("url", "")))

    page.on("console", console)
    page.on("pageerror", lambda exc: opened.errors.append(("pageerror", str(exc), page.url)))
    try:
        yield opened
    finally:
        context.close()


# ------------------------------------------------------------------------------ stores
@dataclass
class Site:
    """A store, its board as `load_board` reads it, and the URL of a server showing it."""

    url: str
    store: Store
    board: Board
    runs: dict[tuple[str, str], str]

    def model(self, name: str) -> Model:
        return next(m for m in self.board.models if m.name == name)

    def slug(self, name: str) -> str:
        return self.model(name).slug


@pytest.fixture(scope="module")
def synthetic(rank_store: dict) -> Iterator[Site]:
    store = Store(rank_store["path"], create=False)
    try:
        with running(create_app(rank_store["path"])) as url:
            yield Site(url, store, load_board(store), rank_store["runs"])
    finally:
        store.close()


def verdict_sql(store: Store, run_id: str, bench: str) -> str:
    """The page judges by the benchmark's reported metric; acc_norm is not the stored flag."""
    spec = json.loads(
        store.conn.execute(
            "SELECT spec FROM run_benches WHERE run_id = ? AND bench = ?", (run_id, bench)
        ).fetchone()[0]
    )
    headline = spec.get("headline") or spec["metrics"][0]
    if headline == "acc_norm":
        return "(json_extract(s.metrics, '$.acc_norm') = 1)"
    return "s.correct"


def sql_counts(store: Store, run_id: str, bench: str) -> dict[str, int]:
    """all / correct / wrong, counted here rather than trusted from the page's own query."""
    counts = {}
    verdict = verdict_sql(store, run_id, bench)
    for name, where in (
        ("all", ""),
        ("correct", f" AND {verdict} = 1"),
        ("wrong", f" AND {verdict} = 0"),
    ):
        counts[name] = store.conn.execute(
            "SELECT COUNT(*) FROM run_results r JOIN results s ON s.key = r.key "
            f"WHERE r.run_id = ? AND r.bench = ?{where}",
            (run_id, bench),
        ).fetchone()[0]
    return counts


def sql_samples(
    store: Store, run_id: str, bench: str, where: str = "", params: tuple = ()
) -> list[sqlite3.Row]:
    verdict = verdict_sql(store, run_id, bench)
    return store.conn.execute(
        f"SELECT s.sample_id, s.idx, {verdict} AS correct, s.prompt, s.payload FROM run_results r "
        f"JOIN results s ON s.key = r.key WHERE r.run_id = ? AND r.bench = ?{where} ORDER BY s.idx",
        (run_id, bench, *params),
    ).fetchall()


def like(word: str) -> tuple[str, tuple[str, str, str]]:
    """A search for `word` as SQL LIKE, over the prompt, the stored payload and the id."""
    pattern = f"%{word}%"
    clause = " AND (s.prompt LIKE ? OR s.payload LIKE ? OR s.sample_id LIKE ?)"
    return clause, (pattern, pattern, pattern)


# ------------------------------------------------------------------------------ page readers
READ_BOARD = """() => Array.from(document.querySelectorAll('#board tbody tr')).map((tr) => ({
  slug: tr.dataset.slug,
  shown: tr.getClientRects().length > 0,
  marks: Array.from(tr.cells[1].querySelectorAll('.mark')).map((m) => m.textContent.trim()),
  cells: Object.fromEntries(Array.from(tr.cells).slice(2).map((td) => [
    td.classList.contains('overall') ? 'overall'
      : (td.dataset.bench ? 'bench:' + td.dataset.bench : 'dim:' + td.dataset.dim),
    {
      value: td.dataset.value,
      score: td.querySelector('.score')?.textContent ?? null,
      ci: td.querySelector('.ci')?.textContent ?? null,
      missing: td.querySelector('.missing')?.textContent ?? null,
      missingClass: td.querySelector('.missing') ? 'missing' : null,
      marks: Array.from(td.querySelectorAll('.mark')).map((m) => m.textContent.trim()),
    },
  ])),
}))"""


def read_board(tab: Tab) -> list[dict[str, Any]]:
    return tab.page.evaluate(READ_BOARD)


def figures(cell: dict[str, Any]) -> dict[str, str]:
    if cell["missing"] is not None:
        return {"missing": cell["missing"]}
    return {"score": cell["score"], "ci": cell["ci"]}


def expected_cells(board: Board, model: Model) -> dict[str, dict[str, str]]:
    cells = {"overall": shown(model.overall)}
    for dim in board.dimensions:
        cells[f"dim:{dim}"] = shown(model.dimensions.get(dim))
        for bench in board.benches_of(dim):
            entry = model.entries.get(bench.id)
            cells[f"bench:{bench.id}"] = shown(entry.score if entry else None)
    return cells


def assert_board_figures(tab: Tab, board: Board) -> list[dict[str, Any]]:
    """Every leaderboard cell (overall, dimensions, benchmarks) reads as the board's figure."""
    rows = read_board(tab)
    assert [r["slug"] for r in rows] == [m.slug for m in board.models], "ranking order"
    for row, model in zip(rows, board.models, strict=True):
        got = {key: figures(cell) for key, cell in row["cells"].items()}
        assert got == expected_cells(board, model), f"leaderboard row of {model.name}"
    return rows


def dim_values(tab: Tab, dim: str) -> list[tuple[str, float | None]]:
    """(slug, data-value) of a dimension column, in the order the rows now stand."""
    rows = tab.page.evaluate(
        """(dim) => Array.from(document.querySelectorAll('#board tbody tr')).map((tr) =>
             [tr.dataset.slug, tr.querySelector(`td.dim[data-dim="${dim}"]`).dataset.value])""",
        dim,
    )
    return [(slug, float(v) if v != "" else None) for slug, v in rows]


def assert_sorts(tab: Tab, board: Board, dim: str, direction: str) -> None:
    """Click the dimension header; rows follow its values, missing values last either way."""
    header = tab.page.locator(f"#board th.dim[data-dim='{dim}']")
    header.click()
    assert header.get_attribute("aria-sort") == direction
    rows = dim_values(tab, dim)
    present = [(s, v) for s, v in rows if v is not None]
    lacking = [s for s, v in rows if v is None]
    assert rows[len(present) :] == [(s, None) for s in lacking], f"{dim}: missing values not last"
    want = {m.slug: m.dimensions[dim].value for m in board.models if dim in m.dimensions}
    assert dict(present) == want, f"{dim}: data-value differs from the board"
    assert set(lacking) == {m.slug for m in board.models if dim not in m.dimensions}
    values = [v for _, v in present]
    assert values == sorted(values, reverse=direction == "descending"), f"{dim} {direction}"


def shown_slugs(tab: Tab) -> list[str]:
    return [r["slug"] for r in read_board(tab) if r["shown"]]


def assert_compare_figures(tab: Tab, cmp: Comparison) -> None:
    """Per benchmark: A − B with its interval and the p-value, as `compare` computed them."""
    rows = tab.page.locator("#compare-table tbody tr").evaluate_all(
        """(rows) => rows.map((tr) => ({
             bench: tr.dataset.bench,
             diff: tr.querySelector('td.diff .score, td.diff .missing').textContent.trim(),
             ci: tr.querySelector('td.diff .ci')?.textContent.trim() ?? null,
             p: tr.querySelector('td.pval').textContent.trim(),
           }))"""
    )
    want = [
        {
            "bench": bc.bench,
            "diff": signed(bc.result.mean_diff) if bc.result.n else "—",
            "ci": f"{signed(bc.result.ci_low)} to {signed(bc.result.ci_high)}"
            if bc.result.n
            else None,
            "p": pvalue(bc.result.p_value),
        }
        for bc in cmp.benches
    ]
    assert rows == want
    assert cmp.overall is not None
    overall = tab.page.locator(".summary .big")
    assert overall.locator(".score").inner_text() == signed(cmp.overall.mean_diff)
    p = pvalue(cmp.overall.p_value)
    assert overall.locator(".p").inner_text() == (f"p {p}" if p.startswith("<") else f"p = {p}")


def disagreement_rows(tab: Tab) -> list[tuple[str, str]]:
    rows = tab.page.locator("#disagree-table tbody tr").evaluate_all(
        "(rows) => rows.map((tr) => [tr.cells[0].textContent.trim(), tr.dataset.sample])"
    )
    return [(bench, sample) for bench, sample in rows]


def expected_disagreements(cmp: Comparison) -> list[tuple[str, str]]:
    return [(bc.bench, sid) for bc in cmp.benches for sid in bc.differ]


def sample_rows(tab: Tab) -> list[dict[str, Any]]:
    """The sample table's rows: id, index, verdict, full text, and whether it is shown."""
    return tab.page.locator("#samples tbody tr").evaluate_all(
        """(rows) => rows.map((tr) => ({
             id: tr.dataset.sample,
             index: Number(tr.cells[0].firstChild.textContent),
             correct: tr.dataset.correct === '1',
             text: tr.textContent,
             shown: tr.getClientRects().length > 0,
           }))"""
    )


def filter_counts(tab: Tab) -> dict[str, str]:
    links = tab.page.locator("nav.filters a")
    return {a.get_attribute("data-filter"): a.inner_text() for a in links.all()}


def assert_inert(tab: Tab, where: str, *, literal: bool = True) -> None:
    """Hostile text stays text: with every <details> opened no injected script or image ran or
    exists, and (where the page holds such text) the markup itself is visible as characters."""
    tab.page.evaluate(
        "() => document.querySelectorAll('details').forEach((d) => { d.open = true; })"
    )
    tab.page.wait_for_timeout(200)  # let any injected <img onerror> fail and fire
    assert tab.page.evaluate("typeof window.__gnomon_pwned") == "undefined", f"{where}: script ran"
    injected = tab.page.evaluate(
        """() => document.querySelectorAll(
             'img, script:not([src]):not([type="application/json"])').length"""
    )
    assert injected == 0, f"{where}: {injected} injected elements"
    if literal:
        visible = tab.page.get_by_text(PWNED).filter(visible=True)
        assert visible.count() > 0, f"{where}: the hostile text is not shown as text"
    tab.assert_clean(where)


# ------------------------------------------------------------------------------ tests
def test_every_page_renders_cleanly(tab: Tab, synthetic: Site) -> None:
    """Each page kind loads with HTTP 200, no console error or exception, charts drawn with one
    bar per scored model or benchmark, and hostile sample text shown inert."""
    board, base = synthetic.board, synthetic.url
    tab.open(f"{base}/", charts=1)
    scored = [m for m in board.models if m.overall is not None]
    fills = tab.page.locator("#overall-chart g.point path").evaluate_all(
        "(bars) => bars.map((bar) => getComputedStyle(bar).fill)"
    )
    assert len(fills) == len(scored)
    # a model lacking benchmarks gets a grey bar: its mean is not comparable with the rest
    colours = {m.complete: fill for m, fill in zip(scored, fills, strict=True)}
    assert len(colours) == 2
    assert [fill == colours[False] for fill in fills] == [not m.complete for m in scored]
    assert_inert(tab, "leaderboard", literal=False)

    for model in board.models:
        tab.open(f"{base}/model/{model.slug}", charts=2)
        bars = tab.page.locator("#bench-chart g.point").count()
        assert bars == sum(e.score is not None for e in model.entries.values()), model.name
        assert tab.page.locator("h1").inner_text() == model.name
        assert_inert(tab, f"model page of {model.name}", literal=False)

    for bench in board.benches:
        tab.open(f"{base}/bench/{bench}", charts=1)
        ran = sorted(
            (m for m in board.models if bench in m.entries),
            key=lambda m: -m.entries[bench].score.value,
        )
        assert tab.page.locator("#bench-chart g.point").count() == len(ran), bench
        assert tab.texts("#bench-models tbody tr td:nth-child(2)") == [m.name for m in ran]
        assert_inert(tab, f"bench page of {bench}")  # the example prompt is hostile text

    alpha, bravo = synthetic.slug("alpha"), synthetic.slug("bravo")
    tab.open(f"{base}/compare?a={alpha}&b={bravo}")
    assert_inert(tab, "comparison")

    for bench in ("bench_a", "bench_c"):  # choice and generation samples
        run_id = synthetic.runs[("alpha", bench)]
        for name in ("all", "correct", "wrong"):
            tab.open(f"{base}/run/{run_id}/{bench}?filter={name}")
            assert len(sample_rows(tab)) > 0, f"{bench} {name}: no rows"
            assert_inert(tab, f"{bench} samples, {name}")


def test_leaderboard_figures_marks_sorting_and_filters(tab: Tab, synthetic: Site) -> None:
    """The served leaderboard shows the store's figures and marks, and its controls work."""
    board, store = synthetic.board, synthetic.store
    tab.open(f"{synthetic.url}/", charts=1)
    rows = {r["slug"]: r for r in assert_board_figures(tab, board)}

    # benchmark columns: hidden until "Show benchmarks", then visible with the run's score
    first = tab.page.locator("#board td.bench-col").first
    assert not first.is_visible()
    toggle = tab.page.locator("#toggle-benches")
    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "true"
    assert toggle.inner_text() == "Hide benchmarks"
    assert first.is_visible()
    alpha = synthetic.model("alpha")
    cell = tab.page.locator(f"tr[data-slug='{alpha.slug}'] td.bench-col[data-bench='bench_a']")
    assert cell.is_visible()
    headline = board.benches["bench_a"].headline
    full_run, limited_run = (
        synthetic.runs[("alpha", "bench_a")],
        synthetic.runs[("alpha-limited", "bench_a")],
    )
    (full,) = store.conn.execute(
        "SELECT AVG(json_extract(s.metrics, ?)) FROM run_results r JOIN results s "
        "ON s.key = r.key WHERE r.run_id = ?",
        (f"$.{headline}", full_run),
    ).fetchone()
    (limited,) = store.conn.execute(
        "SELECT AVG(json_extract(s.metrics, ?)) FROM run_results r JOIN results s "
        "ON s.key = r.key WHERE r.run_id = ?",
        (f"$.{headline}", limited_run),
    ).fetchone()
    assert pct(full) != pct(limited)  # else the check below could not tell the runs apart
    assert cell.locator(".score").inner_text() == pct(full)  # the full run, not the --limit one
    assert "subset" not in cell.inner_text()

    # a missing benchmark is a dash, and the means that lack it carry a star
    echo = rows[synthetic.slug("echo")]
    assert echo["cells"]["bench:bench_c"]["missing"] == "—"
    assert echo["cells"]["bench:bench_c"]["missingClass"] == "missing"
    echo_c = tab.page.locator(f"tr[data-slug='{synthetic.slug('echo')}'] td[data-bench='bench_c']")
    assert echo_c.is_visible() and echo_c.inner_text().strip() == "—"
    assert "*" in echo["cells"]["overall"]["marks"]
    assert not rows[alpha.slug]["cells"]["overall"]["marks"]  # a complete model has no star
    # a run in progress is marked as such, with how far it got
    foxtrot = rows[synthetic.slug("foxtrot")]
    assert "in progress" in foxtrot["marks"]
    assert any("60/120" in m for m in foxtrot["cells"]["bench:bench_a"]["marks"])

    # sorting by a dimension: descending, then ascending; models without it stay last
    assert_sorts(tab, board, "reasoning", "descending")
    assert_sorts(tab, board, "reasoning", "ascending")
    assert_sorts(tab, board, "math", "descending")
    assert_sorts(tab, board, "math", "ascending")
    assert sum(v is None for _, v in dim_values(tab, "math")) == 2  # echo and foxtrot

    # filtering by name, by completeness, and to nothing at all
    every = {m.slug for m in board.models}
    empty = tab.page.locator("#filter-empty")
    search = tab.page.locator("#model-filter")
    search.fill("ha")
    assert set(shown_slugs(tab)) == {m.slug for m in board.models if "ha" in m.name}
    assert len(shown_slugs(tab)) == 2 and not empty.is_visible()
    search.fill("")
    assert set(shown_slugs(tab)) == every
    complete = tab.page.locator("#complete-only")
    complete.check()
    assert set(shown_slugs(tab)) == every - {synthetic.slug("echo"), synthetic.slug("foxtrot")}
    complete.uncheck()
    search.fill("no such model")
    assert shown_slugs(tab) == [] and empty.is_visible()
    search.fill("")
    assert set(shown_slugs(tab)) == every and not empty.is_visible()
    tab.assert_clean("leaderboard controls")


def test_compare_picker_and_paired_figures(tab: Tab, synthetic: Site) -> None:
    """The picker leads to the comparison; its differences, p-values and disagreements are
    `compare`'s, and the disagreement list pages 50 at a time."""
    tab.open(f"{synthetic.url}/", charts=1)
    a, b = synthetic.model("bravo"), synthetic.model("alpha")

    alerts: list[str] = []
    tab.page.once("dialog", lambda d: (alerts.append(d.message), d.dismiss()))
    tab.page.locator("#cmp-a").select_option(b.slug)
    tab.page.locator("#cmp-b").select_option(b.slug)
    tab.page.locator("#cmp-go").click()
    tab.page.wait_for_timeout(200)
    assert alerts and "two different" in alerts[0]
    assert tab.page.url == f"{synthetic.url}/"

    tab.page.locator("#cmp-a").select_option(a.slug)
    tab.page.locator("#cmp-b").select_option(b.slug)
    tab.click_through(tab.page.locator("#cmp-go"))
    query = parse_qs(urlparse(tab.page.url).query)
    assert urlparse(tab.page.url).path == "/compare"
    assert query == {"a": [a.slug], "b": [b.slug]}
    assert tab.page.locator("h1").inner_text() == f"{a.name} vs {b.name}"

    cmp = compare(synthetic.store, synthetic.board, a, b)
    assert_compare_figures(tab, cmp)
    assert {"< 0.001"} < set(tab.texts("#compare-table td.pval"))  # both formats on show
    want = expected_disagreements(cmp)
    assert len(want) == sum(len(bc.differ) for bc in cmp.benches) > PER_PAGE
    assert tab.page.locator("#disagreements small").inner_text() == f"({len(want)})"
    assert disagreement_rows(tab) == want[:PER_PAGE]
    assert_inert(tab, "comparison, page 1")

    tab.click_through(tab.page.locator("nav.pager a[rel=next]"))
    assert parse_qs(urlparse(tab.page.url).query)["page"] == ["2"]
    assert disagreement_rows(tab) == want[PER_PAGE : 2 * PER_PAGE]
    assert_inert(tab, "comparison, page 2")


def test_sample_browser_counts_pages_and_search(tab: Tab, synthetic: Site) -> None:
    """Counts, pages, filters and search of the sample browser match SQL on the store."""
    store, base = synthetic.store, synthetic.url
    run_id = synthetic.runs[("alpha", "bench_a")]
    everything = sql_samples(store, run_id, "bench_a")
    counts = sql_counts(store, run_id, "bench_a")
    pages = -(-counts["all"] // PER_PAGE)
    tab.open(f"{base}/run/{run_id}/bench_a")
    assert filter_counts(tab) == {k: f"{k} ({n})" for k, n in counts.items()}
    count = tab.page.locator("#sample-count").inner_text()
    assert count == f"{counts['all']} samples · page 1 of {pages}"
    rows = sample_rows(tab)
    assert [(r["id"], r["index"]) for r in rows] == [
        (s["sample_id"], s["idx"]) for s in everything[:PER_PAGE]
    ]
    assert [r["correct"] for r in rows] == [bool(s["correct"]) for s in everything[:PER_PAGE]]

    # each choice row lists every choice's logprob, the best and the target marked
    first = json.loads(everything[0]["payload"])
    items = tab.page.locator("#samples tbody tr").first.locator("ol.choices li")
    assert items.count() == len(first["choice_logprobs"])
    assert tab.texts("#samples tbody tr:first-child ol.choices li .lp") == [
        f"{lp:.4f}" for lp in first["choice_logprobs"]
    ]
    best = max(range(len(first["choice_logprobs"])), key=lambda i: first["choice_logprobs"][i])
    classes = [c.split() for c in tab.attrs("#samples tbody tr:first-child ol.choices li", "class")]
    assert ["best" in c for c in classes] == [i == best for i in range(len(classes))]
    assert ["target" in c for c in classes] == [i == first["target"] for i in range(len(classes))]
    # the hostile third string stays literal text, and its </table> broke no row
    assert tab.page.get_by_text("</pre></td></tr></table><b>bold?</b>{{ 7*7 }}").count() > 0
    assert_inert(tab, "samples page 1")

    tab.click_through(tab.page.locator("nav.pager a[rel=next]"))
    assert tab.page.locator("#sample-count").inner_text().endswith(f"page 2 of {pages}")
    assert [r["index"] for r in sample_rows(tab)] == [
        s["idx"] for s in everything[PER_PAGE : 2 * PER_PAGE]
    ]

    tab.click_through(tab.page.locator("nav.filters a[data-filter=wrong]"))
    wrong = [s for s in everything if not s["correct"]]
    rows = sample_rows(tab)
    assert [r["id"] for r in rows] == [s["sample_id"] for s in wrong[:PER_PAGE]]
    assert not any(r["correct"] for r in rows)
    assert tab.page.locator("#sample-count").inner_text().startswith(f"{counts['wrong']} sample")

    tab.open(f"{base}/run/{run_id}/bench_a")
    search = tab.page.locator("#sample-search")
    search.fill("onerror")
    with tab.page.expect_response(lambda r: r.request.is_navigation_request()) as info:
        search.press("Enter")
    tab.page.wait_for_load_state("load")
    tab.arrived("search", info.value.status, 200, 0)
    assert parse_qs(urlparse(tab.page.url).query) == {"filter": ["all"], "q": ["onerror"]}
    clause, params = like("onerror")
    matching = sql_samples(store, run_id, "bench_a", clause, params)
    assert 0 < len(matching) < counts["all"]
    rows = sample_rows(tab)
    assert [r["id"] for r in rows] == [s["sample_id"] for s in matching[:PER_PAGE]]
    assert all("onerror" in r["text"] for r in rows)
    count = tab.page.locator("#sample-count").inner_text()
    assert count.startswith(f"{len(matching)} samples matching “onerror”")
    assert_inert(tab, "search results", literal=False)

    # generation samples: the model's output and the extracted answer, no choice list
    gen_run = synthetic.runs[("alpha", "bench_c")]
    tab.open(f"{base}/run/{gen_run}/bench_c")
    payload = json.loads(sql_samples(store, gen_run, "bench_c")[0]["payload"])
    output = tab.page.locator("#samples tbody tr").first.locator("pre.output").first
    assert output.text_content() == payload["output"]
    assert tab.page.locator("ol.choices").count() == 0
    extracted = tab.texts("#samples tbody tr:first-child code.extracted")
    assert extracted == list(payload["extracted"].values())
    assert_inert(tab, "generation samples")


def test_run_in_progress_shows_progress(tab: Tab, synthetic: Site) -> None:
    """foxtrot stopped at 60 of 120 on bench_a: its pages say so instead of showing a result."""
    foxtrot = synthetic.model("foxtrot")
    tab.open(f"{synthetic.url}/model/{foxtrot.slug}", charts=2)
    row = tab.page.locator("#model-benches tr[data-bench='bench_a']")
    assert row.locator("td").nth(4).inner_text() == "60 of 120"
    assert "◔ 60/120" in row.locator(".mark.partial").inner_text()
    status = tab.page.locator("#model-runs tr[data-bench='bench_a'] td").nth(2).inner_text()
    assert status == "running (60/120)"

    tab.click_through(row.get_by_role("link", name="browse"))
    bar = tab.page.locator("progress")
    assert (bar.get_attribute("value"), bar.get_attribute("max")) == ("60", "120")
    note = tab.page.locator(".progress-note").inner_text()
    assert "In progress: 60 of 120 samples stored" in note
    assert filter_counts(tab)["all"] == "all (60)"

    tab.open(f"{synthetic.url}/bench/bench_a", charts=1)
    fox_row = tab.page.locator(f"#bench-models tr[data-slug='{foxtrot.slug}']")
    assert fox_row.locator("td").nth(3).inner_text() == "60 of 120"


def test_alpha_model_page_uses_its_full_run(tab: Tab, synthetic: Site) -> None:
    """A newer `--limit 10` run of alpha does not replace the full one behind its numbers."""
    alpha = synthetic.model("alpha")
    tab.open(f"{synthetic.url}/model/{alpha.slug}", charts=2)
    row = tab.page.locator("#model-benches tr[data-bench='bench_a']")
    assert row.locator("td").nth(4).inner_text() == "120"
    assert row.locator(".score").inner_text() == pct(alpha.entries["bench_a"].score.value)
    run = tab.page.locator("#model-runs tr[data-bench='bench_a'] code").first.inner_text()
    assert run == synthetic.runs[("alpha", "bench_a")]
    history = tab.texts("#model-history tbody tr td:first-child")
    assert synthetic.runs[("alpha-limited", "bench_a")] in history  # listed, just not used


def test_corpus_columns_in_their_units_sort_best_first(tab: Tab, tmp_path: Path) -> None:
    """BLEU and word perplexity columns show their own units, are not averaged, and sort best
    first: the perplexity column ascending (lower is better), BLEU descending."""
    path = tmp_path / "store.sqlite"
    build_corpus_synthetic(path)
    store = Store(path, create=False)
    board = load_board(store)
    good = next(m for m in board.models if m.name == "good")
    with running(create_app(path)) as url:
        tab.open(f"{url}/", charts=1)
        assert "Not averaged" in tab.page.locator("p.lede").inner_text()
        tab.page.locator("#toggle-benches").click()
        bleu = good.entries["wmt16_de_en"].score
        cell = tab.page.locator(f"tr[data-slug='{good.slug}'] td[data-bench='wmt16_de_en']")
        assert cell.locator(".score").inner_text() == f"{bleu.value:.1f}"
        for bench, first in (("wikitext", "ascending"), ("wmt16_de_en", "descending")):
            header = tab.page.locator(f"#board th[data-bench='{bench}']")
            header.locator("small").click()  # not the link: that opens the benchmark
            assert header.get_attribute("aria-sort") == first, bench
            order = tab.page.evaluate(
                """(b) => Array.from(document.querySelectorAll('#board tbody tr')).map((tr) =>
                     tr.querySelector(`td[data-bench="${b}"]`).dataset.value)""",
                bench,
            )
            values = [float(v) for v in order if v != ""]
            assert values == sorted(values, reverse=first == "descending"), bench
            assert order[0] == str(good.entries[bench].score.value), bench  # best first
        tab.open(f"{url}/bench/wikitext", charts=1)
        assert tab.attrs("#bench-models tbody tr", "data-slug")[0] == good.slug
        tab.open(f"{url}/model/{good.slug}", charts=2)
    store.close()


def test_bad_urls_and_bad_stores(tab: Tab, synthetic: Site, tmp_path: Path) -> None:
    """Unknown things are a 404 page; no store yet is the getting-started page; a file that is
    no gnomon store is a 500 page naming it. Never a traceback."""
    run_id = synthetic.runs[("alpha", "bench_a")]
    for path in (
        "/model/nope",
        "/bench/nope",
        "/run/nope/x",
        f"/run/{run_id}/nope",
        f"/run/{run_id}/bench_a?filter=nope",
        f"/compare?a=nope&b={synthetic.slug('alpha')}",
        "/no/such/page",
    ):
        tab.open(f"{synthetic.url}{path}", status=404)
        assert tab.page.locator("h1").inner_text() == "Not found", path
        assert tab.page.locator(".message").inner_text().strip(), path
        assert "Traceback" not in tab.page.locator("body").inner_text(), path

    absent = tmp_path / "absent.sqlite"
    with running(create_app(absent)) as url:
        tab.open(f"{url}/")
        empty = tab.page.locator("section.empty")
        assert empty.is_visible() and "gnomon run" in empty.inner_text()
        assert str(absent) in empty.inner_text()
        tab.open(f"{url}/model/anything", status=404)
        assert "no store" in tab.page.locator(".message").inner_text()
    assert not absent.exists(), "showing an empty store must not create one"

    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(bytes(range(256)) * 64)
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
        conn.execute("INSERT INTO notes VALUES ('mine')")
    conn.close()
    for bad, words in ((junk, "not a usable gnomon store"), (foreign, "not a gnomon store")):
        with running(create_app(bad)) as url:
            for path in ("/", f"/model/{synthetic.slug('alpha')}"):
                tab.open(f"{url}{path}", status=500)
                assert tab.page.locator("h1").inner_text() == "The store could not be read"
                message = tab.page.locator(".message").inner_text()
                assert str(bad) in message and words in message, message
                assert "Traceback" not in tab.page.locator("body").inner_text()
    assert foreign.read_bytes()[:16] == b"SQLite format 3\x00"


def test_hostile_model_names_stay_text(tab: Tab, tmp_path: Path) -> None:
    """Model names are untrusted too: as link text, headings, picker options and chart labels
    (plotly reads some HTML in labels) they show literally and run nothing."""
    path = tmp_path / "hostile.sqlite"
    store = Store(path)
    try:
        for ability, name in enumerate(HOSTILE[:2]):
            write_run(
                store, model=name, ability=float(ability), bench="bench_a", kind="choice",
                dimension="knowledge", samples=20, hostile=True,
            )  # fmt: skip
        board = load_board(store)
    finally:
        store.close()
    names = {m.name for m in board.models}
    assert names == set(HOSTILE[:2])
    with running(create_app(path)) as url:
        tab.open(f"{url}/", charts=1)
        assert set(tab.texts("#board td.model a")) == names
        assert set(tab.texts("#cmp-a option")) == names
        assert set(tab.texts("#overall-chart .ytick text")) == names
        assert_inert(tab, "leaderboard of hostile names")
        first, second = board.models
        tab.open(f"{url}/model/{first.slug}", charts=2)
        assert tab.page.locator("h1").inner_text() == first.name
        assert tab.page.title() == f"{first.name} · gnomon"
        assert_inert(tab, "model page of a hostile name")
        tab.open(f"{url}/compare?a={first.slug}&b={second.slug}")
        assert tab.page.locator("h1").inner_text() == f"{first.name} vs {second.name}"
        assert_inert(tab, "comparison of hostile names")


def test_real_store_pages(tab: Tab, real_rank_store: Path) -> None:
    """Two tiny models run for real: the pages show `load_board`'s figures, the stored prompts
    and outputs, and real choice logprobs."""
    store = Store(real_rank_store, create=False)
    try:
        board = load_board(store)
        assert len(board.models) == 2 and set(board.benches) == {"mmlu", "arc_easy", "gsm8k"}
        with running(create_app(real_rank_store)) as url:
            tab.open(f"{url}/", charts=1)
            assert_board_figures(tab, board)
            for model in board.models:
                tab.open(f"{url}/model/{model.slug}", charts=2)
                scores = tab.texts("#model-benches td.cell-score .score")
                assert scores == [pct(model.entries[b].score.value) for b in board.benches]
            for bench in board.benches:
                tab.open(f"{url}/bench/{bench}", charts=1)
                newest = max((m.entries[bench] for m in board.models), key=lambda e: e.created)
                first = sql_samples(store, newest.run_id, bench)[0]
                example = tab.page.locator("#example-prompt").text_content()
                assert example == first["prompt"], bench

            entry = board.models[0].entries["gsm8k"]
            tab.open(f"{url}/run/{entry.run_id}/gsm8k")
            stored = sql_samples(store, entry.run_id, "gsm8k")
            rows = sample_rows(tab)
            assert [r["id"] for r in rows] == [s["sample_id"] for s in stored]
            outputs = [
                o.text_content()
                for o in tab.page.locator("#samples tbody tr td:nth-child(4) > pre.output").all()
            ]
            assert outputs == [json.loads(s["payload"])["output"] for s in stored]
            assert tab.page.locator("ol.choices").count() == 0
            assert_inert(tab, "gsm8k samples", literal=False)

            entry = board.models[1].entries["mmlu"]
            tab.open(f"{url}/run/{entry.run_id}/mmlu")
            stored = sql_samples(store, entry.run_id, "mmlu")
            assert [r["id"] for r in sample_rows(tab)] == [s["sample_id"] for s in stored]
            for i, sample in enumerate(stored):
                logprobs = json.loads(sample["payload"])["choice_logprobs"]
                lps = tab.texts(f"#samples tbody tr:nth-child({i + 1}) ol.choices li .lp")
                assert lps == [f"{lp:.4f}" for lp in logprobs], sample["sample_id"]
            assert_inert(tab, "mmlu samples", literal=False)
    finally:
        store.close()


def test_judged_and_tool_samples_stay_text(tab: Tab, tmp_path: Path) -> None:
    """A judge reply holding a <script>, a model answer holding markup, a failed judgment's raw
    replies and a tool call's broken arguments: shown as text, served and exported, and nothing
    runs once every fold is opened."""
    from judged_store import BROKEN_ARGUMENTS, SCRIPT_REPLY, build_judged_store

    built = build_judged_store(tmp_path / "judged")
    store = Store(built["path"], create=False)
    site = tmp_path / "site"
    try:
        export_site(store, site, compare_top=0)
        with running(create_app(built["path"])) as url:
            for base, suffix in ((f"{url}/run", ""), (site.as_uri() + "/run", "/all-1.html")):
                tab.open(f"{base}/{built['judged']}/chat{suffix}")
                assert_inert(tab, "judged samples")
                replies = tab.texts(".judgment pre.judge-reply")
                assert replies == [SCRIPT_REPLY, "Second turn: Rating: [[6]]"]
                assert tab.texts("code.verdict") == ["8", "6"]
                assert tab.texts("pre.turn-answer") == ["The answer is 3.", "Yes: 3 <i>surely</i>."]
                failure = tab.texts("details.failures .failure pre.reason")
                assert len(failure) == 1 and "I will not rate <b>this</b> one." in failure[0]
                raw = tab.texts("details.failures pre.judge-reply.raw")
                assert raw == ["I will not rate <b>this</b> one."] * 6
                tab.open(f"{base}/{built['tools']}/bfcl_simple{suffix}")
                assert_inert(tab, "tool samples", literal=False)
                assert tab.texts("pre.call-arguments") == [BROKEN_ARGUMENTS.strip()]
                assert "not JSON" in tab.texts(".checker-error pre.reason")[0]
    finally:
        store.close()


def test_static_export_in_the_browser(tab: Tab, synthetic: Site, tmp_path: Path) -> None:
    """The exported site opened from disk: same figures, working sort, links, picker, sample
    pages with their pagination and in-page search, charts from its own static/ folder."""
    board, store = synthetic.board, synthetic.store
    out = tmp_path / "site"
    summary = export_site(store, out)
    assert summary.models == len(board.models)
    index = (out / "index.html").as_uri()
    tab.open(index, charts=1)
    assert tab.page.locator("script[src='static/plotly.min.js']").count() == 1
    assert tab.page.locator("#overall-chart g.point").count() == len(board.models)
    assert_board_figures(tab, board)
    assert_sorts(tab, board, "reasoning", "descending")
    assert_sorts(tab, board, "reasoning", "ascending")
    assert_inert(tab, "static leaderboard", literal=False)

    alpha = synthetic.model("alpha")
    tab.click_through(tab.page.locator(f"tr[data-slug='{alpha.slug}'] td.model a"), charts=2)
    assert tab.page.url == (out / "model" / f"{alpha.slug}.html").as_uri()
    assert tab.page.locator("h1").inner_text() == "alpha"

    # the picker knows which pairs were exported and turns a reversed pair around
    tab.open(index, charts=1)
    echo, charlie = synthetic.model("echo"), synthetic.model("charlie")
    tab.page.locator("#cmp-a").select_option(echo.slug)
    tab.page.locator("#cmp-b").select_option(charlie.slug)
    tab.click_through(tab.page.locator("#cmp-go"))
    assert tab.page.url == (out / "compare" / f"{charlie.slug}--{echo.slug}.html").as_uri()
    cmp = compare(store, board, charlie, echo)
    assert_compare_figures(tab, cmp)
    assert "only charlie ran bench_c" in tab.page.locator("p.note").first.inner_text()
    want = expected_disagreements(cmp)
    assert disagreement_rows(tab) == want[:PER_PAGE]
    assert_inert(tab, "static comparison")

    # sample pages: from the model page's "browse", then the pager and a filter
    run_id = synthetic.runs[("alpha", "bench_a")]
    everything = sql_samples(store, run_id, "bench_a")
    tab.open((out / "model" / f"{alpha.slug}.html").as_uri(), charts=2)
    row = tab.page.locator("#model-benches tr[data-bench='bench_a']")
    tab.click_through(row.get_by_role("link", name="browse"))
    pages = out / "run" / run_id / "bench_a"
    assert tab.page.url == (pages / "all-1.html").as_uri()
    assert [r["index"] for r in sample_rows(tab)] == [s["idx"] for s in everything[:PER_PAGE]]
    tab.click_through(tab.page.locator("nav.pager a[rel=next]"))
    assert tab.page.url == (pages / "all-2.html").as_uri()
    second = everything[PER_PAGE : 2 * PER_PAGE]
    assert [r["index"] for r in sample_rows(tab)] == [s["idx"] for s in second]
    tab.click_through(tab.page.locator("nav.filters a[data-filter=correct]"))
    assert tab.page.url == (pages / "correct-1.html").as_uri()
    right = [s["sample_id"] for s in everything if s["correct"]][:PER_PAGE]
    assert [r["id"] for r in sample_rows(tab)] == right

    # in-page search (static mode): hides the rows of this page that do not match
    tab.open((pages / "all-1.html").as_uri())
    clause, params = like("onerror")
    on_page = {s["sample_id"] for s in everything[:PER_PAGE]}
    matching = [
        s["sample_id"]
        for s in sql_samples(store, run_id, "bench_a", clause, params)
        if s["sample_id"] in on_page
    ]
    assert 0 < len(matching) < PER_PAGE
    search = tab.page.locator("#sample-search")
    search.fill("onerror")
    search.press("Enter")  # submitting must not leave the page
    assert tab.page.url == (pages / "all-1.html").as_uri()
    rows = sample_rows(tab)
    assert [r["id"] for r in rows if r["shown"]] == matching
    assert all("onerror" in r["text"] for r in rows if r["shown"])
    assert not tab.page.locator("#search-empty").is_visible()
    search.fill("no sample says this")
    assert not any(r["shown"] for r in sample_rows(tab))
    assert tab.page.locator("#search-empty").is_visible()
    search.fill("")
    assert all(r["shown"] for r in sample_rows(tab))
    assert_inert(tab, "static samples")


def test_screenshots(tab: Tab, synthetic: Site, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Full-page screenshots of each page kind, for a person to look at (CI keeps them)."""
    where = os.environ.get("GNOMON_SCREENSHOTS")
    folder = Path(where) if where else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    base = synthetic.url
    alpha, bravo = synthetic.slug("alpha"), synthetic.slug("bravo")
    shots: list[tuple[str, str, int, Callable[[], None] | None]] = [
        ("leaderboard", f"{base}/", 1, lambda: tab.page.locator("#toggle-benches").click()),
        ("model", f"{base}/model/{alpha}", 2, None),
        ("bench", f"{base}/bench/bench_b", 1, None),
        ("compare", f"{base}/compare?a={bravo}&b={alpha}", 0, None),
        ("samples", f"{base}/run/{synthetic.runs[('alpha', 'bench_a')]}/bench_a", 0, None),
    ]
    for name, url, charts, prepare in shots:
        tab.open(url, charts=charts)
        if prepare:
            prepare()
        target = folder / f"rank-{name}.png"
        tab.page.screenshot(path=str(target), full_page=True)
        assert target.is_file() and target.stat().st_size > 10_000, target
    tab.assert_clean("screenshots")
