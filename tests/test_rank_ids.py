"""Run and benchmark ids are data (any tool may write them through the store API): the export
writes no file outside its folder, gives distinct ids distinct files, and every link in the
export and the web app leads to the page of the id it names."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import httpx
from loopback import running

from gnomon.rank.export import export_site
from gnomon.rank.links import ident_of, name_of
from gnomon.rank.web import create_app
from gnomon.store import Store
from gnomon_testing.synthetic import write_run

HOSTILE_IDS = [
    "../../x", "..", ".", "a/b", "/abs", "A", "a", "%2e%2e", "%2E%2E", "~", "~41", "~~",
    " ", "", "\x00", "\x01\x1f\x7f", "con", "CON.txt", "x" * 300, "x" * 299 + "y",
    "é", "e\u0301", "\ud800", "\udcff", "😀", "a.", ".a", "a\\b", "a?b#c", "a b",
]  # fmt: skip


def test_names_are_safe_distinct_and_decode() -> None:
    names = [name_of(i) for i in HOSTILE_IDS]
    assert len({n.lower() for n in names}) == len(HOSTILE_IDS)
    for ident, name in zip(HOSTILE_IDS, names, strict=True):
        assert re.fullmatch(r"[a-z0-9_.~-]+", name), name
        assert name not in {".", ".."} and not name.startswith(".") and not name.endswith(".")
        assert len(name.encode()) <= 200
        assert ident_of(name, HOSTILE_IDS) == ident
    assert ident_of("~41") == "A" and ident_of("A") is None and ident_of("~61") is None


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for attr, value in attrs:
            if attr in ("href", "src") and value and not value.startswith(("data:", "#")):
                self.links.append(value)


def _links(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    return parser.links


def _store(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """One model per hostile id: each its benchmark id and its run id."""
    path = tmp_path / "store.sqlite"
    store = Store(path)
    runs = {}
    for i, ident in enumerate(HOSTILE_IDS[:24]):
        run = write_run(store, model=f"model{i}", ability=0.0, bench=f"b{i}", kind="choice",
                        dimension="knowledge", samples=3, hostile=True)  # fmt: skip
        for table in ("runs", "run_benches", "run_results"):
            store.conn.execute(
                f"UPDATE {table} SET run_id = ? WHERE run_id = ?", (ident, run.run_id)
            )
        for table in ("run_benches", "run_results", "results"):
            store.conn.execute(f"UPDATE {table} SET bench = ? WHERE bench = ?", (ident, f"b{i}"))
        runs[ident] = ident
    store.close()
    return path, runs


def test_export_stays_in_its_folder_and_links_resolve(tmp_path: Path) -> None:
    path, runs = _store(tmp_path)
    out = tmp_path / "site" / "inner"
    store = Store(path, create=False)
    before = set(tmp_path.rglob("*"))
    export_site(store, out, compare_top=3)
    store.close()
    assert {p for p in tmp_path.rglob("*") if not p.is_relative_to(out)} <= before | {out.parent}
    bench_pages = list((out / "bench").iterdir())
    assert len(bench_pages) == len(runs)
    sample_dirs = list((out / "run").iterdir())
    assert len(sample_dirs) == len(runs)
    for page in out.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        for link in _links(html):
            target = (page.parent / unquote(urlsplit(link).path)).resolve()
            assert target.is_relative_to(out.resolve()), (page, link)
            assert target.is_file(), (page, link)
    for ident in runs:  # each benchmark page is the page of its own id
        page = out / "bench" / f"{name_of(ident)}.html"
        assert page.is_file()


def test_web_app_serves_every_id(tmp_path: Path) -> None:
    path, runs = _store(tmp_path)
    with running(create_app(path)) as base, httpx.Client(base_url=base) as client:
        home = client.get("/")
        assert home.status_code == 200
        seen: set[str] = set()
        todo = [urljoin(base + "/", link) for link in _links(home.text)]
        while todo:
            url = todo.pop()
            if url in seen or not url.startswith(base) or "/static/" in url:
                continue
            seen.add(url)
            page = client.get(url, follow_redirects=True)
            assert page.status_code == 200, url
            if "/run/" not in url or "filter=all" in url and "page=" not in url:
                todo.extend(urljoin(url, link) for link in _links(page.text))
        assert len(seen) > 3 * len(runs)  # the crawl reached every model, bench and run
        for ident in runs:
            bench = client.get(f"/bench/{name_of(ident)}")
            assert bench.status_code == 200
            samples = client.get(f"/run/{name_of(ident)}/{name_of(ident)}")
            assert samples.status_code == 200
        assert client.get("/bench/..%2f..%2fx").status_code == 404
        assert client.get(f"/bench/{name_of('A')}").status_code == 200
        assert client.get("/bench/A").status_code == 404
