"""What every command shares: the two consoles, and where the store lives by default."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from gnomon.sandbox.hidden import hide_from_sandboxes

# markup off: paths, names and model text are printed verbatim; styling goes through Text
out = Console(markup=False, highlight=False)
if not out.is_terminal:
    out = Console(markup=False, highlight=False, width=200)  # piped tables keep whole cells
err = Console(
    stderr=True, markup=False, highlight=False, width=None if sys.stderr.isatty() else 200
)


def default_store() -> Path:
    if os.environ.get("GNOMON_STORE"):
        path = Path(os.environ["GNOMON_STORE"])
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
        path = base / "gnomon" / "store.sqlite"
    hide_from_sandboxes(path)
    return path


StoreOpt = Annotated[
    Path | None,
    typer.Option(
        "--store",
        help="SQLite store file [default: $GNOMON_STORE or ~/.local/share/gnomon/store.sqlite]",
    ),
]
