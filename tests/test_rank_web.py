"""`gnomon rank` as a user meets it: pages over real HTTP on loopback, the static export on disk,
the terminal commands as subprocesses, and every kind of bad input."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from gnomon_cli import ENV, GNOMON, gnomon, ok
from loopback import running

from gnomon.rank.board import load_board
from gnomon.rank.export import export_site
from gnomon.rank.render import pct
from gnomon.rank.web import create_app
from gnomon.store import Store
from gnomon_testing.synthetic import HOSTILE, write_run

RAW_HOSTILE = ("<script>window.__gnomon_pwned", "<img src=x onerror", "<b>bold?</b>")


def _assert_escaped(html: str) -> None:
    for raw in RAW_HOSTILE:
        assert raw not in html, f"unescaped model text {raw!r} in the page"


def test_pages_escape_model_text_and_show_store_figures(rank_store: dict) -> None:
    path = rank_store["path"]
    board = load_board(Store(path, create=False))
    slugs = {m.name: m.slug for m in board.models}
    with running(create_app(path)) as base, httpx.Client(base_url=base) as client:
        home = client.get("/")
        assert home.status_code == 200
        for model in board.models:
            assert f'href="/model/{model.slug}"' in home.text
            assert f'<span class="score">{pct(model.overall.value)}</span>' in home.text
        run = rank_store["runs"][("alpha", "bench_a")]
        urls = [
            f"/model/{slugs['alpha']}", "/bench/bench_a", "/bench/bench_c",
            f"/compare?a={slugs['alpha']}&b={slugs['bravo']}",
            f"/run/{run}/bench_a", f"/run/{run}/bench_a?filter=wrong&page=2",
            f"/run/{run}/bench_a?q=script",
        ]  # fmt: skip
        for url in urls:
            page = client.get(url)
            assert page.status_code == 200, url
            _assert_escaped(page.text)
        samples = client.get(f"/run/{run}/bench_a?q=script").text
        assert "&lt;script&gt;window.__gnomon_pwned" in samples  # shown, as text
        api = client.get("/api/board.json").json()
        alpha = next(m for m in api["models"] if m["name"] == "alpha")
        assert alpha["overall"]["value"] == pytest.approx(board.models[0].overall.value)
        assert alpha["benchmarks"]["bench_a"]["n"] == 120


def test_hostile_model_names_are_escaped(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    store = Store(path)
    write_run(store, model=HOSTILE[0], ability=0.0, bench="b1", kind="choice",
              dimension="knowledge", samples=20, hostile=True)  # fmt: skip
    write_run(store, model=HOSTILE[1], ability=1.0, bench="b1", kind="choice",
              dimension="knowledge", samples=20)  # fmt: skip
    board = load_board(store)
    assert all(re.fullmatch(r"[a-z0-9._-]+", m.slug) for m in board.models)
    with running(create_app(path)) as base, httpx.Client(base_url=base) as client:
        pages = ["/", "/bench/b1", *(f"/model/{m.slug}" for m in board.models)]
        pages.append(f"/compare?a={board.models[0].slug}&b={board.models[1].slug}")
        for url in pages:
            page = client.get(url)
            assert page.status_code == 200, url
            _assert_escaped(page.text)
    out = tmp_path / "site"
    export_site(store, out)
    for html in out.rglob("*.html"):
        _assert_escaped(html.read_text())


def test_bad_input_pages(rank_store: dict, tmp_path: Path) -> None:
    with running(create_app(rank_store["path"])) as base, httpx.Client(base_url=base) as client:
        run = rank_store["runs"][("alpha", "bench_a")]
        for url in ["/model/nope", "/bench/nope", "/run/nope", "/run/nope/bench_a",
                    f"/run/{run}/nope", f"/run/{run}/bench_a?filter=maybe", "/no/such/page",
                    "/compare?a=nope&b=nope", "/static/../store.py"]:  # fmt: skip
            page = client.get(url)
            assert page.status_code == 404, url
            assert "<h1>Not found</h1>" in page.text and "Traceback" not in page.text
        # a bad page number is a usage error, answered as a page, not a traceback
        bad = client.get(f"/run/{run}/bench_a?page=x")
        assert bad.status_code == 400 and "page" in bad.text and "<h1>Bad request</h1>" in bad.text
    missing = tmp_path / "none" / "store.sqlite"
    with running(create_app(missing)) as base:
        home = httpx.get(base + "/")
        assert home.status_code == 200 and 'class="empty"' in home.text
        assert "gnomon run --model" in home.text
    assert not missing.exists() and not missing.parent.exists()  # reading never creates a store
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE t (x)")
    for bad in (junk, foreign):
        before = bad.read_bytes()
        with running(create_app(bad)) as base:
            page = httpx.get(base + "/")
            assert page.status_code == 500
            assert str(bad) in page.text and "Traceback" not in page.text
        assert bad.read_bytes() == before  # refused without a write


def test_a_run_in_progress_shows_as_partial(rank_store: dict) -> None:
    run = rank_store["runs"][("foxtrot", "bench_a")]
    with running(create_app(rank_store["path"])) as base, httpx.Client(base_url=base) as client:
        home = client.get("/").text
        assert "◔ 60/120" in home and "in progress" in home
        samples = client.get(f"/run/{run}/bench_a").text
        assert "In progress: 60 of 120 samples stored" in samples
        assert '<progress max="120" value="60">' in samples


def test_static_export(rank_store: dict, tmp_path: Path) -> None:
    store = Store(rank_store["path"], create=False)
    board = load_board(store)
    out = tmp_path / "site"
    summary = export_site(store, out, compare_top=3)
    assert summary.models == 6 and summary.pairs == 3
    assert (out / "index.html").is_file() and (out / "static" / "plotly.min.js").is_file()
    for model in board.models:
        assert (out / "model" / f"{model.slug}.html").is_file()
    for html in out.rglob("*.html"):
        text = html.read_text()
        # every link is relative, so the site works from any folder or host
        assert not re.search(r'(href|src)="/', text), html
        for link in re.findall(r'(?:href|src)="(?!data:)([^"#?]+)', text):
            assert (html.parent / link).exists(), f"{html}: broken link {link}"
    run = rank_store["runs"][("bravo", "bench_c")]
    assert {p.name for p in (out / "run" / run / "bench_c").iterdir()} >= {
        "all-1.html", "all-3.html", "correct-1.html", "wrong-1.html"
    }  # fmt: skip
    # exporting again over our own export is fine; over someone else's files it is refused
    export_site(store, out, compare_top=0, samples=False)
    assert not (out / "run").exists() and not (out / "compare").exists()
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    proc = gnomon("rank", "export", other, "--store", rank_store["path"])
    assert proc.returncode == 2 and "not empty" in proc.stderr
    assert (other / "notes.txt").read_text() == "mine"


def test_terminal_commands(rank_store: dict, tmp_path: Path) -> None:
    path = rank_store["path"]
    board = load_board(Store(path, create=False))
    table = ok(gnomon("rank", "--store", path, "--benchmarks")).stdout
    for model in board.models:
        assert model.name in table
        assert pct(model.overall.value) in table
    assert table.index("alpha") < table.index("bravo") < table.index("delta")
    cmp = ok(gnomon("rank", "compare", "alpha", "bravo", "--store", path)).stdout
    assert "bench_a" in cmp and "overall" in cmp
    bad = gnomon("rank", "compare", "alpha", "zulu", "--store", path)
    assert bad.returncode == 2 and "no model 'zulu'" in bad.stderr
    missing = tmp_path / "missing.sqlite"
    empty = ok(gnomon("rank", "--store", missing))
    assert "no results" in empty.stdout and "gnomon run" in empty.stdout
    assert not missing.exists()
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"\x00garbage" * 64)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        busy = gnomon("rank", "serve", "--store", path, "--port", taken.getsockname()[1])
    assert busy.returncode == 2 and "cannot listen on 127.0.0.1:" in busy.stderr
    assert "Traceback" not in busy.stderr and busy.stderr.count("error:") == 1
    for args in (["rank"], ["rank", "serve", "--port", "0"], ["rank", "export", tmp_path / "x"]):
        proc = gnomon(*args, "--store", junk)
        assert proc.returncode == 2, proc
        assert "Traceback" not in proc.stderr and proc.stderr.count("error:") == 1
        assert str(junk) in proc.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_rank_serve_subprocess_serves_and_stops_on_sigint(rank_store: dict) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [str(GNOMON), "rank", "serve", "--store", str(rank_store["path"]), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
                time.sleep(0.2)
        assert page.status_code == 200 and "alpha" in page.text
    finally:
        os.kill(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode in (0, 130) and "Traceback" not in err


def test_pages_follow_a_store_that_is_being_written(tmp_path: Path) -> None:
    """The server keeps its board between requests, yet a run written meanwhile by another
    process (here: another connection) shows up on the next page load, progress and all."""
    path = tmp_path / "store.sqlite"
    writer = Store(path)
    write_run(writer, model="first", ability=0.0, bench="b1", kind="choice",
              dimension="knowledge", samples=20)  # fmt: skip
    with running(create_app(path)) as base, httpx.Client(base_url=base) as client:
        assert "first" in client.get("/").text and "second" not in client.get("/").text
        write_run(writer, model="second", ability=1.0, bench="b1", kind="choice",
                  dimension="knowledge", samples=10, planned=20, status="running")  # fmt: skip
        home = client.get("/").text
        assert "second" in home and "◔ 10/20" in home


def _sample_rows(html: str) -> dict[str, str]:
    """sample id -> the HTML of its row in a sample page."""
    return dict(re.findall(r'<tr data-sample="([^"]+)"[^>]*>(.*?)</tr>', html, re.S))


def test_sample_pages_show_which_extractor_read_each_answer(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    store = Store(path)
    runs = {
        name: write_run(store, model=name, ability=0.5, bench=bench, kind=kind,
                        dimension="knowledge", samples=8, extractor=extractor).run_id
        for name, bench, kind, extractor in [
            ("gen", "b_gen", "generate", "regex:strict"),
            ("choice", "b_choice", "choice", "none"),
            ("hostile", "b_gen", "generate", HOSTILE[0]),
            ("plain", "b_gen", "generate", None),
        ]
    }  # fmt: skip
    shown = {
        "gen": '<div class="extractor" title="what read the scored answer out of the output">'
        "<small>extractor</small> <code>regex:strict</code></div>",
        "choice": "<small>extractor</small> <code>none</code>",
        "hostile": "<small>extractor</small> <code>&lt;script&gt;window.__gnomon_pwned",
    }
    bench_of = {"gen": "b_gen", "choice": "b_choice", "hostile": "b_gen", "plain": "b_gen"}
    out = tmp_path / "site"
    export_site(store, out)
    with running(create_app(path)) as base, httpx.Client(base_url=base) as client:
        for name, run in runs.items():
            bench = bench_of[name]
            served = client.get(f"/run/{run}/{bench}")
            assert served.status_code == 200
            static = (out / "run" / run / bench / "all-1.html").read_text()
            for html in (served.text, static):
                _assert_escaped(html)
                rows = _sample_rows(html)
                assert len(rows) == 8
                for sample, row in rows.items():
                    if name == "plain":  # no extractor recorded: nothing claims one
                        assert 'class="extractor"' not in row, sample
                        continue
                    assert shown[name] in row, sample
                    # beside the answer read out: the predicted (choice) or extracted column
                    cell = re.findall(r"<td>(.*?)</td>", row, re.S)[-3 if name == "choice" else -2]
                    assert 'class="extractor"' in cell, sample
