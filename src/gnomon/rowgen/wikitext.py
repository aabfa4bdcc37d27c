"""WikiText-2 at document level (`EleutherAI/wikitext_document_level`, `wikitext-2-raw-v1`): one
field, `page`, a whole article as the raw WikiText file writes it, every line opening with a
space and ending " \\n": headings ` = Title = ` and ` = = Section = = `, blank ` ` lines, and
the tokeniser's marks the detokeniser undoes (` @-@ `, ` @,@ `, ` @.@ `, spaced punctuation,
brackets and quotes, ` 's`). Pages are long enough for several windows of a small model."""

from __future__ import annotations

import random

from gnomon.rowgen import RowDict, rows
from gnomon.rowgen._text import NAMES, NOUNS, rng, sentence


def _tokenised(r: random.Random) -> str:
    """A sentence in WikiText's tokenised form."""
    words = sentence(r).rstrip(".").replace(",", " ,").split(" ")
    extras = [
        lambda: f"{r.randint(1, 99)} @,@ {r.randint(100, 999)}",
        lambda: f"{r.randint(1, 9)} @.@ {r.randint(0, 9)}",
        lambda: f"{r.choice(NOUNS)} @-@ {r.choice(NOUNS)}",
        lambda: f"( {r.choice(NOUNS)} {r.randint(1900, 2020)} )",
        lambda: f'" {r.choice(NOUNS)} {r.choice(NOUNS)} "',
        lambda: f"{r.choice(NAMES)} 's {r.choice(NOUNS)}",
        lambda: f"{r.randint(10, 90)} ° {r.choice(['C', 'F'])}",
        lambda: f"{r.choice(NOUNS)} : {r.choice(NOUNS)} ; {r.choice(NOUNS)}",
    ]
    for _ in range(r.randint(0, 3)):
        words.insert(r.randint(1, len(words)), r.choice(extras)())
    return " ".join(words) + " ."


def _paragraph(r: random.Random) -> str:
    return " " + " ".join(_tokenised(r) for _ in range(r.randint(2, 5))) + " \n"


@rows("wikitext", sizes={"test": 6, "validation": 4, "train": 4})
def make(split: str, n: int, seed: int) -> list[RowDict]:
    r = rng("wikitext", split, seed)
    out = []
    for i in range(n):
        title = f"{r.choice(NAMES)} {r.choice(NOUNS).capitalize()}"
        lines = [f" = {title} = \n", " \n", _paragraph(r), " \n"]
        for _ in range(1 + i % 3):
            lines += [f" = = {r.choice(NOUNS).capitalize()} = = \n", " \n"]
            lines += [_paragraph(r) for _ in range(r.randint(1, 3))]
            if r.random() < 0.4:
                lines += [f" = = = {r.choice(NOUNS).capitalize()} = = = \n", " \n", _paragraph(r)]
            lines.append(" \n")
        out.append({"page": "".join(lines)})
    return out
