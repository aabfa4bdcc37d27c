"""`gnomon rank` and its subcommands: the leaderboard in the terminal, served, or exported."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gnomon.console import StoreOpt, default_store, err, out
from gnomon.errors import UserError

if TYPE_CHECKING:
    from gnomon.store import Store

rank_app = typer.Typer(
    help="The leaderboard: in the terminal, as a web app (serve), or as a static site (export).",
    invoke_without_command=True,
)
EMPTY_STORE = "no store at {store}: nothing to export yet; run an evaluation with `gnomon run`"


def _rank_store(store: Path | None) -> Store | None:
    """The store to rank, or None when there is none yet (which is not an error)."""
    from gnomon.store import Store

    path = store or default_store()
    if not path.exists():
        return None
    return Store(path, create=False)


@rank_app.callback()
def rank(
    ctx: typer.Context,
    store: StoreOpt = None,
    benchmarks: Annotated[
        bool, typer.Option("--benchmarks", "-b", help="a column per benchmark too")
    ] = False,
) -> None:
    """Print the leaderboard: models by overall score, with a column per capability dimension."""
    if ctx.invoked_subcommand is not None:
        return
    from gnomon.rank.board import load_board
    from gnomon.rank.terminal import EMPTY, board_table

    db = _rank_store(store)
    board = load_board(db) if db else None
    if board is None or not board.models:
        out.print(EMPTY.format(store=store or default_store()))
        return
    out.print(board_table(board, benchmarks))


@rank_app.command("compare")
def rank_compare(
    model_a: Annotated[str, typer.Argument(help="model name, name fragment or slug")],
    model_b: Annotated[str, typer.Argument(help="model name, name fragment or slug")],
    store: StoreOpt = None,
) -> None:
    """Paired difference of two models on the questions both answered, per benchmark."""
    from gnomon.rank.board import load_board
    from gnomon.rank.compare import compare
    from gnomon.rank.terminal import EMPTY, comparison_table, find_model

    db = _rank_store(store)
    if db is None:
        raise UserError(EMPTY.format(store=store or default_store()).splitlines()[0])
    board = load_board(db)
    a, b = find_model(board, model_a), find_model(board, model_b)
    if a.key == b.key:
        raise UserError(f"{model_a!r} and {model_b!r} are the same model")
    out.print(comparison_table(compare(db, board, a, b)))


@rank_app.command("serve")
def rank_serve(
    store: StoreOpt = None,
    host: Annotated[str, typer.Option(help="bind address; loopback by default")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535)] = 8080,
) -> None:
    """The leaderboard, model, benchmark, comparison and sample pages as a web app."""
    from gnomon.rank.board import load_board
    from gnomon.rank.web import serve as serve_rank

    path = store or default_store()
    db = _rank_store(path)  # a corrupt or foreign file is refused before the server starts
    if db is not None:
        load_board(db)
        db.close()
    _check_port(host, port)
    err.print(f"gnomon rank: http://{host}:{port}/ (store {path}); Ctrl-C stops")
    serve_rank(path, host, port)


def _check_port(host: str, port: int) -> None:
    """A port already taken is a one-line error here, not a server log line after start-up."""
    import socket

    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


@rank_app.command("export")
def rank_export(
    out_dir: Annotated[Path, typer.Argument(help="folder for the static site")],
    store: StoreOpt = None,
    compare_top: Annotated[
        int, typer.Option(min=0, help="write comparisons for every pair among this many top models")
    ] = 20,
    samples: Annotated[
        bool, typer.Option(help="write the sample browser pages of every run on the board")
    ] = True,
) -> None:
    """Write the same pages as a static site: open DIR/index.html, or host DIR anywhere."""
    from gnomon.rank.export import export_site

    db = _rank_store(store)
    if db is None:
        raise UserError(EMPTY_STORE.format(store=store or default_store()))
    try:
        summary = export_site(
            db, out_dir, compare_top=compare_top, samples=samples, progress=lambda m: err.print(m)
        )
    except OSError as exc:
        raise UserError(f"cannot write the site to {out_dir}: {exc.strerror or exc}") from None
    out.print(
        f"wrote {summary.pages} pages ({summary.models} models, {summary.benches} benchmarks, "
        f"{summary.pairs} comparisons, {summary.sample_pages} sample pages) to {out_dir} "
        f"in {summary.seconds:.1f} s; open {out_dir / 'index.html'}"
    )
