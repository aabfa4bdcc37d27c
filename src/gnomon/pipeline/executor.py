"""Executors: the seam between "requests to compute" and "answers back".

The runner hands an executor a list of requests and reads answers back a batch at a time, as
(request index, answer) pairs in any order. `InProcess` sends them to an engine loaded in this
process; an executor that spreads requests over machines plugs in here without the runner or
the engines knowing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from gnomon.engines.base import (
    Engine,
    FailedResult,
    GenerateRequest,
    RollingRequest,
    ScoreRequest,
)
from gnomon.requests import Answer, Request

Batch = list[tuple[int, Answer | FailedResult]]


class Executor(Protocol):
    def run(self, requests: Sequence[Request]) -> Iterator[Batch]:
        """Yield batches of answers; every request index appears exactly once."""
        ...

    @property
    def tokens_computed(self) -> int: ...

    def describe(self) -> dict[str, str]: ...


class InProcess:
    """One engine in this process; each kind of request goes to the engine's verb for it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def tokens_computed(self) -> int:
        return self.engine.tokens_computed

    def describe(self) -> dict[str, str]:
        return self.engine.describe()

    def run(self, requests: Sequence[Request]) -> Iterator[Batch]:
        scores = [i for i, r in enumerate(requests) if isinstance(r, ScoreRequest)]
        generates = [i for i, r in enumerate(requests) if isinstance(r, GenerateRequest)]
        if scores:
            for batch in self.engine.score([r for r in requests if isinstance(r, ScoreRequest)]):
                yield [(scores[i], answer) for i, answer in batch]
        rolling = [i for i, r in enumerate(requests) if isinstance(r, RollingRequest)]
        if rolling:
            texts = [r for r in requests if isinstance(r, RollingRequest)]
            for batch in self.engine.score_rolling(texts):
                yield [(rolling[i], answer) for i, answer in batch]
        if generates:
            to_generate = [r for r in requests if isinstance(r, GenerateRequest)]
            for generated in self.engine.generate(to_generate):
                yield [(generates[i], answer) for i, answer in generated]
