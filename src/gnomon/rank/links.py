"""Where each page lives: query URLs on the server, relative `.html` files in the static site.

Templates only ever ask a `Links` for a URL, so one set of templates serves both.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from gnomon.text import encode

_KEPT = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")
_RESERVED = re.compile(r"(con|prn|aux|nul|com\d|lpt\d)(\..*)?")  # device names on Windows
_LONGEST = 96  # bytes; a file name may hold 255, and pages add `.html` or `all-1.html`
_ESCAPED = re.compile(r"~([0-9a-f]{2})")


def name_of(ident: str) -> str:
    """The path segment for a benchmark or run id, in the export's file names and the server's
    URLs alike. Any str maps to a distinct, non-empty name of `[a-z0-9_.~-]` that is never `.`
    or `..`: every other character (upper case too, so names differ on case-insensitive
    filesystems) is written as `~xx` per UTF-8 byte. An id too long for a file name becomes a
    readable prefix, `~~`, and the SHA-256 of the id (`~~` appears in no other name)."""
    parts = []
    for i, char in enumerate(ident):
        keep = char in _KEPT or (char == "." and 0 < i < len(ident) - 1)
        parts.append(char if keep else "".join(f"~{b:02x}" for b in encode(char)))
    name = "".join(parts) or "~"
    if _RESERVED.fullmatch(name):
        name = f"~{ord(name[0]):02x}{name[1:]}"
    if len(name) > _LONGEST:
        head = name[:40].rsplit("~", 1)[0] if "~" in name[37:40] else name[:40]
        name = f"{head}~~{hashlib.sha256(encode(ident)).hexdigest()}"
    return name


def ident_of(name: str, candidates: Iterable[str] = ()) -> str | None:
    """The id whose `name_of` is `name`: decoded, or for a hashed long name looked up among
    `candidates`. None when no id has this name."""
    if "~~" not in name:
        try:
            raw = _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), name).encode("latin-1")
            ident = raw.decode("utf-8", "surrogatepass")
        except UnicodeError:
            return None
        ident = "" if name == "~" else ident
        return ident if name_of(ident) == name else None
    return next((c for c in candidates if name_of(c) == name), None)


@dataclass(frozen=True)
class Links:
    static_site: bool = False
    depth: int = 0  # static pages: how many folders below the site root this page sits
    # static site: which (run, benchmark) sample pages were written; None means all exist
    sample_pages: frozenset[tuple[str, str]] | None = None

    def at(self, depth: int) -> Links:
        return Links(self.static_site, depth, self.sample_pages)

    @property
    def _root(self) -> str:
        return "../" * self.depth if self.static_site else "/"

    def home(self) -> str:
        return self._root + "index.html" if self.static_site else "/"

    def asset(self, name: str) -> str:
        return f"{self._root}static/{name}"

    def model(self, slug: str) -> str:
        return f"{self._root}model/{quote(slug)}" + (".html" if self.static_site else "")

    def bench(self, bench: str) -> str:
        return f"{self._root}bench/{name_of(bench)}" + (".html" if self.static_site else "")

    def compare(self, a: str, b: str, bench: str | None = None, page: int = 1) -> str:
        if self.static_site:
            return f"{self._root}compare/{quote(a)}--{quote(b)}.html"
        params = {"a": a, "b": b} | ({"bench": name_of(bench)} if bench else {})
        params |= {"page": str(page)} if page > 1 else {}
        return "/compare?" + urlencode(params)

    def compare_pattern(self) -> str:
        """For the two-model picker: `{a}` and `{b}` are filled in by the page's script."""
        return (
            f"{self._root}compare/{{a}}--{{b}}.html" if self.static_site else "/compare?a={a}&b={b}"
        )

    def run(self, run_id: str) -> str | None:
        """A run's sample browser; the static site has pages only for runs on the board."""
        return None if self.static_site else f"/run/{name_of(run_id)}"

    def samples(
        self, run_id: str, bench: str, filter: str = "all", page: int = 1, query: str = ""
    ) -> str | None:
        if self.static_site:
            if self.sample_pages is not None and (run_id, bench) not in self.sample_pages:
                return None
            return f"{self._root}run/{name_of(run_id)}/{name_of(bench)}/{filter}-{page}.html"
        params = {"filter": filter} | ({"page": str(page)} if page > 1 else {})
        params |= {"q": query} if query else {}
        return f"/run/{name_of(run_id)}/{name_of(bench)}?" + urlencode(params)
