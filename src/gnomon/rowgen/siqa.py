"""Social IQa rows (`lighteval/siqa`): context, question, three answers, label "1".."3"."""

from __future__ import annotations

from gnomon.rowgen import RowDict, rows
from gnomon.rowgen._text import NAMES, clause, options, rng, sentence


@rows("siqa", sizes={"validation": 12, "train": 8})
def make(split: str, n: int, seed: int) -> list[RowDict]:
    r = rng("siqa", split, seed)
    out = []
    for _ in range(n):
        name = r.choice(NAMES)
        answers = options(r, 3)
        out.append(
            {
                "context": f"{name} saw that {clause(r)}. {sentence(r)}",
                "question": f"What will {name} want to do next?",
                "answerA": answers[0],
                "answerB": answers[1],
                "answerC": answers[2],
                "label": str(r.randint(1, 3)),  # a string in the published files
            }
        )
    return out
