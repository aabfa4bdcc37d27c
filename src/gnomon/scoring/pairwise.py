"""Pairwise-judgment statistics: a model's answers judged against a baseline's, per question.

- `pairwise_win_rate`: the share of questions the model wins, a tie counting half (AlpacaEval's
  raw win rate), with a bootstrap interval comparable to `lc_win_rate`'s. Items: preferences in
  [0, 1], the judge's probability that the model's answer is better. (The per-sample metric
  `win_rate` of judged mode is the same mean, with a closed-form interval.)
- `lc_win_rate`: AlpacaEval 2.0's length-controlled win rate. A logistic model (a GLM) explains
  each preference by the length difference of the two answers (tanh of the standardized
  difference), the question's difficulty and the model itself; the win rate is then predicted with
  the length term set to zero, so a model that wins only by writing more loses that advantage.
  Items: (preference, model answer length, baseline answer length[, instruction difficulty]).
- `arena_hard`: Arena-Hard's score, the Bradley-Terry win probability against the baseline. Each
  question is judged twice, the answers swapped; a strong verdict (`A>>B`) counts as
  `strong_weight` battles. Items: (verdict with the model's answer shown first, verdict with it
  shown second), each a judge label such as `A>>B` or `[[B=A]]`, or None when unparsed.
- `arena_hard_style`: the style-controlled variant: answers' length and markdown (headers, lists,
  bold) enter the Bradley-Terry fit as features shared by all models, so it needs every model's
  judgments at once; option `model` names the one to score. Items: (model, verdict first,
  verdict second, model style, baseline style), a style being (tokens, headers, lists, bold).

All scores are on 0-1 like gnomon's other means. Intervals are percentile bootstraps over
questions (`gnomon.scoring.bootstrap`): a question's battles move together, so resampling battles
one by one (as Arena-Hard does) would understate the spread.

Differences from the references, deliberately: AlpacaEval also fits its GLM together with two
"gamed" baselines' annotations and picks an L1 penalty by cross-validation; both need data
downloaded from its hub repository, so here the fit is an unpenalized maximum-likelihood fit
(with a tiny ridge that only matters when the data separate, e.g. all wins), and instruction
difficulty is whatever the caller supplies (0 drops the term). Arena-Hard fits with PyTorch's
L-BFGS; a Newton fit of the same likelihood reaches the same maximum.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np

from gnomon.scoring.aggregate import Clusters, _aggregation
from gnomon.scoring.bootstrap import DEFAULT_BOOT, DEFAULT_SEED, bootstrap_score
from gnomon.stats import Score

__all__ = ["battle_outcomes", "fit_logistic", "length_controlled", "style_features"]

# Keeps the fit finite when the data separate (every battle won): small against any real
# log-likelihood, which grows with the number of battles.
RIDGE = 1e-6

_VERDICT = re.compile(r"\[*\s*([AB])\s*(>>|<<|>|<|=)\s*([AB])\s*\]*")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """Without overflow for large |z|."""
    return np.exp(-np.logaddexp(0.0, -z))


def fit_logistic(
    x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None, ridge: float = RIDGE
) -> np.ndarray:
    """Coefficients maximizing sum w*(y*log p + (1-y)*log(1-p)) - ridge/2*|b|^2, p = sigmoid(x@b),
    with no intercept (the formulas of both references have none). `y` may be a probability
    (AlpacaEval's preferences are), which scikit-learn's classifiers do not accept directly.
    Newton's method: the loss is convex and has few parameters, so it converges in a few steps."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    w = np.ones(len(y)) if w is None else np.asarray(w, float)
    beta = np.zeros(x.shape[1])
    penalty = ridge * np.eye(x.shape[1])
    for _ in range(100):
        p = _sigmoid(x @ beta)
        grad = x.T @ (w * (y - p)) - ridge * beta
        hess = (x * (w * p * (1 - p))[:, None]).T @ x + penalty
        step = np.linalg.solve(hess, grad)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    return beta


def _check_preferences(prefs: np.ndarray) -> None:
    bad = ~((prefs >= 0) & (prefs <= 1))
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"item {i}: a preference must be in [0, 1], got {prefs[i]}")


@_aggregation("pairwise_win_rate", "share of wins against a baseline, ties half (bootstrap)")
def win_rate(
    items: Sequence[float],
    clusters: Clusters = None,
    *,
    confidence: float = 0.95,
    n_boot: int = DEFAULT_BOOT,
    seed: int = DEFAULT_SEED,
) -> Score:
    """AlpacaEval's `win_rate` (a tie is half a win), on 0-1."""
    prefs = np.asarray(items, float).reshape(-1)
    _check_preferences(prefs)

    def rate(weights: np.ndarray) -> np.ndarray:
        return (weights @ prefs) / weights.sum(axis=1)

    return bootstrap_score(
        rate, len(prefs), clusters, confidence=confidence, n_boot=n_boot, seed=seed
    )


def length_controlled(
    prefs: np.ndarray,
    delta_len: np.ndarray,
    difficulty: np.ndarray,
    weights: np.ndarray | None = None,
) -> float:
    """The length-controlled win rate of one (weighted) sample: AlpacaEval's GLM
    `tanh(std_delta_len) + instruction_difficulty + model` fit to the preferences, then the mean
    predicted preference with the length term at zero. The length difference is standardized by
    its (weighted) standard deviation; with no spread it carries no information and is zero."""
    w = np.ones(len(prefs)) if weights is None else weights
    total = w.sum()
    mean = (w @ delta_len) / total
    var = (w @ (delta_len - mean) ** 2) / max(total - 1.0, 1.0)
    std = np.sqrt(var)
    length = np.tanh(delta_len / std) if std > 0 else np.zeros_like(delta_len)
    x = np.column_stack([length, difficulty, np.ones_like(prefs)])
    beta = fit_logistic(x, prefs, w)
    predicted = _sigmoid(beta[1] * difficulty + beta[2])
    return float((w @ predicted) / total)


@_aggregation("lc_win_rate", "AlpacaEval 2.0 length-controlled win rate (bootstrap interval)")
def lc_win_rate(
    items: Sequence[Sequence[float]],
    clusters: Clusters = None,
    *,
    confidence: float = 0.95,
    n_boot: int = DEFAULT_BOOT,
    seed: int = DEFAULT_SEED,
) -> Score:
    """Each bootstrap replicate refits the GLM on the drawn questions, so the interval includes
    the uncertainty of the length correction itself."""
    rows = []
    for i, item in enumerate(items):
        if not isinstance(item, Sequence) or len(item) not in (3, 4):
            raise ValueError(
                f"item {i}: expected (preference, model length, baseline length"
                f"[, difficulty]), got {item!r:.80}"
            )
        rows.append([float(v) for v in item] + ([0.0] if len(item) == 3 else []))
    table = np.asarray(rows, float).reshape(-1, 4)
    prefs, delta = table[:, 0], table[:, 1] - table[:, 2]
    _check_preferences(prefs)
    if not np.isfinite(table).all():
        raise ValueError("lengths and difficulties must be finite numbers")

    def rate(weights: np.ndarray) -> np.ndarray:
        return np.array([length_controlled(prefs, delta, table[:, 3], w) for w in weights])

    return bootstrap_score(
        rate, len(table), clusters, confidence=confidence, n_boot=n_boot, seed=seed
    )


def _label_score(label: str) -> tuple[float, int]:
    """(score of answer A, how many battles it counts as) for a judge label."""
    match = _VERDICT.fullmatch(label.strip())
    if match is None or match[1] == match[3]:
        raise ValueError(f"not a pairwise verdict: {label!r:.60}")
    first, op, _ = match.groups()
    if op == "=":
        return 0.5, 1
    a_wins = op.startswith(">") == (first == "A")
    return (1.0 if a_wins else 0.0), (2 if len(op) == 2 else 1)


def battle_outcomes(
    model_first: str | None, model_second: str | None, strong_weight: int = 3
) -> list[float]:
    """The model's outcomes (1 win, 0.5 tie, 0 loss) from one question judged in both orders, as
    Arena-Hard v2 counts them: a strong verdict is `strong_weight` battles. A question with an
    unparsed verdict (None) in either order is left out entirely, as Arena-Hard drops it."""
    if model_first is None or model_second is None:
        return []
    out: list[float] = []
    for label, model_is_a in ((model_first, True), (model_second, False)):
        score, strength = _label_score(label)
        mine = score if model_is_a else 1.0 - score
        out += [mine] * (strong_weight if strength == 2 else 1)
    return out


def _battles(verdicts: Sequence[Any], strong_weight: int) -> list[list[float]]:
    """Each question's battle outcomes; an empty list for a question left out."""
    out = []
    for i, item in enumerate(verdicts):
        try:
            first, second = item
        except (TypeError, ValueError):
            raise ValueError(
                f"item {i}: expected (verdict, swapped verdict), got {item!r:.80}"
            ) from None
        try:
            out.append(battle_outcomes(first, second, strong_weight))
        except ValueError as e:
            raise ValueError(f"item {i}: {e}") from None
    return out


def _judged(
    outcomes: list[list[float]], features: list[np.ndarray] | None, clusters: Clusters
) -> tuple[list[list[float]], list[np.ndarray] | None, Clusters]:
    """Only the questions with verdicts: they are what the score counts (n) and resamples."""
    if clusters is not None and len(clusters) != len(outcomes):
        n = len(outcomes)
        raise ValueError(f"clusters has {len(clusters)} entries but there are {n} items")
    keep = [i for i, o in enumerate(outcomes) if o]
    return (
        [outcomes[i] for i in keep],
        None if features is None else [features[i] for i in keep],
        None if clusters is None else [clusters[i] for i in keep],
    )


def _bt_statistic(
    outcomes: list[list[float]], features: list[np.ndarray] | None, columns: int
) -> Callable[[np.ndarray], np.ndarray]:
    """weights over questions -> the model's win probability against the baseline, from a
    Bradley-Terry (logistic) fit on the questions' battles. The first column is the model's
    strength minus the baseline's (Arena-Hard's +1/-1 encoding reduces to their difference)."""
    index = np.repeat(np.arange(len(outcomes)), [len(o) for o in outcomes])
    y = np.fromiter((v for o in outcomes for v in o), float, count=len(index))
    if features is None or not outcomes:
        x = np.ones((len(y), columns))
    else:
        x = np.vstack(
            [np.repeat(f[None, :], len(o), 0) for f, o in zip(features, outcomes, strict=True)]
        )
        x = x.reshape(len(y), columns)

    def statistic(weights: np.ndarray) -> np.ndarray:
        values = np.empty(len(weights))
        for row, w in enumerate(weights):
            values[row] = _sigmoid(fit_logistic(x, y, w[index])[0])
        return values

    return statistic


@_aggregation("arena_hard", "Arena-Hard Bradley-Terry win rate against the baseline (bootstrap)")
def arena_hard(
    items: Sequence[tuple[str | None, str | None]],
    clusters: Clusters = None,
    *,
    confidence: float = 0.95,
    n_boot: int = DEFAULT_BOOT,
    seed: int = DEFAULT_SEED,
    strong_weight: int = 3,
) -> Score:
    """Against the baseline alone the Bradley-Terry maximum-likelihood win probability is the
    mean battle outcome; it is fitted all the same so that the style-controlled variant shares
    the computation."""
    outcomes, _, clusters = _judged(_battles(items, strong_weight), None, clusters)
    statistic = _bt_statistic(outcomes, None, 1)
    return bootstrap_score(
        statistic, len(outcomes), clusters, confidence=confidence, n_boot=n_boot, seed=seed
    )


def style_features(model_style: Sequence[float], baseline_style: Sequence[float]) -> np.ndarray:
    """Arena-Hard's style differences: for length, (m - b) / (m + b); for each markdown count,
    its density per token d, as (d_m - d_b) / (d_m + d_b + 1). Bounded, so one very long answer
    cannot dominate the fit."""
    m = np.asarray(model_style, float)
    b = np.asarray(baseline_style, float)
    if m.shape != (4,) or b.shape != (4,) or m[0] <= 0 or b[0] <= 0:
        raise ValueError("a style is (tokens > 0, headers, lists, bold)")
    length = (m[0] - b[0]) / (m[0] + b[0])
    dm, db = m[1:] / m[0], b[1:] / b[0]
    return np.concatenate([[length], (dm - db) / (dm + db + 1)])


@_aggregation(
    "arena_hard_style", "Arena-Hard style-controlled Bradley-Terry win rate (bootstrap interval)"
)
def arena_hard_style(
    items: Sequence[tuple[Hashable, str | None, str | None, Sequence[float], Sequence[float]]],
    clusters: Clusters = None,
    *,
    confidence: float = 0.95,
    n_boot: int = DEFAULT_BOOT,
    seed: int = DEFAULT_SEED,
    model: Hashable = None,
    control: Sequence[str] = ("length", "markdown"),
    strong_weight: int = 3,
) -> Score:
    """One fit over every model's battles: a strength per model plus style coefficients shared
    by all (standardized over all battles, as Arena-Hard does), so a model's style-controlled
    score depends on the others'. The score is `model`'s win probability at the standardized
    style difference of zero, i.e. at the battles' average style difference."""
    if not set(control) or not set(control) <= {"length", "markdown"}:
        raise ValueError(f"control must name length and/or markdown, got {list(control)}")
    names, verdicts, styles = [], [], []
    for i, item in enumerate(items):
        try:
            name, first, second, mine, theirs = item
            styles.append(style_features(mine, theirs))
        except (TypeError, ValueError) as e:
            raise ValueError(f"item {i}: {e}") from None
        names.append(name)
        verdicts.append((first, second))
    models = sorted(set(names), key=repr)
    if model is None and len(models) == 1:  # one model against the baseline (one run's items)
        model = models[0]
    if model not in models:
        raise ValueError(f"model {model!r} has no judgments among the items")
    keep = ([0] if "length" in control else []) + ([1, 2, 3] if "markdown" in control else [])
    outcomes = _battles(verdicts, strong_weight)
    # the target model's column first, so the statistic reads its strength from column 0
    order = [model] + [m for m in models if m != model]
    onehot = np.eye(len(order))[[order.index(n) for n in names]]
    style = np.asarray(styles, float).reshape(-1, 4)[:, keep]
    per_battle = np.repeat(style, [len(o) for o in outcomes], axis=0)
    if len(per_battle) > 1:
        spread = per_battle.std(axis=0, ddof=1)
        style = (style - per_battle.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    judged, kept, clusters = _judged(outcomes, list(np.hstack([onehot, style])), clusters)
    statistic = _bt_statistic(judged, kept, onehot.shape[1] + style.shape[1])
    return bootstrap_score(
        statistic, len(judged), clusters, confidence=confidence, n_boot=n_boot, seed=seed
    )
