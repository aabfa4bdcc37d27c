"""Rows of the benchmarks judged against a baseline's answers.

AlpacaEval 2.0 (`alpaca_eval_gpt4_baseline.json`): instruction, output (the baseline's answer),
generator (the baseline model), dataset (the instruction's source collection).

Arena-Hard v2.0 (`data/arena-hard-v2.0/question.jsonl`): uid (16 hex digits), category
(`hard_prompt` or `creative_writing`), subcategory (`coding`, `math` or `creative_writing`),
prompt. The baseline's answer lives in another file of the repository; a row prepared for `--data`
carries it as `baseline_model` and `baseline_answer` (what the split hook adds), and so do these.
"""

from __future__ import annotations

from gnomon.hub.arena_hard import BASELINES
from gnomon.rowgen import RowDict, rows
from gnomon.rowgen._text import rng, sentence

ALPACA_SOURCES = ("helpful_base", "koala", "oasst", "selfinstruct", "vicuna")
ARENA_KINDS = (("hard_prompt", "coding"), ("hard_prompt", "math"),
               ("creative_writing", "creative_writing"))  # fmt: skip


@rows("alpaca_eval", sizes={"train": 10})
def alpaca(split: str, n: int, seed: int) -> list[RowDict]:
    r = rng("alpaca_eval", split, seed)
    return [
        {
            "dataset": ALPACA_SOURCES[i % len(ALPACA_SOURCES)],
            "instruction": sentence(r) + " Explain why.",
            "output": " ".join(sentence(r) for _ in range(1 + i % 4)),
            "generator": "gpt4_1106_preview",
        }
        for i in range(n)
    ]


@rows("arena_hard_v2", sizes={"train": 9})
def arena(split: str, n: int, seed: int) -> list[RowDict]:
    r = rng("arena_hard_v2", split, seed)
    out = []
    for i in range(n):
        category, subcategory = ARENA_KINDS[i % len(ARENA_KINDS)]
        out.append(
            {
                "uid": f"{r.getrandbits(64):016x}",
                "category": category,
                "subcategory": subcategory,
                "prompt": sentence(r) + " " + sentence(r),
                "baseline_model": BASELINES[category],
                "baseline_answer": " ".join(sentence(r) for _ in range(1 + i % 3)),
            }
        )
    return out
