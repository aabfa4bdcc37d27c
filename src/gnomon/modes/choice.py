"""Multiple choice by loglikelihood: a request per choice; `acc` and `acc_norm` (by length)."""

from __future__ import annotations

from typing import Any

from gnomon.engines.base import ScoreRequest, ScoreResult
from gnomon.modes.base import Answer, Mode
from gnomon.prompts import Sample


def _argmax(values: list[float]) -> int:
    """First index of the maximum, as numpy's argmax breaks ties."""
    return max(range(len(values)), key=lambda i: (values[i], -i))


class ChoiceMode(Mode):
    verb = "score"

    def requests(self, sample: Sample) -> list[ScoreRequest]:
        delim = self.spec.prompt.target_delimiter
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
        metrics = {
            "acc": float(pred == sample.target),
            "acc_norm": float(pred_norm == sample.target),
        }
        return {
            "prediction": pred,
            "prediction_text": sample.choices[pred],
            "prediction_norm": pred_norm,  # the choice acc_norm picked
            "target": sample.target,
            "target_text": sample.choices[sample.gold],
            "correct": pred == sample.target,
            "metrics": {name: metrics[name] for name in self.spec.metrics if name in metrics},
            "choices": list(sample.choices),
            "choice_logprobs": logprobs,
            "choice_greedy": [a.is_greedy for a in answers],
            "extractor": "loglikelihood",
            "truncated": any(a.truncated for a in answers),
        }
