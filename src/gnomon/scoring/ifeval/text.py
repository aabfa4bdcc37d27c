"""Text measurements the checkers share: words, sentences and language, each with the library
the reference uses, so counts agree on the same text."""

from __future__ import annotations

import functools
import re
from typing import Any

from gnomon.errors import UserError

_WORD = re.compile(r"\w+")


def count_words(text: str) -> int:
    """Runs of word characters (the reference tokenises with `\\w+`)."""
    return len(_WORD.findall(text))


class MissingPunkt(UserError, LookupError):
    """NLTK's Punkt data is not installed (no package ships it; NLTK's downloader does)."""


_PUNKT_HINT = (
    "IFEval's sentence and capital-word counts need NLTK's English Punkt model "
    "(install it once: python -m nltk.downloader punkt_tab)"
)


@functools.lru_cache(maxsize=1)
def _sentence_splitter() -> Any:
    """NLTK's pretrained English Punkt model: sentence counts depend on its learnt
    abbreviations, so no rule-based splitter can stand in for it."""
    from nltk.tokenize import PunktTokenizer

    try:
        return PunktTokenizer("english")
    except LookupError:
        raise MissingPunkt(_PUNKT_HINT) from None


def punkt_installed() -> bool:
    try:
        _sentence_splitter()
    except MissingPunkt:
        return False
    return True


def count_sentences(text: str) -> int:
    return len(_sentence_splitter().tokenize(text))


def word_tokens(text: str) -> list[str]:
    """NLTK's Treebank word tokens (the reference counts capitalised words over these)."""
    import nltk

    _sentence_splitter()  # word_tokenize splits sentences first: fail with the hint if absent
    return list(nltk.word_tokenize(text))


class UndetectableLanguage(Exception):
    """langdetect found no features to decide on (e.g. digits only)."""


def detect_language(text: str) -> str:
    """The ISO 639-1 code langdetect gives. Seeded: langdetect samples, and an unseeded run
    can flip on borderline text."""
    import langdetect
    from langdetect import DetectorFactory

    DetectorFactory.seed = 0
    try:
        return str(langdetect.detect(text))
    except langdetect.LangDetectException as exc:
        raise UndetectableLanguage(str(exc)) from exc
