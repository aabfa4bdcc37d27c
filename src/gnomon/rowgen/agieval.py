"""AGIEval rows (hails/agieval-<subset>, one dataset per subset): `query` (AGIEval's zero-shot
prompt, the question and its lettered options, ending in "the answer is" or "我们应选择"),
`choices` ("(A)option", ...) and `gold`, a list of right option indices: several in the
multiple-answer subsets (JEC-QA and Gaokao physics)."""

from __future__ import annotations

import random

from gnomon.rowgen import RowDict, rows
from gnomon.rowgen._text import letter, options, rng, sentence
from gnomon.rowgen._zh import options as zh_options
from gnomon.rowgen._zh import stem as zh_stem

# subset -> (language, number of options, whether a passage precedes the question)
SUBSETS: dict[str, tuple[str, int, bool]] = {
    "aqua_rat": ("en", 5, False),
    "gaokao_english": ("en", 4, True),
    "logiqa_en": ("en", 4, True),
    "lsat_ar": ("en", 5, True),
    "lsat_lr": ("en", 5, True),
    "lsat_rc": ("en", 5, True),
    "sat_en_without_passage": ("en", 4, False),
    "sat_en": ("en", 4, True),
    "sat_math": ("en", 4, False),
    "gaokao_biology": ("zh", 4, False),
    "gaokao_chemistry": ("zh", 4, False),
    "gaokao_chinese": ("zh", 4, True),
    "gaokao_geography": ("zh", 4, False),
    "gaokao_history": ("zh", 4, False),
    "gaokao_mathqa": ("zh", 4, False),
    "gaokao_physics": ("zh", 4, False),
    "jec_qa_ca": ("zh", 4, True),
    "jec_qa_kd": ("zh", 4, False),
    "logiqa_zh": ("zh", 4, True),
}
MULTI_ANSWER = {"gaokao_physics", "jec_qa_ca", "jec_qa_kd"}


def _row(r: random.Random, subset: str) -> RowDict:
    language, k, has_passage = SUBSETS[subset]
    if language == "en":
        texts = options(r, k)
        passage = " ".join(sentence(r) for _ in range(r.randint(1, 3))) if has_passage else ""
        question = f"{sentence(r, max_clauses=2)} Which choice is right?"
    else:
        texts = zh_options(r, k)
        passage = "".join(zh_stem(r).strip() for _ in range(2)) if has_passage else ""
        question = zh_stem(r).strip()
    labelled = [f"({letter(i)}){t}" for i, t in enumerate(texts)]
    last = letter(k - 1)
    if language == "en":
        query = f"{passage}Q: {question} Answer Choices: {' '.join(labelled)}\n"
        query += f"A: Among A through {last}, the answer is"
    else:
        query = (
            f"{passage}问题：{question} 选项：{' '.join(labelled)}\n答案：从A到{last}, 我们应选择"
        )
    many = subset in MULTI_ANSWER and r.random() < 0.4
    gold = sorted(r.sample(range(k), r.randint(2, 3))) if many else [r.randrange(k)]
    return {"query": query, "choices": labelled, "gold": gold}


def _register(subset: str) -> None:
    @rows(f"agieval_{subset}", sizes={"test": 10})
    def make(split: str, n: int, seed: int) -> list[RowDict]:
        r = rng(f"agieval_{subset}", split, seed)
        return [_row(r, subset) for _ in range(n)]


for _subset in SUBSETS:
    _register(_subset)
