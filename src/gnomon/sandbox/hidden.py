"""Paths no sandboxed program may read: gnomon's stores, wherever the user put them.

Stores register themselves when opened (and the default location when it is resolved); every
sandbox started afterwards covers them in its own mount namespace. A store's folder is covered
whole when that is safe (it holds none of what the sandbox needs, such as the interpreter), so
journal files made later are covered too; otherwise each of the store's files is.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_STORES: set[Path] = set()
_SUFFIXES = ("", "-wal", "-shm", "-journal")


def hide_from_sandboxes(path: Path | str) -> None:
    _STORES.add(Path(os.path.abspath(path)))


def hidden_mounts(needed: list[Path]) -> list[tuple[str, str]]:
    """(path, "dir" | "file") to cover, for the stores registered so far."""
    keep = set()
    for path in [*needed, Path(sys.prefix), Path(sys.base_prefix)]:
        for item in (Path(os.path.abspath(path)), Path(os.path.realpath(path))):
            keep.add(item)
            keep.add(item.parent.parent)  # an interpreter's prefix (…/bin/python -> …)
    covered: list[tuple[str, str]] = []
    for store in sorted(_STORES):
        folder = Path(os.path.realpath(store.parent))
        safe = folder != Path(folder.anchor) and not any(
            item == folder or folder in item.parents for item in keep
        )
        if safe and folder.is_dir():
            covered.append((str(folder), "dir"))
            continue
        for suffix in _SUFFIXES:
            file = Path(os.path.realpath(f"{store}{suffix}"))
            if file.is_file():
                covered.append((str(file), "file"))
    folders = [Path(path) for path, kind in covered if kind == "dir"]
    return sorted(
        {
            (path, kind)
            for path, kind in covered
            if not any(folder in Path(path).parents for folder in folders)
        }
    )
