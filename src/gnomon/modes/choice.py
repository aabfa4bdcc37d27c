"""Multiple choice by loglikelihood: a request per choice; `acc`, `acc_norm` (by length) and
`mc2` (the probability mass of the true choices)."""

from __future__ import annotations

import math
from typing import Any

from gnomon.engines.base import ScoreRequest, ScoreResult
from gnomon.modes.base import Answer, Mode
from gnomon.prompts import Sample


def _argmax(values: list[float]) -> int:
    """First index of the maximum, as numpy's argmax breaks ties."""
    return max(range(len(values)), key=lambda i: (values[i], -i))


def true_mass(logprobs: list[float], labels: tuple[int, ...]) -> float:
    """TruthfulQA's MC2: the share of the choices' total probability that the true ones hold.
    Shifted by the largest logprob first, so that long answers whose probabilities all underflow
    still give their ratio (lm-evaluation-harness exponentiates them as they are)."""
    top = max(logprobs)
    probs = [math.exp(lp - top) for lp in logprobs]
    return sum(p for p, label in zip(probs, labels, strict=True) if label) / sum(probs)


class ChoiceMode(Mode):
    verb = "score"

    def requests(self, sample: Sample) -> list[ScoreRequest]:
        delim = self.spec.prompt.target_delimiter
        if sample.continuation is not None:  # each choice is a context; one text scored after
            return [
                ScoreRequest(sample.context + choice, delim + sample.continuation)
                for choice in sample.choices
            ]
        return [ScoreRequest(sample.context, delim + choice) for choice in sample.choices]

    def legacy_answers(self, sample: Sample, payload: dict[str, Any]) -> list[Answer] | None:
        logprobs, greedy = payload.get("choice_logprobs"), payload.get("choice_greedy")
        if not isinstance(logprobs, list) or len(logprobs) != len(sample.choices):
            return None
        if not isinstance(greedy, list) or len(greedy) != len(logprobs):
            return None
        truncated = bool(payload.get("truncated"))  # stored per sample: every choice shares it
        pairs = zip(logprobs, greedy, strict=True)
        return [ScoreResult(float(lp), bool(g), truncated) for lp, g in pairs]

    def result(self, sample: Sample, answers: list[ScoreResult]) -> dict[str, Any]:
        logprobs = [a.logprob for a in answers]
        pred = _argmax(logprobs)
        # acc_norm divides by the choice text's length in characters (lm-evaluation-harness)
        pred_norm = _argmax(
            [lp / max(1, len(c)) for lp, c in zip(logprobs, sample.choices, strict=True)]
        )
        golds = sample.golds  # any right choice counts, where a row has several
        metrics = {
            "acc": float(pred in golds),
            "acc_norm": float(pred_norm in golds),
        }
        if sample.labels:
            metrics["mc2"] = true_mass(logprobs, sample.labels)
        return {
            "prediction": pred,
            "prediction_text": sample.choices[pred],
            "prediction_norm": pred_norm,  # the choice acc_norm picked
            "target": sample.target,
            "target_text": " | ".join(sample.choices[i] for i in golds),
            # where choices carry truth labels, any true answer picked is right (mc2's sense);
            # likewise any of several right choices (AGIEval's gold lists)
            "correct": bool(sample.labels[pred]) if sample.labels else pred in golds,
            "metrics": {name: metrics[name] for name in self.spec.metrics if name in metrics},
            "choices": list(sample.choices),
            "choice_logprobs": logprobs,
            "choice_greedy": [a.is_greedy for a in answers],
            "extractor": "loglikelihood",
            "truncated": any(a.truncated for a in answers),
        }
