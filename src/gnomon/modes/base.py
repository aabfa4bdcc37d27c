"""What every mode provides: the requests a sample needs, and a scorer over its answers.

A mode is two things kept apart. Its requests (`stage_requests`) decide what the model is asked;
they, and not the mode's name, key the answers. Its scorer (`results`, configured by
`scorer_config`) turns a sample's answers into metrics; the hash of that configuration keys the
scores, so changing metrics, extraction or normalisation re-scores stored answers without
asking the model again. Results are plain JSON-able dicts because they go into the store.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from gnomon.engines.base import GenerateRequest, GenerateResult
from gnomon.hub.spec import BenchmarkSpec
from gnomon.prompts import Sample
from gnomon.requests import Answer, Request

__all__ = ["Answer", "Mode", "Request"]


class Mode(ABC):
    verb: str  # the engine verb this mode uses: "score" or "generate"
    # Bump when the scoring code changes what it computes: every stored sample is re-scored.
    scorer_version: int = 1
    multi_stage = False  # True when a later request depends on an earlier answer
    judged = False  # True when the scorer asks a judge model (`judge_requests`)
    # True when scoring is slow enough (a sandbox, a judge) to run beside the engine on a worker
    # thread; a cheap scorer runs inline, sparing the engine's thread the handoff
    scores_in_background = False

    def __init__(self, spec: BenchmarkSpec) -> None:
        self.spec = spec

    @abstractmethod
    def requests(self, sample: Sample) -> Sequence[Request]: ...

    def stage_requests(self, sample: Sample, answers: list[Answer]) -> list[Request]:
        """The next requests given the answers so far; [] when the sample is answered. A
        multi-turn mode builds turn 2 from the model's own answer to turn 1."""
        return [] if answers else list(self.requests(sample))

    @abstractmethod
    def result(self, sample: Sample, answers: list[Any]) -> dict[str, Any]:
        """Must hold `prediction`, `target`, `correct`, `metrics` and `truncated`."""

    def results(self, batch: list[tuple[Sample, list[Any]]]) -> list[dict[str, Any]]:
        """Results for several finished samples at once (a mode may judge them in parallel)."""
        return [self.result(sample, answers) for sample, answers in batch]

    def judge_requests(self, sample: Sample, answers: list[Any]) -> list[GenerateRequest]:
        """What the judge is asked about these answers (a judged mode); [] asks nothing."""
        return []

    def judged_result(
        self, sample: Sample, answers: list[Any], verdicts: list[GenerateResult]
    ) -> dict[str, Any]:
        """The result from the answers and the judge's replies to `judge_requests`."""
        raise NotImplementedError(f"{type(self).__name__} asks no judge")

    def reply_error(self, sample: Sample, index: int, reply: str) -> str | None:
        """Why the judge's reply to request `index` of `judge_requests` cannot be read (None:
        it can); such a reply is asked again a bounded number of times."""
        return None

    def settings(self) -> dict[str, Any]:
        """Settings that change answers; they are part of every stored result's key."""
        return {}

    def metric_names(self) -> list[str]:
        return list(self.spec.metrics)

    def scorer_config(self) -> dict[str, Any]:
        """Everything that decides a score from the same answers; its hash keys the scores."""
        return {
            "scorer": type(self).__name__,
            "version": self.scorer_version,
            "metrics": self.metric_names(),
            # an extractor without `choice_match` hashes as it did before that field existed
            "extract": [
                e.model_dump(exclude={"choice_match"} if e.choice_match is None else None)
                for e in self.spec.extract
            ],
            # `math` hashes only when set, so earlier specs keep their scorer hashes
            "normalize": self.spec.normalize.model_dump(
                exclude={"math"} if self.spec.normalize.math is None else None
            ),
            "cluster_by": self.spec.cluster_by,
        }

    def headline(self) -> tuple[str, str | None]:
        """The metric this run reports, chosen from those it produces, and why when it is not
        the spec's (e.g. a choice benchmark answered by writing a letter has no `acc_norm`)."""
        produced = self.metric_names()
        wanted = self.spec.headline or self.spec.metrics[0]
        if wanted in produced or not produced:
            return wanted, None
        return produced[0], (
            f"{wanted} is not produced when {self.spec.id} is {self.scored_by()}; "
            f"this run reports {produced[0]}"
        )

    def scored_by(self) -> str:
        return "scored by loglikelihood" if self.verb == "score" else "answered by generation"

    def legacy_answers(self, sample: Sample, payload: dict[str, Any]) -> list[Answer] | None:
        """The answers a score stored before answers were kept apart was made from, in the
        order of `requests(sample)`, or None when the old payload cannot give them back."""
        return None


def answer_facts(answers: Sequence[Any]) -> dict[str, Any]:
    """What a result keeps of its generations besides the scored text: the scored (last)
    answer's `reasoning`, a reasoning model's thinking, shown apart from the answer; and
    `cut_at_max_tokens` where a generation ran out of its token budget before it ended (finish
    reason `length`): a reasoning model cut inside its thinking has no answer, and a report
    counts such samples apart from prompts cut to fit (`truncated`). Each is left out when
    empty, as results stored before them lack them."""
    facts: dict[str, Any] = {}
    last = answers[-1] if answers else None
    if isinstance(last, GenerateResult) and last.reasoning:
        facts["reasoning"] = last.reasoning
    if any(isinstance(a, GenerateResult) and a.finish_reason == "length" for a in answers):
        facts["cut_at_max_tokens"] = True
    return facts


def output_answer(payload: dict[str, Any]) -> list[Answer] | None:
    """The one generation a schema-1 score of a single-answer generation mode kept (`output`)."""
    output = payload.get("output")
    if not isinstance(output, str):
        return None
    return [GenerateResult(output, bool(payload.get("truncated")))]
