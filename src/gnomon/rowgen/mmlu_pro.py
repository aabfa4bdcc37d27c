"""MMLU-Pro rows (TIGER-Lab/MMLU-Pro): `question_id`, `question`, `options` (up to ten; some rows
have fewer, and some option texts carry stray spaces), `answer` (the letter), `answer_index`,
`cot_content` (empty on test rows; on validation rows the worked answer, starting "A: Let's think
step by step."), `category` (with spaces: "computer science"), `src`."""

from __future__ import annotations

import random

from gnomon.rowgen import RowDict, rows
from gnomon.rowgen._text import letter, options, question, rng, sentence

CATEGORIES = ["computer science", "math", "law"]


def _cot(r: random.Random, answer: str, i: int) -> str:
    steps = f"A: Let's think step by step. {sentence(r)} The answer is ({answer})."
    if i % 4 == 3:  # a worked answer without the usual opening is shown as it is
        return f"Let's see. {sentence(r)} The answer is ({answer})."
    return steps


@rows("mmlu_pro", sizes={"test": 12, "validation": 15})
def make(split: str, n: int, seed: int) -> list[RowDict]:
    r = rng("mmlu_pro", split, seed)
    out = []
    for i in range(n):
        category = CATEGORIES[i % len(CATEGORIES)]
        k = 10 if i % 5 else r.randint(4, 9)
        opts = options(r, k)
        if i % 3 == 1:
            opts[0] = f" {opts[0]} "  # lm-eval strips each option
        gold = r.randrange(k)
        answer = letter(gold)
        out.append(
            {
                "question_id": 70 + i if split == "test" else i,
                "question": question(r) + ("\n" + sentence(r) if i % 2 else ""),
                "options": opts,
                "answer": answer,
                "answer_index": gold,
                "cot_content": _cot(r, answer, i) if split == "validation" else "",
                "category": category,
                "src": f"ori_mmlu-{category.replace(' ', '_')}",
            }
        )
    return out
