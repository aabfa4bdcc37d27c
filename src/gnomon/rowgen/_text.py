"""Shared pieces of made-up text for the row makers (re-exported from `gnomon.tiny`, whose
vocabulary the tiny models' tokenizer is trained on)."""

from __future__ import annotations

import random

from gnomon.tiny import (
    ADJECTIVES,
    NAMES,
    NOUNS,
    VERBS,
    _clause,
    _noun_phrase,
    _options,
    _rng,
    _sentence,
)

__all__ = [
    "ADJECTIVES",
    "NAMES",
    "NOUNS",
    "VERBS",
    "clause",
    "letter",
    "noun_phrase",
    "options",
    "question",
    "rng",
    "sentence",
]

rng = _rng
sentence = _sentence
options = _options
clause = _clause
noun_phrase = _noun_phrase


def letter(index: int) -> str:
    return "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[index]


def question(r: random.Random) -> str:
    return f"Which of the following {r.choice(VERBS)} {_noun_phrase(r)}?"
