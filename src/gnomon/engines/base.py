"""The engine interface: two verbs, `score` and `generate`, and `score_rolling` for perplexity.

Engines yield results a batch at a time, as (request index, result) pairs in any order, so that the
runner can store each finished sample before the next batch starts. Batching, sorting, prefix reuse
and KV caching live inside engines and nowhere else.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ScoreRequest:
    """Log-probability of `continuation` given `context` (lm-evaluation-harness's loglikelihood)."""

    context: str
    continuation: str


@dataclass(frozen=True)
class RollingRequest:
    """Log-probability of the whole of `text`, every token of it, the first conditioned on the
    model's prefix token (lm-evaluation-harness's loglikelihood_rolling): a text longer than the
    model's window is scored in windows, each token predicted once."""

    text: str


@dataclass(frozen=True)
class ScoreResult:
    logprob: float  # sum of the continuation tokens' log-probabilities
    is_greedy: bool  # every continuation token was the argmax
    truncated: bool = False  # the context was cut from the left to fit the model


@dataclass(frozen=True)
class Message:
    """One turn of a conversation, in the OpenAI chat format's terms.

    `tool_calls` (an assistant turn's calls) and `tool_call_id` (a tool turn answering one) let a
    conversation carry a tool exchange; `content` may be empty on an assistant turn that only
    calls tools."""

    role: str  # system, user, assistant or tool
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class ToolCall:
    """A call the model asked for: `arguments` is the JSON text exactly as the model wrote it
    (it may not parse; a benchmark decides what that means)."""

    name: str
    arguments: str
    id: str | None = None


def chat_turn(
    message: Message, content: Any, call: Callable[[ToolCall], dict[str, Any]]
) -> dict[str, Any]:
    """A turn in the OpenAI chat shape, which servers and chat templates both read; `content`
    and `call` say how this reader wants the text and each tool call written."""
    item: dict[str, Any] = {"role": message.role, "content": content}
    if message.tool_calls:
        item["tool_calls"] = [call(c) for c in message.tool_calls]
    if message.tool_call_id is not None:
        item["tool_call_id"] = message.tool_call_id
    if message.name is not None:
        item["name"] = message.name
    return item


@dataclass(frozen=True)
class GenerateRequest:
    """Text to continue (`context`), or a conversation to answer (`messages`, which then wins).

    `tools` is the OpenAI `tools` list as canonical JSON text, so a request stays hashable and its
    stored key names the exact tool definitions sent."""

    context: str
    until: tuple[str, ...]
    max_tokens: int
    temperature: float = 0.0  # 0: greedy; above: sampling (top-p 0.95), seeded by `seed`
    seed: int = 0
    messages: tuple[Message, ...] | None = None
    tools: str | None = None


@dataclass(frozen=True)
class GenerateResult:
    """`reasoning` is a reasoning model's thinking, kept apart from the answer `text` that is
    scored; the counts are the engine's own, where it reports them."""

    text: str
    truncated: bool = False
    reasoning: str | None = None
    finish_reason: str | None = None  # stop, length, tool_calls, ...
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True)
class FailedResult:
    """A request the engine could not answer (e.g. an API that kept failing past its retries).

    The runner records the sample as failed with this reason, never as a wrong answer, and does
    not store it, so the next run of the same command tries it again."""

    reason: str


# A batch of (request index, result) pairs. Any request may fail instead of answering, and a
# batch is a read-only Sequence so an engine that never fails may declare the narrower
# `list[tuple[int, ScoreResult]]` and still override the verb.
ScoreBatch = Sequence[tuple[int, ScoreResult | FailedResult]]
GenerateBatch = Sequence[tuple[int, GenerateResult | FailedResult]]


class Engine(ABC):
    """A loaded model. `tokens_computed` counts the tokens that went through a forward pass."""

    tokens_computed: int = 0

    @abstractmethod
    def score(self, requests: Sequence[ScoreRequest]) -> Iterator[ScoreBatch]:
        """Yield batches of results; every request index appears exactly once."""

    @abstractmethod
    def generate(self, requests: Sequence[GenerateRequest]) -> Iterator[GenerateBatch]:
        """Yield batches of greedy generations, cut at the first stop sequence."""

    def score_rolling(self, requests: Sequence[RollingRequest]) -> Iterator[ScoreBatch]:
        """Yield batches of whole-text log-probabilities (`is_greedy`: every token the argmax).
        Windows are cut in tokens, so an engine that cannot see the model's tokens cannot."""
        from gnomon.errors import UserError

        raise UserError(
            f"the {type(self).__name__} engine cannot score whole texts by rolling windows "
            "(perplexity benchmarks); run the model locally with --model hf:..."
        )

    def describe(self) -> dict[str, str]:
        """Facts about the loaded model worth recording with a run (device, dtype, ...)."""
        return {}
