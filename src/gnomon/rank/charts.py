"""Chart specifications for plotly.js (vendored from the `plotly` package): plain data, drawn by
the library in the browser, so the static site and the server draw the same charts."""

from __future__ import annotations

import html
import math
from typing import Any

from gnomon.rank.scale import SHARE, Scale

_FONT = {"family": "system-ui, sans-serif", "size": 13}
_COLOR = "#3b6fb6"
_MUTED = "#b8c2d1"


def _text(labels: list[str]) -> list[str]:
    """plotly.js reads a subset of HTML in labels (<b>, <a href>, <br>); a model's name is shown
    as the text it is, so its markup is escaped into entities plotly prints literally."""
    return [html.escape(label, quote=False) for label in labels]


def _finite(x: float) -> float | None:
    return None if x is None or math.isnan(x) else x


def bars_with_errors(
    labels: list[str],
    values: list[float],
    lows: list[float],
    highs: list[float],
    title: str,
    muted: list[bool] | None = None,
    scale: Scale = SHARE,
) -> dict[str, Any]:
    """Horizontal bars (labels stay readable however long) with asymmetric 95% error bars.
    `muted` greys the bars of scores that are not comparable (a model lacking benchmarks);
    `scale` is the values' unit (a share is drawn in %, BLEU or a perplexity as it is)."""
    k = scale.factor
    pct = [None if _finite(v) is None else k * v for v in values]
    plus = [
        None if _finite(h) is None or _finite(v) is None else k * (h - v)
        for v, h in zip(values, highs, strict=True)
    ]
    minus = [
        None if _finite(lo) is None or _finite(v) is None else k * (v - lo)
        for v, lo in zip(values, lows, strict=True)
    ]
    axis = "score (%)" if scale.share else f"{scale.metric} ({scale.describe}),"
    height = max(220, 60 + 28 * len(labels))
    return {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "y": _text(labels),
                "x": pct,
                "marker": {"color": [_MUTED if m else _COLOR for m in muted] if muted else _COLOR},
                "error_x": {
                    "type": "data",
                    "symmetric": False,
                    "array": plus,
                    "arrayminus": minus,
                    "color": "#222",
                    "thickness": 1.5,
                },
                "hovertemplate": "%{y}: %{x:.1f}<extra></extra>",
            }
        ],
        "layout": {
            "title": {"text": html.escape(title, quote=False)},
            "font": _FONT,
            "height": height,
            "margin": {"l": 10, "r": 20, "t": 40, "b": 40},
            "xaxis": {
                "title": {"text": html.escape(f"{axis} with 95% interval", quote=False)},
                "rangemode": "tozero",
            },
            "yaxis": {"autorange": "reversed", "automargin": True},
        },
    }


def radar(labels: list[str], values: list[float], title: str) -> dict[str, Any]:
    pct = [100 * v for v in values]
    return {
        "data": [
            {
                "type": "scatterpolar",
                "r": [*pct, pct[0]],
                "theta": _text([*labels, labels[0]]),
                "fill": "toself",
                "line": {"color": _COLOR},
                "hovertemplate": "%{theta}: %{r:.1f}<extra></extra>",
            }
        ],
        "layout": {
            "title": {"text": html.escape(title, quote=False)},
            "font": _FONT,
            "height": 360,
            "margin": {"l": 60, "r": 60, "t": 50, "b": 30},
            "polar": {"radialaxis": {"range": [0, 100]}},
            "showlegend": False,
        },
    }
