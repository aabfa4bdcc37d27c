"""SciQ rows (`allenai/sciq`): question, three distractors, the correct answer and a support
paragraph that may be empty or start with whitespace."""

from __future__ import annotations

from gnomon.rowgen import RowDict, rows
from gnomon.rowgen._text import options, question, rng, sentence


@rows("sciq", sizes={"test": 12, "validation": 8, "train": 8})
def make(split: str, n: int, seed: int) -> list[RowDict]:
    r = rng("sciq", split, seed)
    out = []
    for i in range(n):
        answers = options(r, 4)
        support = " ".join(sentence(r) for _ in range(r.randint(1, 3)))
        if i % 4 == 1:
            support = ""
        elif i % 4 == 2:
            support = "\n " + support  # lm-eval lstrips it
        out.append(
            {
                "question": question(r),
                "distractor3": answers[0],
                "distractor1": answers[1],
                "distractor2": answers[2],
                "correct_answer": answers[3],
                "support": support,
            }
        )
    return out
