"""How far two raters agree on the same items: agreement rate, Cohen's kappa, Spearman's and
Pearson's correlation, with seeded percentile-bootstrap intervals.

Written with numpy alone (scipy is not a dependency of gnomon). The bootstrap resamples whole
items: where an item holds several paired labels (a pairwise judgment asked in both orders),
its labels stay together, since the two orders of one question are not independent.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

BOOTSTRAP_REPLICATES = 1000
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class Figure:
    """One agreement figure: its value and a 95% interval (nan where undefined)."""

    value: float
    ci_low: float
    ci_high: float
    method: str

    def as_dict(self) -> dict[str, object]:
        def clean(x: float) -> float | None:
            return None if math.isnan(x) else x

        return {
            "value": clean(self.value),
            "ci95": [clean(self.ci_low), clean(self.ci_high)],
            "method": self.method,
        }


def agreement_rate(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(a == b)) if len(a) else math.nan


def cohen_kappa(a: np.ndarray, b: np.ndarray) -> float:
    """(observed - chance agreement) / (1 - chance), chance from each rater's own label shares.
    Undefined (nan) when chance agreement is 1: both raters gave one and the same label."""
    if not len(a):
        return math.nan
    labels = np.union1d(a, b)
    pa = np.array([np.mean(a == x) for x in labels])
    pb = np.array([np.mean(b == x) for x in labels])
    chance = float(np.dot(pa, pb))
    if chance >= 1.0 - 1e-12:
        return math.nan
    return (float(np.mean(a == b)) - chance) / (1.0 - chance)


def ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties given their mean rank (as Spearman's coefficient needs)."""
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    ends = np.r_[starts[1:], len(x)]
    mean_rank = (starts + ends + 1) / 2.0  # ranks start..end-1, 1-based: mean of them
    out = np.empty(len(x))
    out[order] = np.repeat(mean_rank, ends - starts)
    return out


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2:
        return math.nan
    da, db = a - a.mean(), b - b.mean()
    denom = math.sqrt(float(np.dot(da, da)) * float(np.dot(db, db)))
    return float(np.dot(da, db)) / denom if denom > 0 else math.nan


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's correlation of the ranks; nan when either side is constant."""
    return pearson(ranks(a), ranks(b)) if len(a) >= 2 else math.nan


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a - b))) if len(a) else math.nan


Statistic = Callable[[np.ndarray, np.ndarray], float]


def with_interval(
    statistic: Statistic,
    a: Sequence[Sequence[float]] | np.ndarray,
    b: Sequence[Sequence[float]] | np.ndarray,
    *,
    replicates: int = BOOTSTRAP_REPLICATES,
    seed: int = BOOTSTRAP_SEED,
) -> Figure:
    """`statistic` over all labels, with a percentile-bootstrap 95% interval that resamples
    items. `a` and `b` hold one row of labels per item (equal lengths within an item)."""
    items_a = [np.asarray(x, dtype=float) for x in a]
    items_b = [np.asarray(x, dtype=float) for x in b]
    flat_a = np.concatenate(items_a) if items_a else np.array([])
    flat_b = np.concatenate(items_b) if items_b else np.array([])
    value = statistic(flat_a, flat_b)
    n = len(items_a)
    if n < 2 or math.isnan(value):
        return Figure(value, math.nan, math.nan, "bootstrap")
    width = len(items_a[0])
    if all(len(x) == width for x in items_a):  # the usual case: a matrix, resampled by rows
        ma, mb = np.vstack(items_a), np.vstack(items_b)
        draw = lambda idx: (ma[idx].ravel(), mb[idx].ravel())  # noqa: E731
    else:
        draw = lambda idx: (  # noqa: E731
            np.concatenate([items_a[i] for i in idx]),
            np.concatenate([items_b[i] for i in idx]),
        )
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(replicates):
        value_r = statistic(*draw(rng.integers(0, n, n)))
        if not math.isnan(value_r):
            values.append(value_r)
    if len(values) < replicates / 2:  # mostly undefined resamples: no honest interval
        return Figure(value, math.nan, math.nan, "bootstrap")
    low, high = np.percentile(values, [2.5, 97.5])
    return Figure(value, float(low), float(high), "bootstrap")
