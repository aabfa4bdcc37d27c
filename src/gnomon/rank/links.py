"""Where each page lives: query URLs on the server, relative `.html` files in the static site.

Templates only ever ask a `Links` for a URL, so one set of templates serves both.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode


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
        return f"{self._root}bench/{quote(bench)}" + (".html" if self.static_site else "")

    def compare(self, a: str, b: str, bench: str | None = None, page: int = 1) -> str:
        if self.static_site:
            return f"{self._root}compare/{quote(a)}--{quote(b)}.html"
        params = {"a": a, "b": b} | ({"bench": bench} if bench else {})
        params |= {"page": str(page)} if page > 1 else {}
        return "/compare?" + urlencode(params)

    def compare_pattern(self) -> str:
        """For the two-model picker: `{a}` and `{b}` are filled in by the page's script."""
        return (
            f"{self._root}compare/{{a}}--{{b}}.html" if self.static_site else "/compare?a={a}&b={b}"
        )

    def run(self, run_id: str) -> str | None:
        """A run's sample browser; the static site has pages only for runs on the board."""
        return None if self.static_site else f"/run/{quote(run_id)}"

    def samples(
        self, run_id: str, bench: str, filter: str = "all", page: int = 1, query: str = ""
    ) -> str | None:
        if self.static_site:
            if self.sample_pages is not None and (run_id, bench) not in self.sample_pages:
                return None
            return f"{self._root}run/{quote(run_id)}/{quote(bench)}/{filter}-{page}.html"
        params = {"filter": filter} | ({"page": str(page)} if page > 1 else {})
        params |= {"q": query} if query else {}
        return f"/run/{quote(run_id)}/{quote(bench)}?" + urlencode(params)
