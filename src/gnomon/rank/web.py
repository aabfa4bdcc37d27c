"""`gnomon rank serve`: the leaderboard as a web app on localhost. Every request reads the store
afresh, so a run that is still writing shows up as it goes."""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from gnomon import text
from gnomon.errors import UserError
from gnomon.rank import pages
from gnomon.rank.board import Board, load_board
from gnomon.rank.links import Links, ident_of
from gnomon.rank.render import STATIC, render, render_error
from gnomon.rank.serialize import board_json
from gnomon.store import Store

LINKS = Links()


def plotly_js() -> Path:
    """plotly.js as the `plotly` package ships it: the charts work with no network."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def create_app(store_path: Path) -> FastAPI:
    app = FastAPI(title="gnomon rank", docs_url=None, redoc_url=None, openapi_url=None)
    local = threading.local()
    name = str(store_path)

    def store() -> Store:
        """One connection per worker thread: sqlite3 connections must not cross threads."""
        current = getattr(local, "store", None)
        if current is None:
            if not store_path.is_file():
                raise pages.NotFound(f"no store at {store_path} yet: run an evaluation first")
            current = local.store = Store(store_path, create=False)
        return current

    def board() -> Board:
        """Rebuilt only when the store changed since this thread last built it: data_version
        moves with other connections' commits, total_changes with this one's own writes."""
        if not store_path.is_file():  # nothing run yet: the leaderboard says how to start
            return Board([], {}, [])
        db = store()
        version = db.data_version()
        cached = getattr(local, "board", None)
        if cached is None or cached[0] != version:
            built = load_board(db)
            version = db.data_version()
            local.board = cached = (version, built)
        return cached[1]

    def reading(route: Callable[..., Response]) -> Callable[..., Response]:
        """Runs in the worker thread: a store that failed is dropped there, so the next request
        opens the file afresh (it may have been repaired or replaced)."""

        @functools.wraps(route)
        def guarded(*args: Any, **kwargs: Any) -> Response:
            try:
                return route(*args, **kwargs)
            except (UserError, sqlite3.DatabaseError):
                current = local.__dict__.pop("store", None)
                local.__dict__.pop("board", None)
                if current is not None:
                    current.close()
                raise

        return guarded

    def html(page: pages.Page) -> HTMLResponse:
        return HTMLResponse(render(page, LINKS, name))

    @app.exception_handler(pages.NotFound)
    async def not_found(request: Request, exc: pages.NotFound) -> HTMLResponse:
        return HTMLResponse(render_error(404, str(exc), LINKS, name), status_code=404)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
        message = "no such page" if exc.status_code == 404 else str(exc.detail)
        return HTMLResponse(
            render_error(exc.status_code, message, LINKS, name), status_code=exc.status_code
        )

    @app.exception_handler(RequestValidationError)
    async def bad_query(request: Request, exc: RequestValidationError) -> HTMLResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors()
        )
        return HTMLResponse(render_error(400, problems, LINKS, name), status_code=400)

    @app.exception_handler(UserError)
    async def store_error(request: Request, exc: UserError) -> HTMLResponse:
        return HTMLResponse(render_error(500, str(exc), LINKS, name), status_code=500)

    @app.exception_handler(sqlite3.DatabaseError)
    async def db_error(request: Request, exc: sqlite3.DatabaseError) -> HTMLResponse:
        message = f"{store_path}: not a usable gnomon store ({exc})"
        return HTMLResponse(render_error(500, message, LINKS, name), status_code=500)

    @app.get("/", response_class=HTMLResponse)
    @reading
    def index() -> HTMLResponse:
        return html(pages.leaderboard(board()))

    @app.get("/api/board.json")
    @reading
    def api_board() -> Response:
        return Response(text.dumps(board_json(board())), media_type="application/json")

    @app.get("/model/{slug}", response_class=HTMLResponse)
    @reading
    def model(slug: str) -> HTMLResponse:
        return html(pages.model_page(store(), board(), slug))

    def run_id_of(name: str) -> str:
        """Run and benchmark ids travel as `links.name_of` names: any id, `/` or a lone
        surrogate included, has one that fits in a path segment."""
        found = ident_of(name, store().run_ids())
        if found is None:
            raise pages.NotFound(f"no run {name!r} in this store")
        return found

    def bench_of(name: str, run_id: str | None = None) -> str:
        known = [b["bench"] for b in store().run_benches(run_id)] if run_id else board().benches
        found = ident_of(name, known)
        if found is None:
            raise pages.NotFound(f"no benchmark {name!r} in this store")
        return found

    @app.get("/bench/{name}", response_class=HTMLResponse)
    @reading
    def bench(name: str) -> HTMLResponse:
        return html(pages.bench_page(store(), board(), bench_of(name)))

    @app.get("/compare", response_class=HTMLResponse)
    @reading
    def compare(a: str, b: str, bench: str | None = None, page: int = 1) -> HTMLResponse:
        chosen = bench_of(bench) if bench else None
        return html(pages.compare_page(store(), board(), a, b, chosen, page))

    @app.get("/run/{name}")
    @reading
    def run(name: str) -> Response:
        run_id = run_id_of(name)
        benches = store().run_benches(run_id)
        if not benches:
            raise pages.NotFound(f"no run {run_id!r} in this store")
        first = LINKS.samples(run_id, benches[0]["bench"])
        assert first is not None  # only a static export lacks sample pages
        return RedirectResponse(first)

    @app.get("/run/{name}/{bench_name}", response_class=HTMLResponse)
    @reading
    def samples(
        name: str, bench_name: str, filter: str = "all", q: str = "", page: int = 1
    ) -> HTMLResponse:
        run_id = run_id_of(name)
        bench = bench_of(bench_name, run_id)
        return html(pages.samples_view(store(), board(), run_id, bench, filter, q, page))

    @app.get("/static/plotly.min.js")
    def plotly_asset() -> FileResponse:
        return FileResponse(plotly_js(), media_type="text/javascript")

    @app.get("/static/{name}")
    def asset(name: str) -> FileResponse:
        path = STATIC / name
        if name not in {p.name for p in STATIC.iterdir()}:
            raise pages.NotFound(f"no file {name!r}")
        return FileResponse(path)

    return app


def serve(store_path: Path, host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(create_app(store_path), host=host, port=port, log_level="warning")
