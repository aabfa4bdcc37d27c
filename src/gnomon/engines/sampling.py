"""Sampling where each sequence draws from its own random stream, seeded by its own request.

One generator per batch would make a sample depend on which requests happened to share its
batch and in what order: the same request, with the same seed, would give different text alone,
in a batch of 8 or after a re-sort, and a resumed run would not reproduce a stored one. Here row
r's k-th token uses the k-th number drawn from a CPU `torch.Generator` seeded with row r's seed,
whatever else is in the batch and on whatever device the logits are (the draws are made on the
CPU, so CPU and GPU consume the same stream).

The draw is by inverse CDF over the nucleus (top-p) of the temperature-scaled distribution, and
`choose` hands back the chosen tokens (gnomon's own decoding loop, `hf_decode`, which drops a
finished row's stream with `keep`); as a logits processor the chosen token is handed back as the
only finite logit, so `model.generate`'s greedy loop carries on unchanged.
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

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        chosen = self.choose(scores)
        out = torch.full_like(scores, float("-inf"))
        return out.scatter_(1, chosen[:, None], 0.0)

    def choose(self, scores: torch.Tensor) -> torch.Tensor:
        """Each row's next token: the row's next draw (one per row per step, even for greedy
        or finished rows: a row's k-th token always takes its k-th number) through `pick`."""
        rows = scores.shape[0]
        if rows != len(self.generators):
            raise ValueError(f"{rows} rows of logits for {len(self.generators)} seeded rows")
        draws = torch.stack(
            [torch.rand((), generator=g, dtype=torch.float64) for g in self.generators]
        )
        return self.pick(scores, draws.to(scores.device))

    def keep(self, rows: Sequence[int]) -> None:
        """Only these rows go on (the others finished): their streams go with them, so a row's
        draws never depend on when the others stop."""
        self.temperatures = [self.temperatures[r] for r in rows]
        self.generators = [self.generators[r] for r in rows]

    def pick(self, logits: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
        """Per row, the token whose cumulative probability (largest first, within the nucleus)
        first exceeds the row's draw times the nucleus's mass; the argmax where the row's
        temperature is 0. Every operation is row by row, so a row's choice does not depend on
        the others."""
        temperatures = torch.tensor(self.temperatures, dtype=torch.float64, device=logits.device)
        greedy = temperatures <= 0
        scaled = logits.double() / torch.where(greedy, 1.0, temperatures)[:, None]
        probs = torch.softmax(scaled, dim=-1)
        ordered, order = probs.sort(dim=-1, descending=True)
        before = ordered.cumsum(-1) - ordered
        ordered = ordered * (before < self.top_p)  # the first token is always kept
        cumulative = ordered.cumsum(-1)
        target = (draws * cumulative[:, -1])[:, None]
        at = torch.searchsorted(cumulative, target, right=True).clamp(max=order.shape[-1] - 1)
        sampled = order.gather(-1, at).squeeze(-1)
        return torch.where(greedy, logits.argmax(-1), sampled)
