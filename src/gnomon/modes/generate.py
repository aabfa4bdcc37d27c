"""Free generation: greedy decoding to a stop sequence, regex extraction, exact match."""

from __future__ import annotations

from typing import Any

from gnomon.engines.base import GenerateRequest, GenerateResult
from gnomon.extract import RegexExtractor, exact_match
from gnomon.hub.spec import BenchmarkSpec
from gnomon.modes.base import Answer, Mode
from gnomon.prompts import Sample


class GenerateMode(Mode):
    verb = "generate"

    def __init__(self, spec: BenchmarkSpec) -> None:
        super().__init__(spec)
        assert spec.generation is not None  # guaranteed by spec validation
        self.generation = spec.generation
        self.extractors = [RegexExtractor(e) for e in spec.extract]

    def requests(self, sample: Sample) -> list[GenerateRequest]:
        g = self.generation
        return [GenerateRequest(sample.context, tuple(g.until), g.max_tokens)]

    def metric_names(self) -> list[str]:
        names = []
        for metric in self.spec.metrics:
            names.append(metric)
            names.extend(f"{metric}_{e.name}" for e in self.extractors[1:])
        return names

    def settings(self) -> dict[str, Any]:
        return {"greedy": True, **self.generation.model_dump()}

    def legacy_answers(self, sample: Sample, payload: dict[str, Any]) -> list[Answer] | None:
        output = payload.get("output")
        if not isinstance(output, str):
            return None
        return [GenerateResult(output, bool(payload.get("truncated")))]

    def result(self, sample: Sample, answers: list[GenerateResult]) -> dict[str, Any]:
        output = answers[0].text
        extracted = {e.name: e(output) for e in self.extractors} or {"raw": output.strip()}
        reference = str(sample.target)
        metrics: dict[str, float] = {}
        for i, (name, value) in enumerate(extracted.items()):
            key = "exact_match" if i == 0 else f"exact_match_{name}"
            metrics[key] = exact_match(value, reference, self.spec.normalize)
        prediction = next(iter(extracted.values()))
        return {
            "prediction": prediction,
            "target": reference,
            "correct": bool(metrics["exact_match"]),
            "metrics": metrics,
            "output": output,
            "extracted": extracted,
            "truncated": answers[0].truncated,
        }
