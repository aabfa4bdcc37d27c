"""ANLI rows (`facebook/anli`): premise, hypothesis, label 0 entailment / 1 neutral /
2 contradiction, the writer's reason; splits train_rN, dev_rN, test_rN per round."""

from __future__ import annotations

from gnomon.rowgen import RowDict, rows
from gnomon.rowgen._text import clause, rng, sentence


def _register(round_: int) -> None:
    @rows(
        f"anli_r{round_}",
        sizes={f"test_r{round_}": 12, f"dev_r{round_}": 8, f"train_r{round_}": 8},
    )
    def make(split: str, n: int, seed: int) -> list[RowDict]:
        r = rng("anli", split, seed)
        return [
            {
                "uid": f"{r.getrandbits(32):08x}-{round_}{i:03d}",
                "premise": " ".join(sentence(r) for _ in range(r.randint(1, 3))),
                "hypothesis": sentence(r) if i % 3 else clause(r),  # not always a sentence
                "label": r.randint(0, 2),
                "reason": "" if i % 2 else sentence(r),
            }
            for i in range(n)
        ]


for _round in (1, 2, 3):
    _register(_round)
