"""Free generation: greedy decoding to a stop sequence, an extraction pipeline, text metrics.

Every extractor of the spec is tried on the output; the first one's answer (lm-evaluation-
harness's first filter) is the prediction, and each later one reports its own metrics under a
suffixed name (`exact_match_flexible`), as lm-evaluation-harness reports each filter. The result
names the extractor that produced the prediction, or "none" when it found nothing and the
fallback (`[invalid]`) was scored.

A conversation (`prompt.turns`) is asked turn by turn, and its last turn's answer is what
extraction and the metrics score; every turn's answer is kept in the result (`turn_outputs`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from gnomon.engines.base import GenerateRequest, GenerateResult
from gnomon.errors import UserError
from gnomon.hub.spec import BenchmarkSpec
from gnomon.hub.spec import Extractor as ExtractorSpec
from gnomon.modes.base import Answer, answer_facts, output_answer
from gnomon.modes.turns import GeneratingMode, questions
from gnomon.prompts import Sample
from gnomon.requests import Request
from gnomon.scoring.extractors import (
    BoxedExtractor,
    Extractor,
    MathExtractor,
    MinervaExtractor,
    MultiChoiceExtractor,
    RegexExtractor,
)
from gnomon.scoring.metrics import lookup, text_fn


def build_extractor(spec: ExtractorSpec) -> Extractor:
    if spec.kind == "math":
        extractor = MathExtractor()
        extractor.name = spec.name
        return extractor
    if spec.kind == "multi_choice":
        return MultiChoiceExtractor(spec)
    if spec.kind == "minerva":
        return MinervaExtractor(spec.name)
    if spec.kind == "boxed":
        return BoxedExtractor(spec.name)
    return RegexExtractor(spec)


class GenerateMode(GeneratingMode):
    scorer_version = 2  # 2: the extraction pipeline, metrics from the registry

    def __init__(
        self, spec: BenchmarkSpec, samples: int = 1, temperature: float | None = None
    ) -> None:
        super().__init__(spec)
        if samples > 1 and (self.multi_stage or spec.scorer is not None):
            raise UserError(
                f"{spec.id}: --samples draws several answers to one prompt, which a "
                + ("conversation of several turns" if self.multi_stage else "registered scorer")
                + " cannot average; run it with --samples 1"
            )
        self.samples = samples
        # several samples of one greedy decode would be identical: sample unless told otherwise
        self.temperature = temperature if temperature is not None else (0.8 if samples > 1 else 0.0)
        # a judge extractor is no function of the text: the judged subclass asks it
        # (judge_extract.py)
        self.extractors = [(e, build_extractor(e)) for e in spec.extract if e.kind != "judge"]
        self.text_metrics = [m for m in spec.metrics if _kind(m) == "text"]
        self.output_metrics = [m for m in spec.metrics if _kind(m) == "output"]

    def metric_names(self) -> list[str]:
        names = []
        for metric in self.spec.metrics:
            names.append(metric)
            if _kind(metric) == "text":
                names.extend(f"{metric}_{e.name}" for e, _ in self.extractors[1:])
        return names

    def legacy_answers(self, sample: Sample, payload: dict[str, Any]) -> list[Answer] | None:
        return output_answer(payload) if self.samples == 1 else None

    def requests(self, sample: Sample) -> list[Request]:
        """One greedy answer; or, with `--samples k` (or a `--temperature`), k answers drawn
        at that temperature, each from its own seed."""
        first = super().requests(sample)
        if self.samples == 1 and not self.temperature:
            return first
        (request,) = first
        assert isinstance(request, GenerateRequest)
        return [
            dataclasses.replace(request, temperature=self.temperature, seed=i)
            for i in range(self.samples)
        ]

    def settings(self) -> dict[str, Any]:
        settings = super().settings()
        if self.samples > 1 or self.temperature:  # only then: greedy runs keep their keys
            settings |= {"greedy": False, "samples": self.samples, "temperature": self.temperature}
        return settings

    def scorer_config(self) -> dict[str, Any]:
        config = super().scorer_config()
        if self.spec.scorer is not None:  # only where set: other specs hash as before
            from gnomon.scoring.scorers import SCORERS

            config["registered"] = [self.spec.scorer, SCORERS[self.spec.scorer].version]
        return config

    def result(self, sample: Sample, answers: list[GenerateResult]) -> dict[str, Any]:
        if len(answers) > 1 and not self.multi_stage:
            return self._averaged(sample, answers)
        return self._scored(sample, answers)

    def _averaged(self, sample: Sample, answers: list[GenerateResult]) -> dict[str, Any]:
        """k answers to one prompt (`--samples k`): each metric is the mean over them (avg@k,
        the estimate of pass@1 reasoning-model reports give); the first answer is shown, and
        every answer's output, prediction and verdict is kept (`answers`)."""
        each = [self._scored(sample, [answer]) for answer in answers]
        names = list(each[0]["metrics"])
        metrics = {n: sum(r["metrics"][n] for r in each) / len(each) for n in names}
        headline = self.headline()[0]
        scored = headline if headline in metrics else (names[0] if names else None)
        found = next((r["extractor"] for r in each if r["extractor"] != "none"), "none")
        result = each[0] | {
            "metrics": metrics,
            "correct": bool(scored and metrics[scored] >= 0.5),
            "extractor": found,
            "truncated": any(r["truncated"] for r in each),
            "samples": len(each),
            "answers": [
                {k: r[k] for k in ("output", "prediction", "correct") if k in r} for r in each
            ],
        }
        result.pop("cut_at_max_tokens", None)
        if any(r.get("cut_at_max_tokens") for r in each):
            result["cut_at_max_tokens"] = True
        return result

    def _scored(self, sample: Sample, answers: list[GenerateResult]) -> dict[str, Any]:
        output = answers[-1].text  # a conversation is scored on its last turn
        if self.spec.scorer is not None:
            return self._registered_result(sample, answers, output)
        target = sample.target
        references = references_of(sample)
        extracted: dict[str, str] = {}
        found: dict[str, bool] = {}
        for spec, extractor in self.extractors:
            if isinstance(extractor, MultiChoiceExtractor):
                value = extractor(output, sample.choices)
            else:
                value = extractor(output)
            found[spec.name] = value is not None
            extracted[spec.name] = value if value is not None else spec.fallback
        if not self.extractors:
            extracted = {"raw": output.strip()}
            found = {"raw": True}
        metrics: dict[str, float] = {}
        for i, (name, value) in enumerate(extracted.items()):
            for metric in self.text_metrics:
                fn = text_fn(metric)
                key = metric if i == 0 else f"{metric}_{name}"
                metrics[key] = fn(value, references, self.spec.normalize)
        for metric in self.output_metrics:  # the whole output, once: no extractor applies
            solution = sample.solution if sample.solution is not None else str(target)
            metrics[metric] = text_fn(metric)(output, [solution], self.spec.normalize)
        first = next(iter(extracted))
        prediction = extracted[first]
        kind = self.extractors[0][0].kind if self.extractors else "raw"
        headline = self.headline()[0]
        scored = [headline] if headline in metrics else self.text_metrics or self.output_metrics
        correct = bool(metrics[scored[0]]) if scored else False
        # a headline read from the whole output (math-verify on MATH) needs no extracted answer:
        # the first extractor finding nothing is no "no answer" then
        by_output = headline in self.output_metrics
        source = "output" if by_output else (f"{kind}:{first}" if found[first] else "none")
        result = {
            "prediction": prediction,
            "target": target if isinstance(target, list | dict) else references[0],
            "correct": correct,
            "metrics": metrics,
            "output": output,
            "extracted": extracted,
            "extractor": source,
            "truncated": any(a.truncated for a in answers),
            **answer_facts(answers),
        }
        if self.multi_stage:
            result["turn_outputs"] = [a.text for a in answers]
            result["turn_questions"] = questions(sample)  # the browser shows the whole exchange
        return result

    def _registered_result(
        self, sample: Sample, answers: list[GenerateResult], output: str
    ) -> dict[str, Any]:
        """The whole output, scored by the spec's registered scorer (lm-eval's
        `process_results`), which does its own answer extraction."""
        from gnomon.scoring.scorers import SCORERS

        scorer = SCORERS[self.spec.scorer or ""]
        computed = scorer.fn(output, str(sample.target), sample.solution)
        metrics: dict[str, float] = {}
        corpus: dict[str, list[float]] = {}  # items of metrics aggregated over the corpus
        for name in self.spec.metrics:
            value = computed[name]
            if isinstance(value, list):
                corpus[name] = value
            else:
                metrics[name] = value
        answered = scorer.answered is None or scorer.answered(output)
        extra: dict[str, Any] = {"corpus": corpus} if corpus else {}
        return extra | {
            "prediction": output,
            "target": str(sample.target),
            # the first per-sample metric (a corpus one has no per-sample verdict)
            "correct": bool(next(iter(metrics.values()), False)),
            "metrics": metrics,
            "output": output,
            "extractor": f"scorer:{self.spec.scorer}" if answered else "none",
            "truncated": any(a.truncated for a in answers),
            **answer_facts(answers),
        }


def references_of(sample: Sample) -> Any:
    """What text metrics compare an answer with: several acceptable references (each metric
    takes its best over them), a mapping of named lists (given whole to the metrics that read
    it), or the one target as a list of one."""
    target = sample.target
    return target if isinstance(target, list | dict) else [str(target)]


def _kind(metric: str) -> str | None:
    found = lookup(metric)
    return found.kind if found else None
