"""The Open LLM Leaderboard v2's normalised score: a score rescaled so that random guessing is 0.

(score - baseline) / (1 - baseline), clipped at 0, where the baseline is the score of a random
guess (1 / number of choices; 0 for generation, where the score is kept as it is). A benchmark
made of subtasks with different baselines (BBH, MuSR) normalises each subtask and averages them,
unweighted, as the leaderboard documents; one with one baseline normalises the pooled score.
"""

from __future__ import annotations

import math
from collections.abc import Mapping


def normalise(score: float, baseline: float) -> float:
    """`score` on a scale where `baseline` is 0 and a perfect score 1, never below 0."""
    if not 0 <= baseline < 1:
        raise ValueError(f"a baseline is in [0, 1), not {baseline}")
    return max(0.0, (score - baseline) / (1 - baseline))


def normalised_score(
    baseline: float | Mapping[str, float], score: float, by_cluster: Mapping[str, float]
) -> float | None:
    """The benchmark's normalised score from its pooled `score` and its per-cluster scores;
    None when a score it needs is missing or not a number (a partial or failed run)."""
    if isinstance(baseline, Mapping):
        if any(c not in by_cluster or math.isnan(by_cluster[c]) for c in baseline):
            return None
        return sum(normalise(by_cluster[c], b) for c, b in baseline.items()) / len(baseline)
    return None if math.isnan(score) else normalise(score, baseline)
