"""XNLI rows (facebook/xnli, one config per language): `premise`, `hypothesis` and `label` (0
entailment, 1 neutral, 2 contradiction), made per language. Rows carry their language in
`language`, the field the loader tags hub rows with (`source.subset_field`)."""

from __future__ import annotations

from gnomon.rowgen import RowDict, rows
from gnomon.rowgen._langs import sentence
from gnomon.rowgen._text import rng

LANGUAGES = [
    "ar",
    "bg",
    "de",
    "el",
    "en",
    "es",
    "fr",
    "hi",
    "ru",
    "sw",
    "th",
    "tr",
    "ur",
    "vi",
    "zh",
]


@rows("xnli", sizes={"validation": 30, "train": 15})
def make(split: str, n: int, seed: int) -> list[RowDict]:
    """`n` rows spread over the 15 languages, in the order of lm-eval's `xnli` group."""
    r = rng("xnli", split, seed)
    k = len(LANGUAGES)
    out = []
    for i, language in enumerate(LANGUAGES):
        for _ in range(n // k + (i < n % k)):
            premise = sentence(r, language, short=True)
            out.append(
                {
                    "premise": premise,
                    "hypothesis": sentence(r, language, short=True),
                    "label": r.randrange(3),
                    "language": language,
                }
            )
    return out
