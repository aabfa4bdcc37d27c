"""Aggregations with intervals (gnomon.scoring.aggregate): corpus BLEU / chrF equal to
sacreBLEU's own corpus scores, F1 equal to scikit-learn's, and percentile bootstrap intervals
that are deterministic, contain the point value, shrink with n and widen for clustered data."""

from __future__ import annotations

import math
import random
import time

import numpy as np
import pytest
import sacrebleu

from gnomon import stats
from gnomon.scoring.aggregate import AGGREGATIONS, aggregate
from gnomon.scoring.bootstrap import bootstrap_score, weighted_sums

WORDS = ["the", "cat", "sat", "on", "a", "mat", ".", "dog", "ran", "fast", ",", "red", "tree"]


def corpus(n: int, seed: int = 0, noise: float = 0.3) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    refs = [" ".join(rng.choices(WORDS, k=rng.randint(3, 20))) for _ in range(n)]
    hyps = [
        " ".join(w if rng.random() > noise else rng.choice(WORDS) for w in r.split()) for r in refs
    ]
    return hyps, refs


def width(score: stats.Score) -> float:
    return score.ci_high - score.ci_low


def test_registry() -> None:
    assert {"mean", "corpus_f1", "macro_f1", "bleu", "chrf"} <= set(AGGREGATIONS)
    with pytest.raises(ValueError, match="unknown aggregation 'blue'"):
        aggregate("blue", [1.0])


def test_mean_is_stats_summarize() -> None:
    values = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0]
    clusters = ["a", "a", "b", "b", "c", "c"]
    assert aggregate("mean", values) == stats.summarize(values)
    assert aggregate("mean", values, clusters) == stats.summarize(values, clusters)
    assert aggregate("mean", [0.2, 0.5, 0.9]).method == "t"


# --- BLEU and chrF: sacreBLEU's own numbers ---------------------------------------------------


def test_bleu_equals_sacrebleu_corpus_bleu() -> None:
    hyps, refs = corpus(300)
    hyps[3] = ""  # an empty hypothesis still counts its reference's length
    score = aggregate("bleu", list(zip(hyps, refs, strict=True)), n_boot=200)
    assert score.value == sacrebleu.corpus_bleu(hyps, [refs]).score
    assert score.n == 300 and score.method == "bootstrap"
    for options in [
        {"lowercase": True},
        {"tokenize": "char"},
        {"smooth_method": "add-k", "smooth_value": 1},
        {"smooth_method": "floor"},
        {"smooth_method": "none", "use_effective_order": True},
    ]:
        got = aggregate("bleu", list(zip(hyps, refs, strict=True)), n_boot=20, **options)
        assert got.value == sacrebleu.corpus_bleu(hyps, [refs], **options).score, options


def test_bleu_and_chrf_with_several_references_per_item() -> None:
    hyps, refs = corpus(60, seed=1)
    _, other = corpus(60, seed=2)
    # a variable number of references: every third item has a second one
    items = [
        (h, [r, o] if i % 3 == 0 else [r])
        for i, (h, r, o) in enumerate(zip(hyps, refs, other, strict=True))
    ]
    streams = [refs, [o if i % 3 == 0 else None for i, o in enumerate(other)]]
    assert aggregate("bleu", items, n_boot=20).value == sacrebleu.corpus_bleu(hyps, streams).score
    assert aggregate("chrf", items, n_boot=20).value == sacrebleu.corpus_chrf(hyps, streams).score
    one = [(h, r) for h, r in zip(hyps, refs, strict=True)]  # a single reference as a string
    assert aggregate("bleu", one, n_boot=20).value == sacrebleu.corpus_bleu(hyps, [refs]).score


def test_chrf_equals_sacrebleu_corpus_chrf() -> None:
    hyps, refs = corpus(200, seed=3)
    items = list(zip(hyps, refs, strict=True))
    assert aggregate("chrf", items, n_boot=50).value == sacrebleu.corpus_chrf(hyps, [refs]).score
    plus = aggregate("chrf", items, n_boot=50, word_order=2)  # chrF++
    assert plus.value == sacrebleu.corpus_chrf(hyps, [refs], word_order=2).score
    eps = aggregate("chrf", items, n_boot=50, eps_smoothing=True, remove_whitespace=False)
    expected = sacrebleu.corpus_chrf(hyps, [refs], eps_smoothing=True, remove_whitespace=False)
    assert eps.value == expected.score


def test_bad_items_are_refused_with_a_message() -> None:
    with pytest.raises(ValueError, match="item 1: expected a"):
        aggregate("bleu", [("a b", ["a b"]), "just text"])
    with pytest.raises(ValueError, match="item 0: needs a string hypothesis"):
        aggregate("bleu", [("a b", [])])
    with pytest.raises(ValueError, match="item 0: expected a"):
        aggregate("corpus_f1", [1])


def test_empty_and_single_item() -> None:
    empty = aggregate("bleu", [])
    assert empty.n == 0 and math.isnan(empty.value) and empty.method == "none"
    one = aggregate("corpus_f1", [(1, 1)])
    assert one.value == 1.0 and math.isnan(one.ci_low) and math.isnan(one.stderr)


# --- F1 ---------------------------------------------------------------------------------------


def test_corpus_f1_hand_worked_and_as_scikit_learn() -> None:
    preds, refs = [1, 1, 0, 0, 1], [1, 0, 1, 0, 1]  # TP 2, FP 1, FN 1: F1 = 4 / 6
    assert aggregate("corpus_f1", list(zip(preds, refs, strict=True))).value == pytest.approx(2 / 3)
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(5)
    refs = rng.integers(0, 2, 500).tolist()
    preds = [r if rng.random() < 0.8 else 1 - r for r in refs]
    score = aggregate("corpus_f1", list(zip(preds, refs, strict=True)), n_boot=200)
    assert score.value == pytest.approx(metrics.f1_score(refs, preds), abs=1e-12)
    assert score.ci_low < score.value < score.ci_high
    # string labels, a stray answer that is no label at all, and no positives anywhere
    items = [("yes", "yes"), ("[invalid]", "yes"), ("yes", "no"), ("no", "no")]
    assert aggregate("corpus_f1", items, positive="yes").value == pytest.approx(0.5)
    assert aggregate("corpus_f1", [(0, 0), (0, 0)]).value == 0.0


def test_macro_f1_as_scikit_learn_over_the_reference_labels() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(6)
    labels = ["A", "B", "C", "D"]
    refs = [labels[i] for i in rng.integers(0, 4, 400)]
    preds = [r if rng.random() < 0.6 else rng.choice(labels + ["[invalid]"]) for r in refs]
    score = aggregate("macro_f1", list(zip(preds, refs, strict=True)), n_boot=200)
    expected = metrics.f1_score(refs, preds, labels=labels, average="macro")
    assert score.value == pytest.approx(expected, abs=1e-12)
    assert score.ci_low < score.value < score.ci_high


# --- the bootstrap ----------------------------------------------------------------------------


def test_bootstrap_is_deterministic_for_a_seed_and_contains_the_value() -> None:
    items = list(zip(*corpus(400, seed=7), strict=True))
    first = aggregate("bleu", items, n_boot=300, seed=1)
    assert aggregate("bleu", items, n_boot=300, seed=1) == first
    other = aggregate("bleu", items, n_boot=300, seed=2)
    assert other.value == first.value and (other.ci_low, other.ci_high) != (
        first.ci_low,
        first.ci_high,
    )
    for score in (first, other):
        assert score.ci_low < score.value < score.ci_high
        assert 0 < score.stderr < width(score)


def test_bootstrap_interval_shrinks_with_n() -> None:
    small = aggregate("bleu", list(zip(*corpus(100, seed=8), strict=True)), n_boot=300)
    large = aggregate("bleu", list(zip(*corpus(2500, seed=8), strict=True)), n_boot=300)
    # 25 times the items: about a fifth of the width
    assert 0.1 < width(large) / width(small) < 0.35
    assert large.stderr < small.stderr


def test_bootstrap_standard_error_of_a_mean_matches_the_formula() -> None:
    rng = np.random.default_rng(9)
    x = rng.normal(size=2000)
    sums = weighted_sums(np.stack([x, np.ones_like(x)], axis=1))

    def mean(weights: np.ndarray) -> np.ndarray:
        total, count = sums(weights).T
        return total / count

    score = bootstrap_score(mean, len(x), n_boot=2000)
    assert score.value == pytest.approx(x.mean())
    assert score.stderr == pytest.approx(x.std(ddof=1) / math.sqrt(len(x)), rel=0.08)
    assert width(score) == pytest.approx(2 * 1.96 * score.stderr, rel=0.1)


def test_clustered_bootstrap_is_wider_for_correlated_clusters() -> None:
    """40 passages of 25 questions each, a passage's answers all right or all wrong: there are
    really 40 observations, not 1000, and resampling passages says so."""
    rng = np.random.default_rng(10)
    items, clusters = [], []
    for passage in range(40):
        right = rng.random() < 0.5
        for _ in range(25):
            ref = int(rng.integers(0, 2))
            items.append((ref if right else 1 - ref, ref))
            clusters.append(f"passage-{passage}")
    flat = aggregate("corpus_f1", items, n_boot=500)
    clustered = aggregate("corpus_f1", items, clusters, n_boot=500)
    assert clustered.value == flat.value
    assert clustered.method == "bootstrap-clustered" and clustered.n_clusters == 40
    assert width(clustered) > 2.5 * width(flat)
    assert clustered.ci_low <= clustered.value <= clustered.ci_high
    with pytest.raises(ValueError, match="clusters has 3 entries"):
        aggregate("corpus_f1", items, clusters[:3])


def test_bleu_bootstrap_on_10k_items_timing() -> None:
    """Not an assertion on speed (the machine is shared): prints where the time goes."""
    items = list(zip(*corpus(10_000, seed=11), strict=True))
    start = time.perf_counter()
    score = aggregate("bleu", items)  # B = 1000
    elapsed = time.perf_counter() - start
    start = time.perf_counter()
    sacrebleu.corpus_bleu([h for h, _ in items], [[r for _, r in items]])
    plain = time.perf_counter() - start
    print(
        f"\n10k-item BLEU with a 1000-replicate bootstrap: {elapsed:.2f} s "
        f"(sacreBLEU's corpus_bleu alone: {plain:.2f} s); {score}"
    )
    assert score.ci_low < score.value < score.ci_high
