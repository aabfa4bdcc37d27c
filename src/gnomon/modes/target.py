"""The target's own log-likelihood: one request per sample, the continuation being the target
(lm-evaluation-harness's `loglikelihood` output type, LAMBADA's last word).

`acc` is 1 when every target token was the model's greedy choice; the log-likelihood itself is
kept for the corpus `perplexity` (exp of minus its mean over the corpus), which no per-sample
number can average to.
"""

from __future__ import annotations

from typing import Any

from gnomon.engines.base import ScoreRequest, ScoreResult
from gnomon.modes.base import Mode
from gnomon.prompts import Sample


class TargetMode(Mode):
    verb = "score"

    def requests(self, sample: Sample) -> list[ScoreRequest]:
        # lm-evaluation-harness sends the target as it is: no target delimiter in front
        return [ScoreRequest(sample.context, str(sample.target))]

    def result(self, sample: Sample, answers: list[ScoreResult]) -> dict[str, Any]:
        (answer,) = answers
        metrics = {"acc": float(answer.is_greedy)}
        return {
            "prediction": "greedy" if answer.is_greedy else "not greedy",
            "target": sample.target,
            "correct": answer.is_greedy,
            "metrics": {name: metrics[name] for name in self.spec.metrics if name in metrics},
            "loglikelihood": answer.logprob,
            # what each corpus metric aggregates, as lm-evaluation-harness's process_results
            "corpus": {"perplexity": answer.logprob} if "perplexity" in self.spec.metrics else {},
            "extractor": "loglikelihood",
            "truncated": answer.truncated,
        }
