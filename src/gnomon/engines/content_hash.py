"""The sha256 of a large file, computed once per version of the file and then remembered.

A model file is named by its content so that results follow the bytes, not the path: a copy or a
renamed file keeps its results, a changed file gets new ones. Hashing every byte is the only
identity that cannot be fooled (a sampled hash misses a fine-tune that moves a few weights), but
reading gigabytes on every run would be slow, so the digest is cached, keyed by everything the
kernel reports about the file's state: device, inode, size, mtime and ctime (nanoseconds).

ctime is the guard that mtime alone is not: every write, truncation, `utime` or rename sets it to
"now", and no user call can set it back, so a file rewritten in place with its old size and a
restored mtime (`cp -p`, `touch -r`, rsync) still misses the cache and is hashed again. A miss
only costs time; a hit is only possible for an untouched file. The digest is cached only when the
file's state is the same after hashing as before, so a file written while it is read is never
remembered under a digest of half-old, half-new bytes, and only when its last change is a few
seconds old: timestamps tick coarsely, so a second write within the same tick as the first could
otherwise leave the state unchanged (git's "racily clean" index entries, the same guard).

The cache is one small JSON file, replaced atomically; if it is missing, unreadable, corrupt or
unwritable, gnomon just hashes again. Its digest is also the one the Hugging Face hub lists for
a file stored with Git LFS, so a key can be checked against the file's hub page.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

_MAX_ENTRIES = 512  # oldest dropped first; each entry is ~150 bytes
RACY_NS = 2_000_000_000  # a file changed this recently is hashed but not remembered


def cache_file() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "gnomon" / "file-sha256.json"


def _state(stat: os.stat_result) -> str:
    return f"{stat.st_dev}:{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ctime_ns}"


def _load(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def _save(path: Path, entries: dict[str, str]) -> None:
    """Atomic replace; two processes racing lose at most one entry, which is hashed again."""
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".file-sha256-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(entries, out)
            os.replace(tmp, path)
        except OSError:
            Path(tmp).unlink(missing_ok=True)


def file_sha256(path: Path) -> str:
    """Hex sha256 of the file's bytes; from the cache when the file is untouched since."""
    cache = cache_file()
    with open(path, "rb") as handle:  # stat through the open file: the inode that is read
        stat = os.fstat(handle.fileno())
        before = _state(stat)
        entries = _load(cache)
        if before in entries:
            return entries[before]
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
        unchanged = _state(os.fstat(handle.fileno())) == before
    settled = time.time_ns() - stat.st_ctime_ns > RACY_NS
    if unchanged and settled:
        entries = _load(cache)  # another process may have added entries meanwhile
        entries.pop(before, None)
        entries[before] = digest
        _save(cache, dict(list(entries.items())[-_MAX_ENTRIES:]))
    return digest
