"""Made-up rows in each dataset's real schema: field names, types and quirks of the published
files, with text a tiny model can read. The agreement tests, `gnomon demo` and `hub show` (offline)
use them, so that loaders and templates never need a test-only branch.

A module in this package registers a maker per benchmark id with `@rows(...)`; every module is
imported on first lookup, so adding a family means adding a file, nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

RowDict = dict[str, Any]
RowMaker = Callable[[str, int, int], list[RowDict]]  # (split, n, seed) -> rows


@dataclass(frozen=True)
class Maker:
    make: RowMaker
    sizes: dict[str, int]  # split -> default row count (a toy version of the real split)


_MAKERS: dict[str, Maker] = {}
_loaded = False


def rows(*bench_ids: str, sizes: dict[str, int]) -> Callable[[RowMaker], RowMaker]:
    """Register `make(split, n, seed)` as the row maker of these benchmark ids."""

    def register(make: RowMaker) -> RowMaker:
        for bench in bench_ids:
            if bench in _MAKERS:
                raise RuntimeError(f"two row makers for {bench!r}")
            _MAKERS[bench] = Maker(make, dict(sizes))
        return make

    return register


def _load_all() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in pkgutil.iter_modules(__path__):
            if not module.name.startswith("_"):
                importlib.import_module(f"{__name__}.{module.name}")


def maker(bench: str) -> Maker | None:
    _load_all()
    return _MAKERS.get(bench)


def known() -> list[str]:
    _load_all()
    return sorted(_MAKERS)


def make_rows(bench: str, split: str, n: int | None = None, seed: int = 0) -> list[RowDict]:
    """`n` rows of `split` (the maker's default count if None); unknown pairs raise KeyError."""
    found = maker(bench)
    if found is None or split not in found.sizes:
        raise KeyError(f"no made-up rows for {bench}/{split}")
    return found.make(split, found.sizes[split] if n is None else n, seed)
