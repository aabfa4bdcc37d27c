"""TruthfulQA rows (`truthfulqa/truthful_qa`). Config multiple_choice: a question, mc1_targets
(one true answer, first) and mc2_targets (one or more true answers, first), each a dict of
choices and 0/1 labels. Config generation: `type`, `category`, `question`, `best_answer`,
`correct_answers` and `incorrect_answers` (lists of sentences, some without a final full stop,
some with stray spaces), `source`."""

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


@rows("truthfulqa_gen", sizes={"validation": 12})
def make_generation(split: str, n: int, seed: int) -> list[RowDict]:
    r = rng("truthfulqa_gen", split, seed)
    out = []
    for i in range(n):
        correct = [sentence(r) for _ in range(1 + i % 3)]
        incorrect = [sentence(r) for _ in range(1 + i % 2)]
        correct[0] = correct[0].rstrip(".") if i % 2 else f" {correct[0]} "
        if i % 4 == 0:
            correct.append("I have no comment.")
        if i % 5 == 1:
            incorrect.append("")  # an empty answer is dropped
        out.append(
            {
                "type": "Adversarial" if i % 2 else "Non-Adversarial",
                "category": r.choice(["Misconceptions", "Science", "History"]),
                "question": question(r) + (" " if i % 3 == 0 else ""),
                "best_answer": correct[0].strip(),
                "correct_answers": correct,
                "incorrect_answers": incorrect,
                "source": "https://en.wikipedia.org/wiki/List_of_common_misconceptions",
            }
        )
    return out
