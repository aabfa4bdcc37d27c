"""Answer extraction and normalisation for generated text, as lm-evaluation-harness defines them."""

from __future__ import annotations

import re
import string

from gnomon.hub.spec import Normalize
from gnomon.scoring import deadline
from gnomon.scoring.extractors import RegexExtractor as PipelineRegex


class RegexExtractor(PipelineRegex):
    """lm-evaluation-harness's regex filter on its own: the pipeline's regex extractor, with the
    spec's fallback (`[invalid]`) where it finds nothing."""

    def __call__(self, text: str) -> str:
        found = super().__call__(text)
        return self.fallback if found is None else found


def normalize(text: str, rules: Normalize) -> str:
    for pattern in rules.regexes_to_ignore:
        with deadline.time_limit(deadline.REGEX_SECONDS, f"regexes_to_ignore {pattern!r}"):
            text = re.sub(pattern, "", text)
    if rules.ignore_case:
        text = text.lower()
    if rules.ignore_punctuation:
        text = text.translate(str.maketrans("", "", string.punctuation))
    return text


def exact_match(prediction: str, reference: str, rules: Normalize) -> float:
    return float(normalize(prediction, rules) == normalize(reference, rules))
