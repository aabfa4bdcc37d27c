"""WMT16 (`wmt/wmt16`, configs `de-en` and `ro-en`): one field, `translation`, a mapping from
language code to the sentence in that language. The made-up pairs are word-for-word glosses
of English sentences (with the languages' diacritics), so references and model outputs share
some words and the corpus scores are not all zero."""

from __future__ import annotations

import random

from gnomon.rowgen import RowDict, rows
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
}  # fmt: skip


def _gloss(english: str, lang: str) -> str:
    words = []
    for word in english.split(" "):
        bare = word.rstrip(".,")
        glossed = _GLOSSES[lang].get(bare.lower(), bare)
        if glossed:
            words.append(glossed + word[len(bare) :])
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def _pairs(lang: str, split: str, n: int, seed: int) -> list[RowDict]:
    r: random.Random = rng("wmt16", lang, split, seed)
    out = []
    for i in range(n):
        english = " ".join(sentence(r) for _ in range(1 + i % 2))
        if i % 5 == 3:  # quotes and a number, as news text has
            english = f'"{english}" said the {r.randint(2, 98)} teachers.'
        # the dataset's Translation feature keeps its languages in sorted order
        pair = {lang: _gloss(english, lang), "en": english}
        out.append({"translation": dict(sorted(pair.items()))})
    return out


@rows("wmt16_de_en", "wmt16_en_de", sizes={"test": 12, "validation": 8, "train": 8})
def make_de(split: str, n: int, seed: int) -> list[RowDict]:
    return _pairs("de", split, n, seed)


@rows("wmt16_ro_en", "wmt16_en_ro", sizes={"test": 12, "validation": 8, "train": 8})
def make_ro(split: str, n: int, seed: int) -> list[RowDict]:
    return _pairs("ro", split, n, seed)
