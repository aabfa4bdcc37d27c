"""Aggregations: how a benchmark's per-sample items become one score with an interval.

`mean` averages per-sample numbers with `gnomon.stats` (Wilson for 0/1 values, Student-t
otherwise, cluster-robust when items cluster). Corpus metrics are not means of per-sample
numbers (BLEU divides summed n-gram counts; F1 divides summed true and false positives), so they
take every item at once and get a percentile bootstrap interval (`gnomon.scoring.bootstrap`).
Each corpus metric reduces an item to a row of additive statistics once; resampling then only
re-weights those rows.

Items, by aggregation:
- `mean`: numbers;
- `corpus_f1`, `macro_f1`: (predicted label, reference label) pairs;
- `bleu`, `chrf`, `ter`: (hypothesis, references) pairs, references a list of strings (or one
  string);
- `instruction_mean`: per-sample lists of 0/1 verdicts, one per instruction (IFEval);
- `perplexity`: loglikelihoods; `weighted_perplexity`, `bits_per_byte`: (loglikelihood, count)
  pairs, the count in words or bytes.
BLEU, chrF and TER are on sacreBLEU's 0-100 scale, F1 and means on 0-1.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sacrebleu.metrics import BLEU, CHRF, TER

from gnomon import stats
from gnomon.scoring.bootstrap import DEFAULT_BOOT, DEFAULT_SEED, bootstrap_score, weighted_sums
from gnomon.stats import Score

__all__ = ["AGGREGATIONS", "Aggregation", "aggregate", "bleu", "chrf", "corpus_f1"]
__all__ += ["bits_per_byte", "macro_f1", "mean", "perplexity", "ter", "weighted_perplexity"]
__all__ += ["instruction_mean"]

Clusters = Sequence[Hashable] | None


@dataclass(frozen=True)
class Aggregation:
    """`fn(items, clusters, *, confidence, n_boot, seed, **options) -> Score`."""

    name: str
    fn: Callable[..., Score]
    description: str


AGGREGATIONS: dict[str, Aggregation] = {}


def _aggregation(name: str, description: str) -> Callable[[Callable[..., Score]], Callable]:
    def register(fn: Callable[..., Score]) -> Callable[..., Score]:
        if name in AGGREGATIONS:
            raise ValueError(f"aggregation {name!r} is registered twice")
        AGGREGATIONS[name] = Aggregation(name, fn, description)
        return fn

    return register


def aggregate(
    name: str,
    items: Sequence[Any],
    clusters: Clusters = None,
    *,
    confidence: float = 0.95,
    n_boot: int = DEFAULT_BOOT,
    seed: int = DEFAULT_SEED,
    **options: Any,
) -> Score:
    """Score `items` with the aggregation `name`; `options` go to it (e.g. BLEU's tokenizer)."""
    try:
        entry = AGGREGATIONS[name]
    except KeyError:
        known = ", ".join(sorted(AGGREGATIONS))
        raise ValueError(f"unknown aggregation {name!r} (known: {known})") from None
    return entry.fn(items, clusters, confidence=confidence, n_boot=n_boot, seed=seed, **options)


@_aggregation("mean", "mean with a Wilson / Student-t interval, cluster-robust when clustered")
def mean(
    items: Sequence[float],
    clusters: Clusters = None,
    *,
    confidence: float = 0.95,
    n_boot: int = DEFAULT_BOOT,
    seed: int = DEFAULT_SEED,
) -> Score:
    """Closed-form intervals need no resampling: `n_boot` and `seed` are accepted and unused."""
    del n_boot, seed
    return stats.summarize(items, clusters, confidence)


def _pairs(items: Sequence[Any], what: str) -> tuple[list[Any], list[Any]]:
    firsts, seconds = [], []
    for i, item in enumerate(items):
        try:
            first, second = item
        except (TypeError, ValueError):
            raise ValueError(f"item {i}: expected a ({what}) pair, got {item!r:.80}") from None
        firsts.append(first)
        seconds.append(second)
    return firsts, seconds


@_aggregation("corpus_f1", "F1 of the positive label over the corpus (bootstrap interval)")
def corpus_f1(
    items: Sequence[tuple[Hashable, Hashable]],
    clusters: Clusters = None,
    *,
    confidence: float = 0.95,
    n_boot: int = DEFAULT_BOOT,
    seed: int = DEFAULT_SEED,
    positive: Hashable = 1,
) -> Score:
    """F1 = 2TP / (2TP + FP + FN) for the label `positive` against everything else, counted over
    the whole corpus (not averaged per item): scikit-learn's binary `f1_score` and
    lm-evaluation-harness's `f1` aggregation. A prediction that is no label at all (an
    unparseable answer) is simply not positive. No positive anywhere gives 0."""
    preds, refs = _pairs(items, "prediction label, reference label")
    p = np.fromiter((x == positive for x in preds), bool, count=len(preds))
    r = np.fromiter((x == positive for x in refs), bool, count=len(refs))
    table = np.stack([p & r, p & ~r, ~p & r], axis=1).astype(float)  # TP, FP, FN
    sums = weighted_sums(table)

    def f1(weights: np.ndarray) -> np.ndarray:
        tp, fp, fn = sums(weights).T
        denominator = 2 * tp + fp + fn
        safe = np.where(denominator > 0, denominator, 1.0)
        return np.where(denominator > 0, 2 * tp / safe, 0.0)

    return bootstrap_score(
        f1, len(table), clusters, confidence=confidence, n_boot=n_boot, seed=seed
    )


@_aggregation("macro_f1", "mean over reference labels of each label's F1 (bootstrap interval)")
def macro_f1(
    items: Sequence[tuple[Hashable, Hashable]],
    clusters: Clusters = None,
    *,
    confidence: float = 0.95,
    n_boot: int = DEFAULT_BOOT,
    seed: int = DEFAULT_SEED,
) -> Score:
    """The unweighted mean of each label's F1, over the labels the references use (a model's
    stray answers are wrong answers, not extra classes that would each add an F1 of 0): as
    scikit-learn's `f1_score(refs, preds, labels=<reference labels>, average="macro")`. In a
    bootstrap replicate, a label no drawn reference uses is left out of the mean."""
    preds, refs = _pairs(items, "prediction label, reference label")
    index: dict[Hashable, int] = {}
    ref_codes = np.fromiter((index.setdefault(x, len(index)) for x in refs), np.intp, len(refs))
    n_labels = len(index)
    pred_codes = np.fromiter((index.get(x, -1) for x in preds), np.intp, count=len(preds))
    labelled = pred_codes >= 0
    correct = pred_codes == ref_codes

    def f1(weights: np.ndarray) -> np.ndarray:
        out = np.empty(len(weights))
        for row, w in enumerate(weights):
            support = np.bincount(ref_codes, w, n_labels)
            predicted = np.bincount(pred_codes[labelled], w[labelled], n_labels)
            tp = np.bincount(ref_codes[correct], w[correct], n_labels)
            present = support > 0
            out[row] = np.mean(2 * tp[present] / (support[present] + predicted[present]))
        return out

    return bootstrap_score(
        f1, len(ref_codes), clusters, confidence=confidence, n_boot=n_boot, seed=seed
    )


def _hypotheses_and_streams(items: Sequence[Any]) -> tuple[list[str], list[list[str | None]]]:
    """sacreBLEU wants references as streams (the k-th reference of every item); an item with
    fewer references has None in the streams it lacks, which sacreBLEU skips."""
    hyps, refs = _pairs(items, "hypothesis, references")
    refs = [[r] if isinstance(r, str) else list(r) for r in refs]
    for i, (h, rs) in enumerate(zip(hyps, refs, strict=True)):
        if not isinstance(h, str) or not rs or not all(isinstance(r, str) for r in rs):
            raise ValueError(f"item {i}: needs a string hypothesis and at least one reference")
    width = max((len(r) for r in refs), default=0)
    streams = [[r[k] if k < len(r) else None for r in refs] for k in range(width)]
    return hyps, streams


def _sacrebleu_score(
    metric: BLEU | CHRF | TER,
    items: Sequence[Any],
    clusters: Clusters,
    confidence: float,
    n_boot: int,
    seed: int,
) -> Score:
    """sacreBLEU's corpus score from summed per-segment statistics (its own reading of each
    segment and its own formula), resampled by re-weighting those statistics."""
    hyps, streams = _hypotheses_and_streams(items)
    if not hyps:
        return bootstrap_score(lambda w: w.sum(axis=1), 0, clusters)
    # sacreBLEU skips a None reference, but annotates the streams as holding only strings
    stats = metric._extract_corpus_statistics(hyps, streams)  # type: ignore[arg-type]
    table = np.asarray(stats, dtype=np.float64)
    sums = weighted_sums(table)

    def score(weights: np.ndarray) -> np.ndarray:
        # a fresh list per replicate: BLEU's add-k smoothing edits the list it is given
        return np.array(
            [metric._compute_score_from_stats(row.tolist()).score for row in sums(weights)]
        )

    return bootstrap_score(
        score, len(hyps), clusters, confidence=confidence, n_boot=n_boot, seed=seed
    )


@_aggregation("bleu", "sacreBLEU corpus BLEU, 0-100 (bootstrap interval)")
def bleu(
    items: Sequence[tuple[str, Sequence[str] | str]],
    clusters: Clusters = None,
    *,
    confidence: float = 0.95,
    n_boot: int = DEFAULT_BOOT,
    seed: int = DEFAULT_SEED,
    tokenize: str | None = None,
    lowercase: bool = False,
    smooth_method: str = "exp",
    smooth_value: float | None = None,
    use_effective_order: bool = False,
) -> Score:
    """Equal to `sacrebleu.corpus_bleu(hyps, refs, ...).score` with the same options."""
    metric = BLEU(
        lowercase=lowercase,
        force=True,  # only silences its "looks tokenized" warning; the score is the same
        tokenize=tokenize,
        smooth_method=smooth_method,
        smooth_value=smooth_value,
        effective_order=use_effective_order,
    )
    return _sacrebleu_score(metric, items, clusters, confidence, n_boot, seed)


@_aggregation("chrf", "sacreBLEU corpus chrF, 0-100 (bootstrap interval)")
def chrf(
    items: Sequence[tuple[str, Sequence[str] | str]],
    clusters: Clusters = None,
    *,
    confidence: float = 0.95,
    n_boot: int = DEFAULT_BOOT,
    seed: int = DEFAULT_SEED,
    char_order: int = CHRF.CHAR_ORDER,
    word_order: int = CHRF.WORD_ORDER,
    beta: int = CHRF.BETA,
    remove_whitespace: bool = True,
    eps_smoothing: bool = False,
) -> Score:
    """Equal to `sacrebleu.corpus_chrf(hyps, refs, ...).score` with the same options
    (`word_order=2` is chrF++)."""
    metric = CHRF(
        char_order=char_order,
        word_order=word_order,
        beta=beta,
        whitespace=not remove_whitespace,
        eps_smoothing=eps_smoothing,
    )
    return _sacrebleu_score(metric, items, clusters, confidence, n_boot, seed)


@_aggregation("ter", "sacreBLEU corpus TER, 0-100, lower is better (bootstrap interval)")
def ter(
    items: Sequence[tuple[str, Sequence[str] | str]],
    clusters: Clusters = None,
    *,
    confidence: float = 0.95,
    n_boot: int = DEFAULT_BOOT,
    seed: int = DEFAULT_SEED,
    normalized: bool = False,
    no_punct: bool = False,
    asian_support: bool = False,
    case_sensitive: bool = False,
) -> Score:
    """Equal to `sacrebleu.corpus_ter(hyps, refs, ...).score` with the same options."""
    metric = TER(
        normalized=normalized,
        no_punct=no_punct,
        asian_support=asian_support,
        case_sensitive=case_sensitive,
    )
    return _sacrebleu_score(metric, items, clusters, confidence, n_boot, seed)


def _loglikelihoods(items: Sequence[Any], weighted: bool) -> np.ndarray:
    """(n, 2) rows of (loglikelihood, count): a count of 1 each when not `weighted`."""
    rows = []
    for i, item in enumerate(items):
        if weighted:
            try:
                ll, count = item
            except (TypeError, ValueError):
                raise ValueError(
                    f"item {i}: expected a (loglikelihood, count) pair, got {item!r:.80}"
                ) from None
        else:
            ll, count = item, 1
        if isinstance(ll, bool) or not isinstance(ll, int | float):
            raise ValueError(f"item {i}: the loglikelihood must be a number, got {ll!r:.80}")
        if isinstance(count, bool) or not isinstance(count, int | float) or count < 0:
            raise ValueError(f"item {i}: the count must be a number >= 0, got {count!r:.80}")
        rows.append((float(ll), float(count)))
    return np.asarray(rows, dtype=np.float64).reshape(-1, 2)


def _per_unit(
    items: Sequence[Any],
    weighted: bool,
    transform: Callable[[np.ndarray], np.ndarray],
    clusters: Clusters,
    confidence: float,
    n_boot: int,
    seed: int,
) -> Score:
    """`transform` of the corpus loglikelihood per unit (item, word or byte): a ratio of sums,
    as lm-evaluation-harness's `mean` and `weighted_mean` compute it, resampled by weights."""
    table = _loglikelihoods(items, weighted)
    sums = weighted_sums(table)

    def statistic(weights: np.ndarray) -> np.ndarray:
        total, units = sums(weights).T
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return transform(total / units)

    return bootstrap_score(
        statistic, len(table), clusters, confidence=confidence, n_boot=n_boot, seed=seed
    )


@_aggregation("perplexity", "exp(-mean loglikelihood) over the corpus (bootstrap interval)")
def perplexity(
    items: Sequence[float],
    clusters: Clusters = None,
    *,
    confidence: float = 0.95,
    n_boot: int = DEFAULT_BOOT,
    seed: int = DEFAULT_SEED,
) -> Score:
    """lm-evaluation-harness's `perplexity`: `exp(-mean(items))`, items loglikelihoods."""
    return _per_unit(items, False, lambda x: np.exp(-x), clusters, confidence, n_boot, seed)


@_aggregation(
    "weighted_perplexity", "exp(-loglikelihood per word or byte) over the corpus (bootstrap)"
)
def weighted_perplexity(
    items: Sequence[tuple[float, float]],
    clusters: Clusters = None,
    *,
    confidence: float = 0.95,
    n_boot: int = DEFAULT_BOOT,
    seed: int = DEFAULT_SEED,
) -> Score:
    """lm-evaluation-harness's `weighted_perplexity`: exp(-sum(ll) / sum(count))."""
    return _per_unit(items, True, lambda x: np.exp(-x), clusters, confidence, n_boot, seed)


@_aggregation("bits_per_byte", "-loglikelihood per byte / ln 2 over the corpus (bootstrap)")
def bits_per_byte(
    items: Sequence[tuple[float, float]],
    clusters: Clusters = None,
    *,
    confidence: float = 0.95,
    n_boot: int = DEFAULT_BOOT,
    seed: int = DEFAULT_SEED,
) -> Score:
    """lm-evaluation-harness's `bits_per_byte`: -sum(ll) / sum(bytes) / ln 2."""
    return _per_unit(items, True, lambda x: -x / np.log(2), clusters, confidence, n_boot, seed)


@_aggregation(
    "instruction_mean",
    "share of followed instructions over the corpus, each sample's verdicts pooled (bootstrap)",
)
def instruction_mean(
    items: Sequence[Sequence[float]],
    clusters: Clusters = None,
    *,
    confidence: float = 0.95,
    n_boot: int = DEFAULT_BOOT,
    seed: int = DEFAULT_SEED,
) -> Score:
    """IFEval's instruction-level accuracy (lm-eval's `agg_inst_level_acc`): every sample's
    verdicts (one per instruction) pooled, so a prompt with three instructions weighs three
    times one with one. Resampled by prompt, the unit that was drawn."""
    table = np.array([(float(sum(v)), float(len(v))) for v in items], dtype=float).reshape(-1, 2)
    sums = weighted_sums(table)

    def statistic(weights: np.ndarray) -> np.ndarray:
        followed, given = sums(weights).T
        with np.errstate(divide="ignore", invalid="ignore"):
            return followed / given

    return bootstrap_score(
        statistic, len(table), clusters, confidence=confidence, n_boot=n_boot, seed=seed
    )


# Pairwise-judgment aggregations register themselves on import (they use `_aggregation` above).
from gnomon.scoring import pairwise  # noqa: E402, F401
