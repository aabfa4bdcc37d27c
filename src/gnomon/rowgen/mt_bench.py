"""MT-Bench rows (`HuggingFaceH4/mt_bench_prompts`, split train): prompt (the two user turns),
prompt_id (the dataset card's hash of the joined turns), category, reference (short reference
answers, a list, often empty).

One quirk: math, reasoning and coding rows borrow the prompt_id of a real question of their
category (their text is made up), because the judge is shown GPT-4's reference answers, which
gnomon ships by prompt_id (`hub/fewshot/mt_bench_gpt4_reference.jsonl`).
"""

from __future__ import annotations

import hashlib
import json

from gnomon.hub.hooks import MT_BENCH_REFERENCE
from gnomon.rowgen import RowDict, rows
from gnomon.rowgen._text import rng, sentence

CATEGORIES = ("writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem",
              "humanities")  # fmt: skip


def prompt_id(turns: list[str]) -> int:
    return int(hashlib.sha256("".join(turns).encode("utf-8")).hexdigest(), 16) % 10**8


@rows("mt_bench", sizes={"train": 16})
def make(split: str, n: int, seed: int) -> list[RowDict]:
    r = rng("mt_bench", split, seed)
    real: dict[str, list[int]] = {}
    for line in MT_BENCH_REFERENCE.read_text("utf-8").splitlines():
        row = json.loads(line)
        real.setdefault(row["category"], []).append(row["prompt_id"])
    out = []
    for i in range(n):
        category = CATEGORIES[i % len(CATEGORIES)]
        turns = [sentence(r) + " Explain.", "Now " + sentence(r).lower()]
        ident = prompt_id(turns)
        reference: list[str] = []
        if category in real:
            ident = real[category][(i // len(CATEGORIES)) % len(real[category])]
            reference = [sentence(r), sentence(r)]
        out.append({"prompt": turns, "prompt_id": ident, "category": category,
                    "reference": reference})  # fmt: skip
    return out
