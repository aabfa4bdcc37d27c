"""What every mode provides; results are plain JSON-able dicts because they go into the store."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from gnomon.engines.base import GenerateRequest, GenerateResult, ScoreRequest, ScoreResult
from gnomon.hub.spec import BenchmarkSpec
from gnomon.prompts import Sample

Request = ScoreRequest | GenerateRequest
Answer = ScoreResult | GenerateResult


class Mode(ABC):
    verb: str  # the engine verb this mode uses: "score" or "generate"

    def __init__(self, spec: BenchmarkSpec) -> None:
        self.spec = spec

    @abstractmethod
    def requests(self, sample: Sample) -> list[Request]: ...

    @abstractmethod
    def result(self, sample: Sample, answers: list[Any]) -> dict[str, Any]:
        """Must hold `prediction`, `target`, `correct`, `metrics` and `truncated`."""

    def results(self, batch: list[tuple[Sample, list[Any]]]) -> list[dict[str, Any]]:
        """Results for several finished samples at once (a mode may judge them in parallel)."""
        return [self.result(sample, answers) for sample, answers in batch]

    def settings(self) -> dict[str, Any]:
        """Settings that change answers; they are part of every stored result's key."""
        return {}

    def metric_names(self) -> list[str]:
        return list(self.spec.metrics)
