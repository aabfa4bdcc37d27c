"""What a leaderboard number is on, so that each is shown in its own unit and only comparable ones
are averaged: a share (0..1, higher is better) is shown as a percentage and goes into the
dimension and overall means; BLEU (0..100 points), perplexities and bits per byte (lower is
better, unbounded) are shown as they are and left out of every mean."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from gnomon.scoring.metrics import Unit, lookup

_WORDS: dict[str, str] = {
    "share": "%",
    "points": "points, 0–100",
    "perplexity": "perplexity",
    "bits": "bits per byte",
    "rating": "judge's rating",
}


@dataclass(frozen=True)
class Scale:
    """A metric's unit and direction, as the registry (`SampleMetric.unit`) gives them."""

    metric: str
    unit: Unit = "share"
    higher_is_better: bool = True
    corpus: bool = False  # no per-sample value: computed over all samples, not paired

    @property
    def share(self) -> bool:
        """A 0..1 value where higher is better: shown as %, averaged into means."""
        return self.unit == "share" and self.higher_is_better

    @property
    def arrow(self) -> str:
        return "" if self.higher_is_better else "↓"

    @property
    def factor(self) -> float:
        """What a value is multiplied by to be shown (a share in %)."""
        return 100.0 if self.unit == "share" else 1.0

    @property
    def describe(self) -> str:
        """The unit in words, e.g. "points, 0–100" or "lower is better" (a perplexity)."""
        words = [_WORDS[self.unit]] if self.unit != "perplexity" else []
        if not self.higher_is_better:
            words.append("lower is better")
        return ", ".join(words)

    @property
    def note(self) -> str:
        """How to read the number, e.g. "bleu (points, 0–100); not averaged"; a share says
        nothing more than its metric's name."""
        if self.share:
            return self.metric
        return f"{self.metric} ({self.describe}); not averaged"

    def format(self, x: float | None, signed: bool = False) -> str:
        if x is None or math.isnan(x):
            return "?"
        x *= self.factor
        sign = "+" if signed else ""
        if self.unit in ("share", "points"):
            return f"{x:{sign}.1f}"
        if self.unit == "bits":
            return f"{x:{sign}.3f}"
        digits = 2 if abs(x) < 100 else 1 if abs(x) < 10_000 else 0
        return f"{x:{sign},.{digits}f}"


SHARE = Scale("acc")


def scale_of(metric: str, spec: dict[str, Any] | None = None) -> Scale:
    """The scale of `metric` as a spec reports it: a judge's rating is a share when the spec
    normalises it to 0..1. A name the registry does not know (an old store's) counts as a
    share, as every leaderboard number did before units were recorded."""
    found = lookup(metric)
    if found is None:
        return Scale(metric)
    unit = found.unit
    judge = (spec or {}).get("judge") or {}
    if unit == "rating" and isinstance(judge, dict) and judge.get("normalize"):
        unit = "share"
    return Scale(metric, unit, found.higher_is_better, found.kind == "corpus")
