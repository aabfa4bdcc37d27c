"""Made-up translation pairs for the WMT row makers: word-for-word glosses of English
sentences (with each language's own script and diacritics), so that references and model
outputs share some words and the corpus scores are not all zero."""

from __future__ import annotations

import random

from gnomon.rowgen._text import rng, sentence

_GLOSSES = {
    "de": {
        "the": "die", "and": "und", "because": "weil", "while": "während", "but": "aber",
        "so": "also", "although": "obwohl", "river": "Fluss", "garden": "Garten",
        "teacher": "Lehrer", "village": "Dorf", "bridge": "Brücke", "small": "kleine",
        "heavy": "schwere", "warm": "warme", "moves": "bewegt", "holds": "hält",
        "near": "nahe", "under": "unter", "across": "über", "slowly": "langsam",
    },
    "ro": {
        "the": "", "and": "și", "because": "pentru că", "while": "în timp ce", "but": "dar",
        "so": "așa că", "although": "deși", "river": "râul", "garden": "grădina",
        "teacher": "profesorul", "village": "satul", "bridge": "podul", "small": "mic",
        "heavy": "greu", "warm": "cald", "moves": "mișcă", "holds": "ține",
        "near": "lângă", "under": "sub", "across": "peste", "slowly": "încet",
    },
    "fr": {
        "the": "le", "and": "et", "because": "parce que", "while": "pendant que", "but": "mais",
        "so": "donc", "although": "bien que", "river": "rivière", "garden": "jardin",
        "teacher": "professeur", "village": "village", "bridge": "pont", "small": "petit",
        "heavy": "lourd", "warm": "chaud", "moves": "déplace", "holds": "tient",
        "near": "près de", "under": "sous", "across": "à travers", "slowly": "lentement",
    },
}  # fmt: skip


def gloss(english: str, lang: str) -> str:
    words = []
    for word in english.split(" "):
        bare = word.rstrip(".,")
        glossed = _GLOSSES[lang].get(bare.lower(), bare)
        if glossed:
            words.append(glossed + word[len(bare) :])
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def pairs(family: str, lang: str, split: str, n: int, seed: int) -> list[dict]:
    """`n` rows of `{"translation": {lang: ..., "en": ...}}`, languages in sorted order."""
    r: random.Random = rng(family, lang, split, seed)
    out = []
    for i in range(n):
        english = " ".join(sentence(r) for _ in range(1 + i % 2))
        if i % 5 == 3:  # quotes and a number, as news text has
            english = f'"{english}" said the {r.randint(2, 98)} teachers.'
        # the dataset's Translation feature keeps its languages in sorted order
        pair = {lang: gloss(english, lang), "en": english}
        out.append({"translation": dict(sorted(pair.items()))})
    return out
