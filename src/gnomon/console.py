"""What every command shares: the two consoles, and where the store lives by default."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import IO, Annotated, Any, cast

import typer
from rich.console import Console

from gnomon.sandbox.hidden import hide_from_sandboxes
from gnomon.text import shown


class _Shown:
    """The current sys.stdout or sys.stderr (looked up on every write, so redirection still
    works), with text passed through `text.shown`: a lone surrogate in a model name, a path or
    a model's output prints as U+FFFD instead of raising UnicodeEncodeError mid-table."""

    def __init__(self, name: str) -> None:
        self._name = name

    def write(self, data: str) -> int:
        return getattr(sys, self._name).write(shown(data))

    def __getattr__(self, attr: str) -> Any:
        return getattr(getattr(sys, self._name), attr)

    @classmethod
    def stream(cls, name: str) -> IO[str]:
        """A proxy typed as the stream it stands for: it forwards every attribute to it."""
        return cast(IO[str], cls(name))


# markup off: paths, names and model text are printed verbatim; styling goes through Text
out = Console(file=_Shown.stream("stdout"), markup=False, highlight=False)
if not out.is_terminal:  # piped tables keep whole cells
    out = Console(file=_Shown.stream("stdout"), markup=False, highlight=False, width=200)
err = Console(
    file=_Shown.stream("stderr"),
    markup=False,
    highlight=False,
    width=None if sys.stderr.isatty() else 200,
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
