"""What `HFEngine`'s token-level methods hand back, and the pieces they share with their callers.

`HFEngine.generate` and `gnomon serve` both generate through `HFEngine.generate_tokens`; serve also
needs the tokens themselves (for their log-probabilities), a way to stop a generation whose client
has gone, and every token's log-probability with its likeliest alternatives (`token_logprobs`).
Kept apart from `hf.py` so that importing them costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Generation:
    """One row's generation: every token made (up to max_tokens; fewer when it stopped or was
    cancelled), the text before the first stop string, and why generation ended."""

    tokens: list[int]
    text: str
    finish_reason: Literal["stop", "length"]


@dataclass(frozen=True)
class TokenLogprobs:
    """Per token: its log-probability (None for the first token, which nothing predicts) and its
    `top` most likely alternatives at that position, as (token id, log-probability)."""

    logprobs: list[float | None]
    top: list[list[tuple[int, float]] | None]


def cancel_criteria(cancel: Callable[[], bool]) -> Any:
    """Stopping criteria that end `model.generate` at the next step once `cancel()` is true."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class Cancel(StoppingCriteria):
        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> Any:
            rows = input_ids.shape[0]
            return torch.full((rows,), cancel(), dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([Cancel()])
