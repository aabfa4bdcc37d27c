"""An ordered answer-extraction pipeline: each extractor either finds an answer or says it found
none, and the pipeline takes the first that found one.

Extractors return None rather than a fallback string so that a pipeline can tell "nothing here,
try the next one" from "found this"; the fallback (lm-evaluation-harness's `[invalid]`) is added
once, by `run_pipeline`, so a single regex extractor scores exactly as lm-evaluation-harness's
regex filter does.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

from gnomon.hub.spec import ChoiceMatch
from gnomon.hub.spec import Extractor as ExtractorSpec
from gnomon.scoring import deadline

__all__ = ["Extractor", "MathExtractor", "MultiChoiceExtractor", "RegexExtractor", "math_equal"]
__all__ += ["BoxedExtractor", "MinervaExtractor", "run_pipeline"]

INVALID = "[invalid]"

# math-verify bounds each parse and comparison with SIGALRM, which Python allows only in the
# main thread; elsewhere the bound is dropped (None) rather than failing every sample.
MATH_TIMEOUT_SECONDS = 5
# A text can hold many candidate expressions; parsing stops at the first that parses, so this
# only bounds pathological inputs (a megabyte of digits) when no timeout is available.
MATH_MAX_CHARS = 20_000


@runtime_checkable
class Extractor(Protocol):
    """Finds an answer in a model's text; None means it found nothing."""

    name: str

    def __call__(self, text: str) -> str | None: ...


class RegexExtractor:
    """All matches of a regex; keep the `group_select`-th, and its first non-empty group.

    lm-evaluation-harness's regex filter, except that "no match", "no such match index" and
    "every group empty" give None, so a pipeline can try its next extractor; the spec's fallback
    is kept as `fallback` (`gnomon.extract.RegexExtractor` returns it)."""

    def __init__(self, spec: ExtractorSpec) -> None:
        assert spec.regex is not None, "the spec requires `regex` of a regex extractor"
        self.name = spec.name
        self.regex = re.compile(spec.regex)
        self.group_select = spec.group_select
        self.fallback = spec.fallback

    def __call__(self, text: str) -> str | None:
        with deadline.time_limit(deadline.REGEX_SECONDS, f"regex extractor {self.name!r}"):
            matches = self.regex.findall(text)
        if not matches:
            return None
        try:
            match = matches[self.group_select]
        except IndexError:
            return None
        if isinstance(match, tuple):
            match = next((m for m in match if m), None)
            if match is None:
                return None
        return match.strip()


@lru_cache(maxsize=1)
def _unicode_punctuation() -> dict[int, None]:
    return dict.fromkeys(
        i for i in range(sys.maxunicode) if unicodedata.category(chr(i)).startswith("P")
    )


class MultiChoiceExtractor:
    """lm-evaluation-harness's `multi_choice_regex` filter: the letter regex; where it finds
    nothing, the text of one of the row's choices written in the answer (compared after the
    spec's `choice_match` clean-up, longest choice first), given as that choice's "(X)"; else a
    letter after a colon ("Answer: C"), as "(C)". It reads the row's choices, so it is called
    with them: `extractor(text, choices)`."""

    def __init__(self, spec: ExtractorSpec) -> None:
        assert spec.regex is not None, "the spec requires `regex` of a multi_choice extractor"
        self.name = spec.name
        self.regex = re.compile(spec.regex)
        self.group_select = spec.group_select
        self.match = spec.choice_match or ChoiceMatch()

    def _find(self, regex: re.Pattern[str], text: str, convert: dict[str, str]) -> str:
        with deadline.time_limit(deadline.REGEX_SECONDS, f"extractor {self.name!r}"):
            found = regex.findall(text)
        if not found:
            return ""
        try:
            match = found[self.group_select]
        except IndexError:  # lm-evaluation-harness fails here; gnomon finds nothing
            return ""
        if isinstance(match, tuple):
            match = next((m for m in match if m), "")
        match = match.strip()
        return convert.get(match, match) if match else match

    def _clean(self, text: str) -> str:
        with deadline.time_limit(deadline.REGEX_SECONDS, f"extractor {self.name!r}"):
            for pattern in self.match.regexes_to_ignore:
                text = re.sub(pattern, "", text)
        if self.match.ignore_case:
            text = text.lower()
        if self.match.ignore_punctuation:
            text = text.translate(_unicode_punctuation())
        return text

    def __call__(self, text: str, choices: Sequence[str] = ()) -> str | None:
        choices = choices[:26]  # lettered A..Z: a 27th option has no letter to be answered by
        found = self._find(self.regex, text, {})
        if not found:
            cleaned = [self._clean(c.strip()) for c in choices]
            to_letter = {c: f"({chr(65 + i)})" for i, c in enumerate(cleaned)}  # last one wins
            # longest first, so that a choice that begins another cannot shadow it
            branches = sorted((re.escape(c) for c in cleaned), key=len, reverse=True)
            found = self._find(re.compile("|".join(branches)), self._clean(text), to_letter)
        if not found:
            letters = [chr(65 + i) for i in range(len(choices))]
            after_colon = re.compile(rf":[\s]*({'|'.join(letters)})")
            found = self._find(after_colon, text, {x: f"({x})" for x in letters})
        return found or None


def run_pipeline(
    extractors: Sequence[Extractor],
    text: str,
    fallback: str = INVALID,
    choices: Sequence[str] = (),
) -> tuple[str, str]:
    """(answer, name of the extractor that found it); (fallback, "none") when none did.
    `choices`: the row's options, which a multi-choice extractor also looks for."""
    for extractor in extractors:
        if isinstance(extractor, MultiChoiceExtractor):
            value = extractor(text, choices)
        else:
            value = extractor(text)
        if value is not None:
            return value, extractor.name
    return fallback, "none"


def _math_timeout() -> int | None:
    return MATH_TIMEOUT_SECONDS if threading.current_thread() is threading.main_thread() else None


@lru_cache(maxsize=1)
def _math_verify() -> Any:
    """Imported on first use: it pulls in sympy, which costs every other command a second."""
    import math_verify

    # It warns once on stderr when a timeout is disabled (our worker threads) and on every timeout
    # (scored as not equal); neither is for the person running an evaluation.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    return math_verify


@lru_cache(maxsize=1)
def _extraction_config() -> tuple[Any, ...]:
    mv = _math_verify()
    # LaTeX first (\boxed{}, $...$, "the final answer is"), then plain numbers and expressions;
    # units and `\text{}` are dropped by the LaTeX normalisation.
    return (mv.LatexExtractionConfig(), mv.ExprExtractionConfig())


_DELIMITED = re.compile(r"\$|\\\(|\\\[|\\boxed")
_COMMAND = re.compile(r"\\[A-Za-z]+")
_WORD = re.compile(r"[A-Za-z]{2,}")


def _is_bare_answer(text: str) -> bool:
    """A formula on its own (`[1,3)`, `x=5`, `\\frac{3}{4}`) rather than prose around one (any
    word of two letters or more, LaTeX command names aside)."""
    return not _DELIMITED.search(text) and not _WORD.search(_COMMAND.sub(" ", text))


def _parse(text: str) -> list[Any]:
    """math-verify's parse. A bare answer is read as one LaTeX formula, as plain-text extraction
    would cut `[1,3)` down to a number; prose is searched for its answer."""
    mv = _math_verify()
    # An escaped dollar is a currency sign, which math-verify's plain-text reading stops at.
    text = text[-MATH_MAX_CHARS:].replace("\\$", " ")
    config = _extraction_config()
    timeout = _math_timeout()
    if _is_bare_answer(text):
        found = mv.parse(f"${text}$", config, parsing_timeout=timeout)
        if found:
            return found
    return mv.parse(text, config, parsing_timeout=timeout)


class MathExtractor:
    """The final mathematical answer of a text (math-verify): `\\boxed{}` first, then LaTeX
    formulas, then "the answer is ..." and plain numbers or expressions.

    Returns the answer's text as math-verify extracted it (e.g. `\\frac{3}{4}`, `18`), which
    `math_equal` reads back to the same value."""

    name = "math"

    def __call__(self, text: str) -> str | None:
        found = _parse(text)
        strings = [item for item in found if isinstance(item, str)]
        return strings[-1].strip() if strings else None


def math_equal(prediction: str, reference: str) -> bool:
    """Whether a prediction (an extracted answer or a whole response) equals a reference answer
    mathematically: `\\frac{1}{2}` = `0.5` = `1/2`, `$18` = `18.00`, `x=5` = `5`, intervals by
    their ends and openness. The reference is read as math-verify's gold (the comparison is not
    symmetric: it decides, e.g., when an assignment `x=5` stands for its value)."""
    mv = _math_verify()
    gold = _parse(reference)
    if not gold:
        return False
    target = _parse(prediction)
    if not target:
        return False
    return bool(mv.verify(gold, target, timeout_seconds=_math_timeout()))


class MinervaExtractor:
    """Minerva's final answer: the X of "Final Answer: The final answer is X. I hope it is
    correct.", normalised as Minerva normalises it; None when there is no such line."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, text: str) -> str | None:
        from gnomon.scoring.math_answers import minerva_final_answer, minerva_normalize

        found = minerva_final_answer(text)
        return None if found is None else minerva_normalize(found)


class BoxedExtractor:
    """The answer as lm-eval's AIME scorer reads it: the last `\\boxed{}`, else the text between
    the first and last `$`, else the whole text (so it always finds one)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, text: str) -> str | None:
        from gnomon.scoring.math_answers import boxed_or_dollars

        return boxed_or_dollars(text)
