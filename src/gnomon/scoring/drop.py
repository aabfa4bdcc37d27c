"""DROP's answer comparison (Dua et al. 2019), as lm-evaluation-harness's `drop` task scores it.

A gold answer is one or more spans; the model's answer is one text. Both are normalised token by
token (lower case, punctuation removed unless the token is a number, numbers written as floats,
articles dropped), exact match compares the normalised spans as sets, and F1 aligns bags of words
one to one, counting a pair only when the gold's numbers appear in the prediction. F1 is rounded
to two decimals, as the reference does, so that per-sample values agree exactly.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

import numpy as np

__all__ = ["drop_em", "drop_f1", "normalize_answer"]

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _normalize_token(token: str) -> str:
    token = token.lower()
    if not _is_number(token):
        token = "".join(ch for ch in token if ch not in _PUNCTUATION)
    if _is_number(token):
        token = str(float(token))
    return " ".join(_ARTICLES.sub(" ", token).split())


def normalize_answer(answer: str) -> str:
    """One span, normalised: tokens split on spaces and hyphens, each cleaned, empties dropped."""
    tokens = (_normalize_token(t) for t in re.split(" |-", answer))
    return " ".join(t for t in tokens if t.strip()).strip()


def _bags(spans: Sequence[str]) -> tuple[list[str], list[set[str]]]:
    normalized = [normalize_answer(s) for s in spans]
    return normalized, [set(n.split()) for n in normalized]


def _f1(predicted: set[str], gold: set[str]) -> float:
    common = len(gold & predicted)
    precision = common / len(predicted) if predicted else 1.0
    recall = common / len(gold) if gold else 1.0
    if precision == 0.0 and recall == 0.0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def _numbers_match(gold: set[str], predicted: set[str]) -> bool:
    gold_numbers = {w for w in gold if _is_number(w)}
    return not gold_numbers or bool(gold_numbers & {w for w in predicted if _is_number(w)})


def _spans(gold: str | Sequence[str]) -> list[str]:
    return [gold] if isinstance(gold, str) else list(gold)


def drop_em(prediction: str, gold: str | Sequence[str]) -> float:
    """1 when the prediction, as one span, equals the gold answer's spans after normalisation.
    A gold answer whose first span is blank counts as no answer (0), as in the reference."""
    spans = _spans(gold)
    if not spans or not spans[0].strip():
        return 0.0
    predicted, _ = _bags([prediction])
    golden, _ = _bags(spans)
    return float(set(predicted) == set(golden) and len(predicted) == len(golden))


def drop_f1(prediction: str, gold: str | Sequence[str]) -> float:
    """Bag-of-words F1 under DROP's one-to-one alignment of predicted and gold spans.

    The prediction is a single span, so the optimal alignment pairs it with the gold span it
    scores best against, and the mean runs over all gold spans (the unpaired ones score 0)."""
    spans = _spans(gold)
    if not spans or not spans[0].strip():
        return 0.0
    _, (pred_bag,) = _bags([prediction])
    _, gold_bags = _bags(spans)
    scores = np.zeros(len(gold_bags))
    best = max(
        (_f1(pred_bag, g) if _numbers_match(g, pred_bag) else 0.0 for g in gold_bags),
        default=0.0,
    )
    scores[0] = best
    return float(round(np.mean(scores), 2))
