"""Percentile bootstrap intervals for scores that have no closed-form standard error (corpus
BLEU, F1), vectorised: a statistic is computed from item *weights* (how often each item was
drawn), so a corpus metric whose value is a function of summed per-item statistics resamples by
matrix products instead of re-reading text.

Clustered items (questions sharing a passage or subject) are resampled by cluster: drawing
items independently would understate the variance when items of a cluster move together.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import numpy as np

from gnomon.stats import Score

__all__ = ["DEFAULT_BOOT", "DEFAULT_SEED", "bootstrap_score", "weighted_sums"]

DEFAULT_BOOT = 1000
DEFAULT_SEED = 20240611
# Rows of weights built at once: bounds memory at about this many floats whatever n is.
_CHUNK_CELLS = 1 << 20

# weights (rows, n) -> one value per row
Statistic = Callable[[np.ndarray], np.ndarray]


def _codes(clusters: Sequence[Hashable], n: int) -> tuple[np.ndarray, int]:
    if len(clusters) != n:
        raise ValueError(f"clusters has {len(clusters)} entries but there are {n} items")
    index: dict[Hashable, int] = {}
    codes = np.fromiter((index.setdefault(c, len(index)) for c in clusters), np.intp, count=n)
    return codes, len(index)


def bootstrap_score(
    statistic: Statistic,
    n: int,
    clusters: Sequence[Hashable] | None = None,
    *,
    confidence: float = 0.95,
    n_boot: int = DEFAULT_BOOT,
    seed: int = DEFAULT_SEED,
) -> Score:
    """The statistic on all items, with a percentile interval and the replicates' standard
    deviation as its standard error. Deterministic for a seed. With fewer than two resampling
    units (items, or clusters when given) there is no interval (NaN)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_boot < 2:
        raise ValueError(f"n_boot must be at least 2, got {n_boot}")
    nan = float("nan")
    clustered = clusters is not None
    codes, units = _codes(clusters, n) if clusters is not None else (None, n)
    method = "bootstrap-clustered" if clustered else "bootstrap"
    n_clusters = units if clustered else None
    if n == 0:
        return Score(nan, nan, nan, nan, 0, n_clusters, "none")
    value = float(statistic(np.ones((1, n)))[0])
    if units < 2:
        return Score(value, nan, nan, nan, n, n_clusters, method)
    rng = np.random.default_rng(seed)
    rows = max(1, _CHUNK_CELLS // max(n, units))
    replicates = np.empty(n_boot)
    for start in range(0, n_boot, rows):
        k = min(rows, n_boot - start)
        draws = rng.integers(0, units, size=(k, units))
        offsets = (np.arange(k) * units)[:, None]
        counts = np.bincount((draws + offsets).ravel(), minlength=k * units).reshape(k, units)
        weights = counts if codes is None else counts[:, codes]
        replicates[start : start + k] = statistic(weights.astype(float))
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(replicates, [alpha, 1.0 - alpha])
    stderr = float(np.std(replicates, ddof=1))
    return Score(value, stderr, float(low), float(high), n, n_clusters, method)


def weighted_sums(item_stats: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """weights -> summed per-item statistics, one row per weight row."""
    stats = np.asarray(item_stats, dtype=float)
    return lambda weights: weights @ stats
