"""Tests for gnomon.stats: reported uncertainties must match reference values, not just run."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gnomon.stats import (
    PairedResult,
    Score,
    clustered_stderr,
    paired_difference,
    summarize,
    t_cdf,
    t_quantile,
    wilson_interval,
)


@pytest.mark.parametrize(
    ("successes", "n", "expected"),
    [(0, 10, (0.0, 0.2775)), (5, 10, (0.2366, 0.7634)), (81, 263, (0.2553, 0.3662))],
)
def test_wilson_known_values(successes: int, n: int, expected: tuple[float, float]) -> None:
    low, high = wilson_interval(successes, n)
    assert low == pytest.approx(expected[0], abs=1e-4)
    assert high == pytest.approx(expected[1], abs=1e-4)


def test_wilson_edges_are_exact_and_confidence_is_honoured() -> None:
    assert wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(10, 10)[1] == 1.0
    # For 0 successes the upper bound is z^2 / (n + z^2).
    z99 = 2.5758293035489
    assert wilson_interval(0, 10, 0.99)[1] == pytest.approx(z99**2 / (10 + z99**2), abs=1e-9)
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    with pytest.raises(ValueError):
        wilson_interval(11, 10)
    with pytest.raises(ValueError):
        wilson_interval(1, 10, confidence=1.0)


@pytest.mark.parametrize(
    ("df", "expected"),
    [(1, 12.7062), (2, 4.3027), (5, 2.5706), (30, 2.0423), (1000, 1.9623)],
)
def test_t_quantile_known_values(df: int, expected: float) -> None:
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=1e-4)
    assert t_quantile(0.025, df) == pytest.approx(-expected, abs=1e-4)


def test_t_quantile_closed_forms_and_roundtrip() -> None:
    # df=1 is Cauchy and df=2 has a closed form, so these are independent references.
    for p in (0.6, 0.9, 0.995, 0.9999):
        assert t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-9)
        assert t_quantile(p, 2) == pytest.approx((2 * p - 1) / math.sqrt(2 * p * (1 - p)), rel=1e-9)
    for df in (1, 3, 7.5, 60, 5000):
        for p in (0.01, 0.3, 0.5, 0.95):
            assert t_cdf(t_quantile(p, df), df) == pytest.approx(p, abs=1e-12)
    assert t_quantile(0.975, 10**7) == pytest.approx(1.959964, abs=1e-5)
    with pytest.raises(ValueError):
        t_quantile(1.0, 5)


def test_t_cdf_known_values() -> None:
    assert 2 * (1 - t_cdf(2.228, 10)) == pytest.approx(0.05, abs=1e-3)
    assert t_cdf(2.0, 1) == pytest.approx(0.5 + math.atan(2.0) / math.pi, abs=1e-12)
    assert t_cdf(-1.5, 2) == pytest.approx(0.5 * (1 - 1.5 / math.sqrt(2 + 1.5**2)), abs=1e-12)
    assert t_cdf(0.0, 4) == 0.5


def test_clustered_stderr_matches_hand_computation() -> None:
    values = [0.2, 0.4, 0.9, 0.5, 0.1, 0.3]
    clusters = ["a", "a", "b", "b", "c", "c"]
    # mean 0.4; per-cluster sums of deviations: -0.2, 0.6, -0.4; G = 3, n = 6.
    expected = math.sqrt(3 / 2 * (0.2**2 + 0.6**2 + 0.4**2)) / 6
    assert clustered_stderr(values, clusters) == pytest.approx(expected, rel=1e-12)
    score = summarize(values, clusters)
    assert score.method == "t-clustered"
    assert score.n_clusters == 3
    assert score.stderr == pytest.approx(expected, rel=1e-12)
    # df = G - 1 = 2, so the half-width uses t(0.975, 2) = 4.3027.
    assert score.ci_high - score.value == pytest.approx(4.302653 * expected, rel=1e-5)
    assert math.isnan(clustered_stderr(values, ["x"] * 6))
    with pytest.raises(ValueError):
        clustered_stderr(values, ["a"])


def test_unclustered_stderr_formulas() -> None:
    binary = summarize([1, 1, 1, 0])
    assert binary.method == "wilson"
    assert binary.n_clusters is None
    assert binary.stderr == pytest.approx(math.sqrt(0.75 * 0.25 / 4))
    assert (binary.ci_low, binary.ci_high) == pytest.approx(wilson_interval(3, 4))
    values = [0.5, 0.7, 0.9]
    cont = summarize(values)
    assert cont.method == "t"
    assert cont.stderr == pytest.approx(0.2 / math.sqrt(3))  # sample sd with ddof=1 is 0.2
    assert cont.ci_low == pytest.approx(0.7 - 4.302653 * 0.2 / math.sqrt(3), rel=1e-6)


def test_perfectly_correlated_clusters_widen_interval() -> None:
    # 10 subjects of 10 items each; a subject is either all right or all wrong.
    values = [1.0] * 50 + [0.0] * 50
    clusters = [i // 10 for i in range(100)]
    plain = summarize(values)
    clustered = summarize(values, clusters)
    assert clustered.method == "wilson-clustered"
    assert clustered.n_clusters == 10
    # Per-cluster deviation sums are +-5: SE = sqrt(10/9 * 10 * 25) / 100 = 1/6.
    assert clustered.stderr == pytest.approx(1 / 6)
    assert plain.stderr == pytest.approx(0.05)
    # Effective n = 0.25 / (1/6)^2 = 9, times Korn-Graubard's (t_99 / t_9)^2 for 10 clusters.
    n_eff = 9 * (t_quantile(0.975, 99) / t_quantile(0.975, 9)) ** 2
    assert n_eff == pytest.approx(6.92, abs=0.01)
    expected = wilson_interval(0.5 * n_eff, n_eff)
    assert (clustered.ci_low, clustered.ci_high) == pytest.approx(expected)
    assert clustered.ci_high - clustered.ci_low > 2.5 * (plain.ci_high - plain.ci_low)
    cont = [v * 0.5 + 0.1 for v in values]
    assert summarize(cont, clusters).ci_high > summarize(cont).ci_high


def test_single_cluster_behaves_as_unclustered() -> None:
    values = [1, 0, 1, 1, 0]
    one = summarize(values, ["s"] * 5)
    plain = summarize(values)
    assert one.n_clusters == 1
    assert one.method == "wilson"
    assert (one.stderr, one.ci_low, one.ci_high) == (plain.stderr, plain.ci_low, plain.ci_high)


def test_n_zero_and_n_one() -> None:
    empty = summarize([])
    assert empty.method == "none"
    assert empty.n == 0
    assert all(math.isnan(v) for v in (empty.value, empty.stderr, empty.ci_low, empty.ci_high))
    single = summarize([0.7])
    assert single.value == 0.7
    assert single.n == 1
    assert math.isnan(single.stderr) and math.isnan(single.ci_low)
    right = summarize([1])
    assert right.method == "wilson"
    assert right.stderr == 0.0
    # Wilson for 1/1: lower bound = 1 / (1 + z^2).
    assert right.ci_low == pytest.approx(1 / (1 + 1.959964**2), abs=1e-6)
    assert right.ci_high == 1.0


def test_higher_confidence_is_wider() -> None:
    rng = np.random.default_rng(0)
    for values in ((rng.random(40) < 0.3).astype(float), rng.normal(size=40)):
        clusters = [i % 5 for i in range(40)]
        for cl in (None, clusters):
            lo95 = summarize(values, cl, 0.95)
            lo99 = summarize(values, cl, 0.99)
            assert lo99.ci_low < lo95.ci_low and lo99.ci_high > lo95.ci_high


def test_score_is_frozen_and_serialisable() -> None:
    score = summarize([0, 1, 1], ["a", "b", "b"])
    assert isinstance(score, Score)
    assert set(score.as_dict()) == {
        "value",
        "stderr",
        "ci_low",
        "ci_high",
        "n",
        "n_clusters",
        "method",
    }
    with pytest.raises(AttributeError):
        score.value = 0.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        summarize([0.1, float("nan")])


def test_paired_difference_at_t_critical_value() -> None:
    # Differences c + k for k in -5..5: sd = sqrt(110 / 10), SE = 1, so t = c with df = 10.
    c = 2.228139
    a = [c + k for k in range(-5, 6)]
    result = paired_difference(a, [0.0] * 11)
    assert isinstance(result, PairedResult)
    assert result.method == "paired-t"
    assert result.stderr == pytest.approx(1.0)
    assert result.mean_diff == pytest.approx(c)
    assert result.p_value == pytest.approx(0.05, abs=1e-3)
    assert result.ci_low == pytest.approx(0.0, abs=1e-5)  # CI edge touches 0 exactly at p=0.05


def test_paired_difference_hand_examples() -> None:
    # d = [1, 3]: mean 2, SE 1, t = 2 with df = 1 (Cauchy).
    result = paired_difference([2, 3], [1, 0])
    assert result.p_value == pytest.approx(1 - 2 / math.pi * math.atan(2.0), abs=1e-10)
    # d = [1, 1, 1, 0 x 7]: mean 0.3, SE = sqrt(0.7 / 30), df = 9.
    d = [1, 1, 1] + [0] * 7
    result = paired_difference(d, [0] * 10)
    t = 0.3 / math.sqrt(0.7 / 30)
    assert result.stderr == pytest.approx(math.sqrt(0.7 / 30))
    # Independent reference: integrate the t(9) density numerically.
    x = np.linspace(0.0, t, 20001)
    pdf = math.gamma(5) / (math.sqrt(9 * math.pi) * math.gamma(4.5)) * (1 + x**2 / 9) ** -5
    integral = float(np.sum((pdf[1:] + pdf[:-1]) / 2 * np.diff(x)))
    assert result.p_value == pytest.approx(1 - 2 * integral, abs=1e-6)
    assert 0.05 < result.p_value < 0.1


def test_paired_difference_degenerate_and_clustered() -> None:
    same = paired_difference([1, 0, 1], [1, 0, 1])
    assert (same.p_value, same.stderr, same.mean_diff) == (1.0, 0.0, 0.0)
    shifted = paired_difference([1, 1, 1], [0, 0, 0])
    assert shifted.p_value == 0.0 and shifted.stderr == 0.0
    assert paired_difference([], []).method == "none"
    assert math.isnan(paired_difference([1], [0]).p_value)
    with pytest.raises(ValueError):
        paired_difference([1, 0], [1])
    rng = np.random.default_rng(1)
    a, b = rng.random(30), rng.random(30)
    clusters = [i % 4 for i in range(30)]
    result = paired_difference(a, b, clusters, confidence=0.9)
    se = clustered_stderr(a - b, clusters)
    assert result.method == "paired-t-clustered"
    assert result.stderr == pytest.approx(se)
    assert result.ci_high - result.mean_diff == pytest.approx(t_quantile(0.95, 3) * se)
    t = result.mean_diff / se
    assert result.p_value == pytest.approx(2 * (1 - t_cdf(abs(t), 3)), abs=1e-12)


def test_clustering_never_narrows_a_binary_interval() -> None:
    # Every cluster holds one right and one wrong answer: the clustered variance is ~0, which
    # would imply an effective n above n; the interval must stay at least as wide as plain Wilson.
    values = [1.0, 0.0] * 30
    clusters = [i // 2 for i in range(60)]
    plain = summarize(values)
    clustered = summarize(values, clusters)
    assert clustered.ci_high - clustered.ci_low >= plain.ci_high - plain.ci_low - 1e-12
