"""What `HFEngine`'s token-level methods hand back, and the pieces they share with their callers.

`HFEngine.generate` and `gnomon serve` both generate through `HFEngine.generate_tokens`; serve also
needs the tokens themselves (for their log-probabilities), a way to stop a generation whose client
has gone, and every token's log-probability with its likeliest alternatives (`token_logprobs`).
Kept apart from `hf.py` so that importing them costs nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from gnomon.engines.base import Message


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


def message_dict(message: Message) -> dict[str, Any]:
    """A turn in the OpenAI chat shape that chat templates read. A tool call's arguments go to
    the template parsed when they are a JSON object (templates print them with `tojson`)."""
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        calls = []
        for call in message.tool_calls:
            try:
                arguments: Any = json.loads(call.arguments)
            except ValueError:
                arguments = call.arguments
            if not isinstance(arguments, dict):
                arguments = call.arguments
            entry: dict[str, Any] = {
                "type": "function",
                "function": {"name": call.name, "arguments": arguments},
            }
            if call.id is not None:
                entry["id"] = call.id
            calls.append(entry)
        out["tool_calls"] = calls
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    if message.name is not None:
        out["name"] = message.name
    return out
