"""The engine interface: two verbs, `score` and `generate`.

Engines yield results a batch at a time, as (request index, result) pairs in any order, so that the
runner can store each finished sample before the next batch starts. Batching, sorting, prefix reuse
and KV caching live inside engines and nowhere else.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ScoreRequest:
    """Log-probability of `continuation` given `context` (lm-evaluation-harness's loglikelihood)."""

    context: str
    continuation: str


@dataclass(frozen=True)
class ScoreResult:
    logprob: float  # sum of the continuation tokens' log-probabilities
    is_greedy: bool  # every continuation token was the argmax
    truncated: bool = False  # the context was cut from the left to fit the model


@dataclass(frozen=True)
class GenerateRequest:
    context: str
    until: tuple[str, ...]
    max_tokens: int
    temperature: float = 0.0  # 0: greedy; above: sampling (top-p 0.95), seeded by `seed`
    seed: int = 0


@dataclass(frozen=True)
class GenerateResult:
    text: str
    truncated: bool = False


@dataclass(frozen=True)
class FailedResult:
    """A request the engine could not answer (e.g. an API that kept failing past its retries).

    The runner records the sample as failed with this reason, never as a wrong answer, and does
    not store it, so the next run of the same command tries it again."""

    reason: str


class Engine(ABC):
    """A loaded model. `tokens_computed` counts the tokens that went through a forward pass."""

    tokens_computed: int = 0

    @abstractmethod
    def score(self, requests: Sequence[ScoreRequest]) -> Iterator[list[tuple[int, ScoreResult]]]:
        """Yield batches of results; every request index appears exactly once."""

    @abstractmethod
    def generate(
        self, requests: Sequence[GenerateRequest]
    ) -> Iterator[list[tuple[int, GenerateResult]]]:
        """Yield batches of greedy generations, cut at the first stop sequence."""

    def describe(self) -> dict[str, str]:
        """Facts about the loaded model worth recording with a run (device, dtype, ...)."""
        return {}
