"""Standard errors and confidence intervals for benchmark scores.

Reported scores must stay honest when n is small (Wilson / Student-t rather than a normal
approximation) and when items are not independent (questions sharing a subject), so every
number here is either exact or cluster-robust. scipy is deliberately not a dependency, so the
Student-t distribution is computed from a regularized incomplete beta function written here.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from statistics import NormalDist

import numpy as np

__all__ = ["PairedResult", "Score", "clustered_stderr", "paired_difference", "summarize"]
__all__ += ["Moments", "summarize_moments", "t_cdf", "t_quantile", "wilson_interval"]

_NAN = float("nan")
_TINY = 1e-300


@dataclass(frozen=True)
class Score:
    """A mean with its uncertainty; frozen so a reported number cannot drift from its CI."""

    value: float
    stderr: float
    ci_low: float
    ci_high: float
    n: int
    n_clusters: int | None
    method: str

    def as_dict(self) -> dict[str, float | int | str | None]:
        """Plain dict so reports and JSON writers need not know about this class."""
        return asdict(self)


@dataclass(frozen=True)
class PairedResult:
    """Difference of two models on the same items; pairing removes shared item difficulty."""

    mean_diff: float
    stderr: float
    ci_low: float
    ci_high: float
    n: int
    p_value: float
    method: str


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def _betainc(a: float, b: float, x: float, y: float) -> float:
    """Regularized incomplete beta I_x(a, b) with y = 1 - x passed in to avoid cancellation."""
    if x <= 0.0:
        return 0.0
    if y <= 0.0:
        return 1.0
    if x > (a + 1.0) / (a + b + 2.0):  # the continued fraction converges fast only below this
        return 1.0 - _betainc(b, a, y, x)
    log_front = a * math.log(x) + b * math.log(y) - (math.lgamma(a) + math.lgamma(b))
    front = math.exp(log_front + math.lgamma(a + b)) / a
    # Modified Lentz evaluation of 1 + d1/(1 + d2/(1 + ...)).
    f, c, d = 1.0, 1.0, 0.0
    for j in range(1, 20000):
        m = j // 2
        if j % 2:
            num = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        else:
            num = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        d = 1.0 + num * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + num / c
        c = c if abs(c) > _TINY else _TINY
        delta = c * d
        f *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return front / f


def _t_two_sided(t: float, df: float) -> float:
    """P(|T| >= |t|): computed directly so small p-values keep their relative precision."""
    if math.isnan(t):
        return _NAN
    if math.isinf(t):
        return 0.0
    t2 = t * t
    return _betainc(df / 2.0, 0.5, df / (df + t2), t2 / (df + t2))


def t_cdf(t: float, df: float) -> float:
    """Student-t CDF, needed for p-values without scipy."""
    tail = 0.5 * _t_two_sided(t, df)
    return 1.0 - tail if t >= 0 else tail


def _t_pdf(x: float, df: float) -> float:
    log_norm = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return math.exp(log_norm - (df + 1) / 2 * math.log1p(x * x / df))


@lru_cache(maxsize=4096)  # a leaderboard asks for the same few (p, df) pairs thousands of times
def t_quantile(p: float, df: float) -> float:
    """Student-t quantile; small-n intervals need it instead of the normal's 1.96."""
    if not 0.0 < p < 1.0 or not df > 0:
        raise ValueError(f"need 0 < p < 1 and df > 0, got p={p}, df={df}")
    if p == 0.5:
        return 0.0
    sign, tail = (1.0, 1.0 - p) if p > 0.5 else (-1.0, p)
    z = NormalDist().inv_cdf(1.0 - tail)
    # Cornish-Fisher start, then safeguarded Newton on the upper tail 0.5 * I(x) = tail.
    x = z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
    lo, hi = 0.0, max(2.0 * x, 1.0)
    while 0.5 * _t_two_sided(hi, df) > tail:
        lo, hi = hi, hi * 2.0
    x = min(max(x, lo), hi)
    for _ in range(200):
        err = 0.5 * _t_two_sided(x, df) - tail  # decreasing in x
        if err > 0:
            lo = x
        else:
            hi = x
        step = err / _t_pdf(x, df)
        new = x + step
        if not lo < new < hi:
            new = 0.5 * (lo + hi)
        if abs(new - x) <= 1e-14 * max(1.0, x):
            x = new
            break
        x = new
    return sign * x


def wilson_interval(successes: float, n: float, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval: unlike the Wald interval it never collapses at p = 0 or 1."""
    _check_confidence(confidence)
    if n <= 0:
        return (_NAN, _NAN)
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, n], got {successes} of {n}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    p = successes / n
    z2n = z * z / n
    center = (p + z2n / 2.0) / (1.0 + z2n)
    half = z / (1.0 + z2n) * math.sqrt(p * (1.0 - p) / n + z2n / (4.0 * n))
    # Pin the ends exactly: rounding would otherwise report 2.8e-17 instead of 0 at p = 0.
    low = 0.0 if successes == 0 else max(0.0, center - half)
    high = 1.0 if successes == n else min(1.0, center + half)
    return (low, high)


def _cluster_codes(clusters: Sequence[Hashable], n: int) -> tuple[np.ndarray, int]:
    if len(clusters) != n:
        raise ValueError(f"clusters has {len(clusters)} entries but values has {n}")
    index: dict[Hashable, int] = {}
    codes = np.fromiter((index.setdefault(c, len(index)) for c in clusters), np.intp, count=n)
    return codes, len(index)


def _crse(x: np.ndarray, codes: np.ndarray, n_clusters: int) -> float:
    sums = np.bincount(codes, weights=x - x.mean(), minlength=n_clusters)
    return math.sqrt(n_clusters / (n_clusters - 1) * float(sums @ sums)) / x.size


def _as_array(values: Sequence[float]) -> np.ndarray:
    x = np.asarray(values, dtype=float).reshape(-1)
    if not np.all(np.isfinite(x)):
        raise ValueError("values must be finite; drop or score failed samples explicitly")
    return x


def clustered_stderr(values: Sequence[float], clusters: Sequence[Hashable]) -> float:
    """CR1 cluster-robust SE of the mean: items sharing a subject are not independent draws."""
    x = _as_array(values)
    codes, n_clusters = _cluster_codes(clusters, x.size)
    return _crse(x, codes, n_clusters) if n_clusters >= 2 else _NAN


def summarize(
    values: Sequence[float],
    clusters: Sequence[Hashable] | None = None,
    confidence: float = 0.95,
) -> Score:
    """Mean with an interval that is valid for small n and for clustered items."""
    _check_confidence(confidence)
    x = _as_array(values)
    n = int(x.size)
    binary = bool(np.all((x == 0.0) | (x == 1.0)))
    if clusters is None:
        moments = [Moments(n, float(x.sum()), float(x @ x))]
        return summarize_moments(moments, binary, False, confidence)
    codes, n_clusters = _cluster_codes(clusters, n)
    totals = np.bincount(codes, weights=x, minlength=n_clusters)
    squares = np.bincount(codes, weights=x * x, minlength=n_clusters)
    counts = np.bincount(codes, minlength=n_clusters)
    groups = [
        Moments(int(c), float(t), float(q)) for c, t, q in zip(counts, totals, squares, strict=True)
    ]
    return summarize_moments(groups, binary, True, confidence)


@dataclass(frozen=True)
class Moments:
    """Count, sum and sum of squares of one group's values: enough to rebuild every interval
    `summarize` gives, so scores can be aggregated in SQL instead of loading every sample."""

    n: int
    total: float
    total_sq: float


def summarize_moments(
    groups: Sequence[Moments], binary: bool, clustered: bool, confidence: float = 0.95
) -> Score:
    """`summarize` from per-cluster moments. `binary` says every value was 0 or 1; `clustered`
    says the groups are clusters (otherwise they are pooled). Equal to `summarize` on the
    underlying values up to rounding."""
    _check_confidence(confidence)
    groups = [g for g in groups if g.n > 0]
    n = sum(g.n for g in groups)
    n_clusters = len(groups) if clustered else None
    if n == 0:
        return Score(_NAN, _NAN, _NAN, _NAN, 0, n_clusters, "none")
    mean = sum(g.total for g in groups) / n
    use_clusters = clustered and len(groups) >= 2
    se = _NAN
    if use_clusters:
        resid = [g.total - g.n * mean for g in groups]
        g_count = len(groups)
        se = math.sqrt(g_count / (g_count - 1) * sum(r * r for r in resid)) / n
    if binary:
        if use_clusters:
            # Korn-Graubard: the sample size the clustered variance implies, shrunk further by
            # the t ratio for few clusters, and never above n (a design effect below 1 would
            # make the interval narrower than independent sampling; we do not claim that).
            n_eff = float(n)
            if 0 < mean < 1 and se > 0:
                q = (1 + confidence) / 2
                df_ratio = (t_quantile(q, n - 1) / t_quantile(q, g_count - 1)) ** 2
                n_eff = min(float(n), mean * (1 - mean) / se**2 * df_ratio)
            lo, hi = wilson_interval(mean * n_eff, n_eff, confidence)
            return Score(mean, se, lo, hi, n, n_clusters, "wilson-clustered")
        lo, hi = wilson_interval(mean * n, n, confidence)
        return Score(mean, math.sqrt(mean * (1.0 - mean) / n), lo, hi, n, n_clusters, "wilson")
    if use_clusters:
        df, method = g_count - 1, "t-clustered"
    elif n >= 2:
        total_sq = sum(g.total_sq for g in groups)
        var = max(0.0, (total_sq - n * mean * mean) / (n - 1))
        se, df, method = math.sqrt(var / n), n - 1, "t"
    else:
        return Score(mean, _NAN, _NAN, _NAN, n, n_clusters, "t")
    half = t_quantile(0.5 + confidence / 2.0, df) * se
    return Score(mean, se, mean - half, mean + half, n, n_clusters, method)


def paired_difference(
    a: Sequence[float],
    b: Sequence[float],
    clusters: Sequence[Hashable] | None = None,
    confidence: float = 0.95,
) -> PairedResult:
    """Paired t-test of a - b: far more powerful than comparing two independent CIs."""
    _check_confidence(confidence)
    xa, xb = _as_array(a), _as_array(b)
    if xa.shape != xb.shape:
        raise ValueError(f"a and b must have equal length, got {xa.size} and {xb.size}")
    d = xa - xb
    n = int(d.size)
    codes, n_clusters = (None, None) if clusters is None else _cluster_codes(clusters, n)
    if n == 0:
        return PairedResult(_NAN, _NAN, _NAN, _NAN, 0, _NAN, "none")
    mean = float(d.mean())
    clustered = n_clusters is not None and n_clusters >= 2
    method = "paired-t-clustered" if clustered else "paired-t"
    if not np.any(d):
        return PairedResult(0.0, 0.0, 0.0, 0.0, n, 1.0, method)
    if codes is not None and n_clusters is not None and clustered:
        se, df = _crse(d, codes, n_clusters), n_clusters - 1
    elif n >= 2:
        se, df = float(d.std(ddof=1)) / math.sqrt(n), n - 1
    else:
        return PairedResult(mean, _NAN, _NAN, _NAN, n, _NAN, method)
    if se == 0.0:  # every item moved by the same nonzero amount: no doubt about the sign
        return PairedResult(mean, 0.0, mean, mean, n, 0.0, method)
    half = t_quantile(0.5 + confidence / 2.0, df) * se
    p_value = min(1.0, _t_two_sided(mean / se, df))
    return PairedResult(mean, se, mean - half, mean + half, n, p_value, method)
