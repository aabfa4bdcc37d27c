"""What one pairwise-judged sample contributes to the corpus statistics of `scoring.pairwise`.

A pairwise benchmark's headline (AlpacaEval's length-controlled win rate, Arena-Hard's
Bradley-Terry score) is no mean of per-sample numbers: each sample writes an item per corpus
metric its spec lists, `result["corpus"][metric]`, which `report.corpus_metrics` hands to the
metric's aggregation. Items hold only what the statistic needs (verdicts, lengths, style), so a
stored result can be re-aggregated without the judge.
"""

from __future__ import annotations

from typing import Any

from gnomon.scoring.answer_style import markdown_style

# MT-Bench's pair labels in Arena-Hard's form (a C is a tie)
_AS_ARENA = {"A": "A>B", "B": "B>A", "C": "A=B"}

# The model's name in `arena_hard_style` items: one run scores one model against the baseline.
MODEL = "model"


def corpus_items(
    metrics: list[str], labels: list[str], win_rate: float, answer: str, baseline: str
) -> dict[str, Any]:
    """Items for those of `metrics` that are pairwise corpus metrics. `labels` are the judge's
    verdicts with the model's answer first, then second (judged mode's order)."""
    first, second = (_AS_ARENA.get(label, label) for label in labels)
    makers = {
        "pairwise_win_rate": lambda: win_rate,
        # AlpacaEval measures an answer's length in characters of its text
        "lc_win_rate": lambda: [win_rate, len(answer), len(baseline)],
        "arena_hard": lambda: [first, second],
        "arena_hard_style": lambda: [
            MODEL,
            first,
            second,
            list(markdown_style(answer)),
            list(markdown_style(baseline)),
        ],
    }
    return {name: makers[name]() for name in metrics if name in makers}
