"""`gnomon rank export DIR`: the same pages, from the same templates, as files that any static
host (or a browser opening them from disk) can show. Dynamic parts become pre-rendered pages:
sample pages per filter, comparisons for every pair among the top models."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

from gnomon import text
from gnomon.errors import UserError
from gnomon.rank import pages
from gnomon.rank.board import load_board
from gnomon.rank.links import Links, name_of
from gnomon.rank.render import STATIC, render
from gnomon.rank.samples import FILTERS, PER_PAGE
from gnomon.rank.serialize import board_json
from gnomon.rank.web import plotly_js
from gnomon.store import Store

MARKER = ".gnomon-export"
_OWNED = ("index.html", "board.json", "static", "model", "bench", "compare", "run")


@dataclass
class ExportSummary:
    pages: int
    models: int
    benches: int
    pairs: int
    sample_pages: int
    seconds: float


def _prepare(out: Path) -> None:
    """Refuse to write into a folder of someone else's files; clear our own earlier export."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise UserError(f"{out} is not empty and holds no earlier gnomon export; choose another")
    out.mkdir(parents=True, exist_ok=True)
    for name in _OWNED:
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    (out / MARKER).write_text("written by gnomon rank export\n", encoding="utf-8")


def export_site(
    store: Store,
    out: Path,
    *,
    compare_top: int = 20,
    samples: bool = True,
    progress: Callable[[str], None] = lambda _: None,
) -> ExportSummary:
    started = time.monotonic()
    board = load_board(store)
    _prepare(out)
    (out / "static").mkdir()
    for asset in STATIC.iterdir():
        shutil.copyfile(asset, out / "static" / asset.name)
    shutil.copyfile(plotly_js(), out / "static" / "plotly.min.js")
    (out / "board.json").write_text(text.dumps(board_json(board), indent=1), encoding="utf-8")

    entries = {(e.run_id, e.bench) for m in board.models for e in m.entries.values()}
    root = Links(static_site=True, sample_pages=frozenset(entries) if samples else frozenset())
    top = [m.slug for m in board.models[:compare_top]]
    pairs = list(combinations(top, 2))
    name = store.path.name
    written = 0

    def write(rel: str, page: pages.Page, **extra: object) -> None:
        nonlocal written
        path = out / rel  # every segment comes from name_of or a model slug: never `..` or `/`
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(page, root.at(rel.count("/")), name, **extra), encoding="utf-8")
        written += 1

    stamp = time.strftime("%Y-%m-%d %H:%M")
    write("index.html", pages.leaderboard(board), compare_pairs=pairs, generated=stamp)
    for model in board.models:
        write(f"model/{model.slug}.html", pages.model_page(store, board, model.slug))
    for bench in board.benches:
        write(f"bench/{name_of(bench)}.html", pages.bench_page(store, board, bench))
    progress(f"{len(board.models)} model and {len(board.benches)} benchmark pages")
    for a, b in pairs:
        write(f"compare/{a}--{b}.html", pages.compare_page(store, board, a, b))
    progress(f"{len(pairs)} comparisons")
    sample_pages = 0
    if samples:
        for run_id, bench in sorted(entries):
            for filter in FILTERS:
                first = pages.samples_view(store, board, run_id, bench, filter, "", 1)
                count = first.context["sp"].pages
                for number in range(1, count + 1):
                    page = first if number == 1 else pages.samples_view(
                        store, board, run_id, bench, filter, "", number
                    )  # fmt: skip
                    write(f"run/{name_of(run_id)}/{name_of(bench)}/{filter}-{number}.html", page)
                    sample_pages += 1
        progress(f"{sample_pages} sample pages ({PER_PAGE} samples each)")
    return ExportSummary(
        written,
        len(board.models),
        len(board.benches),
        len(pairs),
        sample_pages,
        time.monotonic() - started,
    )
