"""Sampling where each sequence draws from its own random stream, seeded by its own request.

One generator per batch would make a sample depend on which requests happened to share its
batch and in what order: the same request, with the same seed, would give different text alone,
in a batch of 8 or after a re-sort, and a resumed run would not reproduce a stored one. Here row
r's k-th token uses the k-th number drawn from a CPU `torch.Generator` seeded with row r's seed,
whatever else is in the batch and on whatever device the logits are (the draws are made on the
CPU, so CPU and GPU consume the same stream).

The draw is by inverse CDF over the nucleus (top-p) of the temperature-scaled distribution, and
the chosen token is handed back as the only finite logit, so the model's own greedy decoding
loop (KV cache, padding, stop strings) carries on unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import LogitsProcessor

TOP_P = 0.95


class SeededSampler(LogitsProcessor):
    """Per-row sampling for a batch: `temperatures[r]` 0 means greedy for row r."""

    def __init__(
        self, temperatures: Sequence[float], seeds: Sequence[int], top_p: float = TOP_P
    ) -> None:
        self.temperatures = list(temperatures)
        self.top_p = top_p
        self.generators = [torch.Generator().manual_seed(int(seed)) for seed in seeds]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        rows = scores.shape[0]
        if rows != len(self.generators):
            raise ValueError(f"{rows} rows of logits for {len(self.generators)} seeded rows")
        # one draw per row per step, even for greedy or finished rows: a row's k-th token always
        # takes its k-th number
        draws = [float(torch.rand((), generator=g, dtype=torch.float64)) for g in self.generators]
        chosen = [self.pick(scores[r], self.temperatures[r], draws[r]) for r in range(rows)]
        out = torch.full_like(scores, float("-inf"))
        index = torch.tensor(chosen, device=scores.device)[:, None]
        return out.scatter_(1, index, 0.0)

    def pick(self, logits: torch.Tensor, temperature: float, draw: float) -> int:
        """The token whose cumulative probability (largest first, within the nucleus) first
        exceeds `draw` times the nucleus's mass."""
        if temperature <= 0:
            return int(logits.argmax())
        probs = torch.softmax(logits.double() / temperature, dim=-1)
        ordered, order = probs.sort(descending=True)
        before = ordered.cumsum(0) - ordered
        ordered = ordered * (before < self.top_p)  # the first token is always kept
        cumulative = ordered.cumsum(0)
        target = torch.tensor([draw], dtype=cumulative.dtype, device=cumulative.device)
        at = torch.searchsorted(cumulative, target * cumulative[-1], right=True)
        return int(order[at.clamp(max=len(order) - 1)])
