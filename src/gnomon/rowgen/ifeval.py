"""IFEval rows (`google/IFEval`, split train): key, prompt, instruction_id_list and kwargs, a
list parallel to the instructions whose every entry has all of the dataset's argument keys,
None where the instruction takes no such argument (as the hub's Arrow struct stores them).

The instruction kinds drawn are those whose checkers need neither langdetect (it samples, so an
unseeded reference can flip) nor NLTK's Punkt data (no package installs it); the real-data
proof in tests/test_hub_ifeval.py covers every kind.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from gnomon.rowgen import RowDict, rows
from gnomon.rowgen._text import NOUNS, rng, sentence

ARG_KEYS = (
    "num_highlights", "relation", "num_words", "num_placeholders", "prompt_to_repeat",
    "num_bullets", "section_spliter", "num_sections", "capital_relation", "capital_frequency",
    "keywords", "num_paragraphs", "language", "let_relation", "letter", "let_frequency",
    "end_phrase", "forbidden_words", "keyword", "frequency", "num_sentences", "postscript_marker",
    "first_word", "nth_paragraph",
)  # fmt: skip

Draw = Callable[[random.Random, str], dict[str, Any]]


def _relation(r: random.Random) -> str:
    return r.choice(["less than", "at least"])


_KINDS: dict[str, Draw] = {
    "punctuation:no_comma": lambda r, p: {},
    "detectable_format:number_highlighted_sections": lambda r, p: {
        "num_highlights": r.randint(1, 3)
    },
    "length_constraints:number_words": lambda r, p: {
        "relation": _relation(r),
        "num_words": r.choice([5, 12, 40]),
    },
    "keywords:existence": lambda r, p: {"keywords": r.sample(NOUNS, 2)},
    "keywords:forbidden_words": lambda r, p: {"forbidden_words": r.sample(NOUNS, 2)},
    "keywords:frequency": lambda r, p: {
        "keyword": r.choice(NOUNS),
        "frequency": r.randint(1, 3),
        "relation": _relation(r),
    },
    "keywords:letter_frequency": lambda r, p: {
        "letter": r.choice("aeost"),
        "let_frequency": r.randint(2, 8),
        "let_relation": _relation(r),
    },
    "detectable_format:title": lambda r, p: {},
    "detectable_format:json_format": lambda r, p: {},
    "detectable_format:number_bullet_lists": lambda r, p: {"num_bullets": r.randint(1, 3)},
    "detectable_format:constrained_response": lambda r, p: {},
    "detectable_format:multiple_sections": lambda r, p: {
        "section_spliter": r.choice(["Section", "PART"]),
        "num_sections": r.randint(2, 3),
    },
    "detectable_content:number_placeholders": lambda r, p: {"num_placeholders": r.randint(1, 2)},
    "detectable_content:postscript": lambda r, p: {
        "postscript_marker": r.choice(["P.S.", "P.P.S"])
    },
    "startend:quotation": lambda r, p: {},
    "startend:end_checker": lambda r, p: {"end_phrase": "Is there anything else I can help with?"},
    "combination:two_responses": lambda r, p: {},
    "combination:repeat_prompt": lambda r, p: {"prompt_to_repeat": p},
    "length_constraints:number_paragraphs": lambda r, p: {"num_paragraphs": r.randint(1, 3)},
    "length_constraints:nth_paragraph_first_word": lambda r, p: {
        "num_paragraphs": 2,
        "nth_paragraph": r.randint(1, 2),
        "first_word": r.choice(NOUNS),
    },
}


@rows("ifeval", sizes={"train": 12})
def make(split: str, n: int, seed: int) -> list[RowDict]:
    r = rng("ifeval", split, seed)
    kinds = sorted(_KINDS)
    out = []
    for i in range(n):
        task = sentence(r)
        chosen = r.sample(kinds, r.randint(1, 3))
        kwargs = [dict.fromkeys(ARG_KEYS) | _KINDS[kind](r, task) for kind in chosen]
        out.append(
            {
                "key": 1000 + i,
                "prompt": f"{task} Follow these rules: {', '.join(chosen)}.",
                "instruction_id_list": chosen,
                "kwargs": kwargs,
            }
        )
    return out
