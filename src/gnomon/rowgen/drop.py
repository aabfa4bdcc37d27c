"""DROP rows (EleutherAI/drop): `section_id`, `query_id`, `passage`, `question`, `answer` (one of a
`number` text, a `date` record or a list of `spans`, the others empty) and `validated_answers`
(the same fields as lists, one item per extra annotator)."""

from __future__ import annotations

import random
from typing import Any

from gnomon.rowgen import RowDict, rows
from gnomon.rowgen._text import NAMES, noun_phrase, rng, sentence

_NO_DATE = {"day": "", "month": "", "year": ""}


def _answer(kind: str, value: Any) -> dict[str, Any]:
    return {
        "number": value if kind == "number" else "",
        "date": value if kind == "date" else dict(_NO_DATE),
        "spans": value if kind == "spans" else [],
        "worker_id": "",
        "hit_id": "",
    }


def _pick(r: random.Random, i: int) -> tuple[str, Any]:
    kind = ["number", "spans", "date", "spans"][i % 4]
    if kind == "number":
        return kind, r.choice(["3", "12", "4.5", "1,200"])
    if kind == "date":
        return kind, {"day": str(r.randint(1, 28)), "month": "May", "year": "1999"}
    spans = [r.choice(NAMES)] + ([noun_phrase(r)] if i % 8 == 3 else [])
    return kind, spans


@rows("drop", sizes={"validation": 12, "train": 8})
def make(split: str, n: int, seed: int) -> list[RowDict]:
    r = rng("drop", split, seed)
    out = []
    for i in range(n):
        kind, value = _pick(r, i)
        validated = [_pick(r, i) for _ in range(i % 3)]
        if i % 5 == 0:
            validated.append((kind, value))  # a duplicate of the answer is counted once
        extra = [_answer(k, v) for k, v in validated]
        out.append(
            {
                "section_id": f"nfl_{seed}_{i // 3}",
                "query_id": f"q{seed}-{i:04d}",
                "passage": " ".join(sentence(r) for _ in range(3)),
                "question": f"How many {noun_phrase(r)} did {r.choice(NAMES)} see?",
                "answer": _answer(kind, value),
                "validated_answers": {
                    key: [e[key] for e in extra]
                    for key in ("number", "date", "spans", "worker_id", "hit_id")
                },
            }
        )
    return out
