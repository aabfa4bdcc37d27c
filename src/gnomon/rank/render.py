"""One Jinja2 environment for every page, with autoescaping on: prompts, outputs and model names
are untrusted text and reach the page only as escaped text."""

from __future__ import annotations

import math
import time
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from gnomon import __version__
from gnomon.rank.links import Links
from gnomon.rank.pages import Page
from gnomon.rank.scale import Scale, scale_of
from gnomon.text import shown

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


def pct(x: float | None) -> str:
    return "?" if x is None or math.isnan(x) else f"{100 * x:.1f}"


def signed_pct(x: float | None) -> str:
    return "?" if x is None or math.isnan(x) else f"{100 * x:+.1f}"


def num(x: float | None, scale: Scale | None = None) -> str:
    """A value in its metric's unit (a share in %, BLEU in points, a perplexity as it is)."""
    return pct(x) if scale is None else scale.format(x)


def signed_num(x: float | None, scale: Scale | None = None) -> str:
    return signed_pct(x) if scale is None else scale.format(x, signed=True)


def pvalue(p: float | None) -> str:
    if p is None or math.isnan(p):
        return "?"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def date(ts: float | None) -> str:
    return "—" if ts is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def duration(seconds: float | None) -> str:
    if not seconds:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"], default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(pct=pct, signed_pct=signed_pct, pvalue=pvalue, date=date, duration=duration)
    env.filters.update(num=num, signed_num=signed_num)
    env.globals["scale_of"] = scale_of
    return env


def render(page: Page, links: Links, store_name: str, **extra: Any) -> str:
    context = {
        "links": links,
        "store_name": store_name,
        "version": __version__,
        "generated": None,
        "compare_pairs": None,
        "needs_charts": any(k.endswith("chart") and v for k, v in page.context.items()),
        **page.context,
        **extra,
    }
    # a lone surrogate (kept exactly in the store) cannot be sent as UTF-8: shown as U+FFFD
    return shown(environment().get_template(page.template).render(context))


def render_error(status: int, message: str, links: Links, store_name: str) -> str:
    heading = {400: "Bad request", 404: "Not found", 500: "The store could not be read"}.get(
        status, "Error"
    )
    page = Page("error.html", {"title": heading, "heading": heading, "message": message})
    return render(page, links, store_name)
