"""Answer extraction and normalisation for generated text, as lm-evaluation-harness defines them."""

from __future__ import annotations

import re
import string

from gnomon.hub.spec import Extractor, Normalize
from gnomon.scoring import deadline


class RegexExtractor:
    """All matches of a regex; keep the `group_select`-th, and its first non-empty group."""

    def __init__(self, spec: Extractor) -> None:
        assert spec.regex is not None, "the spec requires `regex` of a regex extractor"
        self.name = spec.name
        self.regex = re.compile(spec.regex)
        self.group_select = spec.group_select
        self.fallback = spec.fallback

    def __call__(self, text: str) -> str:
        with deadline.time_limit(deadline.REGEX_SECONDS, f"regex extractor {self.name!r}"):
            matches = self.regex.findall(text)
        if not matches:
            return self.fallback
        try:
            match = matches[self.group_select]
        except IndexError:
            return self.fallback
        if isinstance(match, tuple):
            match = next((m for m in match if m), None)
            if match is None:
                return self.fallback
        return match.strip()


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
