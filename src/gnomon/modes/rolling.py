"""A whole text's log-likelihood (lm-evaluation-harness's `loglikelihood_rolling`): perplexity
per word and per byte, and bits per byte, over the corpus.

The target is the text scored (lm-evaluation-harness's doc_to_target); the rendered template
is the text whose words and bytes the metrics divide by: the same text for most corpora, the
page as published for WikiText, whose words lm-evaluation-harness counts before detokenising.
Each metric is a ratio of sums over the corpus, so a sample carries its (log-likelihood, count)
item, as lm-evaluation-harness's process_results returns it, and no per-sample number.
"""

from __future__ import annotations

import re
from typing import Any

from gnomon import text
from gnomon.engines.base import RollingRequest, ScoreResult
from gnomon.modes.base import Mode
from gnomon.prompts import Sample

_SPACE = re.compile(r"\s+")


def count_words(value: str) -> int:
    """lm-evaluation-harness's word count: the pieces between runs of whitespace (an edge
    run counts an empty piece)."""
    return len(_SPACE.split(value))


def count_bytes(value: str) -> int:
    return len(text.encode(value))


class RollingMode(Mode):
    verb = "rolling"

    def requests(self, sample: Sample) -> list[RollingRequest]:
        return [RollingRequest(str(sample.target))]

    def scored_by(self) -> str:
        return "scored by loglikelihood"

    def result(self, sample: Sample, answers: list[ScoreResult]) -> dict[str, Any]:
        (answer,) = answers
        counted = sample.context
        words, n_bytes = count_words(counted), count_bytes(counted)
        items = {
            "word_perplexity": [answer.logprob, words],
            "byte_perplexity": [answer.logprob, n_bytes],
            "bits_per_byte": [answer.logprob, n_bytes],
        }
        return {
            "prediction": answer.logprob,
            "target": sample.target,
            "correct": False,
            "metrics": {},
            "loglikelihood": answer.logprob,
            "words": words,
            "bytes": n_bytes,
            "corpus": {name: items[name] for name in self.spec.metrics if name in items},
            "extractor": "loglikelihood",
            "truncated": answer.truncated,
        }
