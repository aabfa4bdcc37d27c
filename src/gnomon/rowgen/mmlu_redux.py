"""MMLU-Redux 2.0 rows (fxmarty/mmlu-redux-2.0-ok, one config per subject): MMLU's `question`,
`choices` and `answer` (an index), and the re-annotation's `error_type` ("ok" in this copy),
`source`, `correct_answer` and `potential_reason` (mostly null). Rows carry their subject in
`subject`, the field the loader tags hub rows with (`source.subset_field`)."""

from __future__ import annotations

from gnomon.rowgen import RowDict, rows
from gnomon.rowgen._text import noun_phrase, options, rng, sentence

SUBJECTS = ["abstract_algebra", "high_school_us_history", "virology"]


@rows("mmlu_redux", sizes={"test": 12})
def make(split: str, n: int, seed: int) -> list[RowDict]:
    r = rng("mmlu_redux", split, seed)
    k = len(SUBJECTS)
    out = []
    for i, subject in enumerate(SUBJECTS):
        for _ in range(n // k + (i < n % k)):
            stem = f"{sentence(r, max_clauses=2)} Which of these is {noun_phrase(r)}?"
            out.append(
                {
                    "question": stem + r.choice(["", "", " ", "\n"]),
                    "choices": options(r, 4),
                    "answer": r.randrange(4),
                    "error_type": "ok",
                    "source": r.choice([None, None, "https://www.example.org/mmlu-source"]),
                    "correct_answer": None,
                    "potential_reason": r.choice([None, ""]),
                    "subject": subject,
                }
            )
    return out
