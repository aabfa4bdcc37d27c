"""GPQA rows (Idavidrein/gpqa, configs gpqa_main / gpqa_diamond, `train` only): the fields lm-eval
reads, `Question`, `Correct Answer`, `Incorrect Answer 1..3` (free text, sometimes with stray
spaces, newlines or a " [title]" artifact), plus `Record ID` and the domain fields."""

from __future__ import annotations

from gnomon.rowgen import RowDict, rows
from gnomon.rowgen._text import options, question, rng, sentence


@rows(
    "gpqa_main_zeroshot",
    "gpqa_diamond_zeroshot",
    "gpqa_main_cot_zeroshot",
    "gpqa_diamond_cot_zeroshot",
    sizes={"train": 12},
)
def make(split: str, n: int, seed: int) -> list[RowDict]:
    r = rng("gpqa", split, seed)
    out = []
    for i in range(n):
        answers = options(r, 4)
        if i % 3 == 0:
            answers[1] = answers[1] + "\n"  # the real rows keep such newlines
        if i % 4 == 1:
            answers[2] = f"{answers[2]} [title] {r.choice(['river', 'market'])}  end"
        out.append(
            {
                "Pre-Revision Question": question(r),
                "Question": ("\n" if i % 2 else "") + question(r) + " " + sentence(r),
                "Correct Answer": answers[0],
                "Incorrect Answer 1": answers[1],
                "Incorrect Answer 2": answers[2],
                "Incorrect Answer 3": answers[3],
                "Explanation": sentence(r),
                "Record ID": f"rec{seed}x{i:04d}",
                "High-level domain": r.choice(["Physics", "Chemistry", "Biology"]),
                "Subdomain": "General",
            }
        )
    return out
