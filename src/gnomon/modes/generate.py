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

from typing import Any

from gnomon.engines.base import GenerateResult
from gnomon.hub.spec import BenchmarkSpec
from gnomon.hub.spec import Extractor as ExtractorSpec
from gnomon.modes.base import Answer, answer_facts, output_answer
from gnomon.modes.turns import GeneratingMode
from gnomon.prompts import Sample
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

    def __init__(self, spec: BenchmarkSpec) -> None:
        super().__init__(spec)
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
        return output_answer(payload)

    def scorer_config(self) -> dict[str, Any]:
        config = super().scorer_config()
        if self.spec.scorer is not None:  # only where set: other specs hash as before
            from gnomon.scoring.scorers import SCORERS

            config["registered"] = [self.spec.scorer, SCORERS[self.spec.scorer].version]
        return config

    def result(self, sample: Sample, answers: list[GenerateResult]) -> dict[str, Any]:
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
