"""TruthfulQA rows (`truthfulqa/truthful_qa`, config multiple_choice): a question, mc1_targets
(one true answer, first) and mc2_targets (one or more true answers, first), each a dict of
choices and 0/1 labels."""

from __future__ import annotations

from gnomon.rowgen import RowDict, rows
from gnomon.rowgen._text import question, rng, sentence


@rows("truthfulqa_mc1", "truthfulqa_mc2", sizes={"validation": 12})
def make(split: str, n: int, seed: int) -> list[RowDict]:
    r = rng("truthfulqa", split, seed)
    out = []
    for _ in range(n):
        answers = [sentence(r, max_clauses=2) for _ in range(r.randint(4, 7))]
        n_true = r.randint(1, len(answers) - 2)
        mc1 = answers[:1] + answers[n_true : n_true + r.randint(2, 3)]
        out.append(
            {
                "question": question(r),
                "mc1_targets": {"choices": mc1, "labels": [1] + [0] * (len(mc1) - 1)},
                "mc2_targets": {
                    "choices": answers,
                    "labels": [1] * n_true + [0] * (len(answers) - n_true),
                },
            }
        )
    return out
