"""Judged mode: the model answers by generation, then a judge model rates that answer.

Three kinds of verdict (the spec's `judge.verdict`):
- `rating`: one request; metric `rating` (1..scale, or 0..1 with `normalize`); correct above the
  scale's midpoint.
- `pairwise`: the answer against the row's baseline answer, asked in both orders (the model as
  A, then as B) because judges favour a position; `win_rate` is the mean of the two outcomes
  (win 1, tie 0.5, loss 0) and `position_consistency` is 1 when both orders agree; correct when
  the win rate is above one half.
- `yes_no`: one request; `yes_rate`; correct on yes.
The judge's replies and the verdicts read from them are kept in every result; a pairwise result
also writes the items of the spec's pairwise corpus statistics (`modes/pairwise_items.py`).

A conversation (`prompt.turns`) is asked turn by turn; the judge is asked once, at the end, with
`answer` the last turn's answer and `answers` / `questions` every turn's (MT-Bench shows the
judge the whole exchange). Every turn's answer is kept in the result (`turn_outputs`).
"""

from __future__ import annotations

from typing import Any

from gnomon.engines.base import GenerateRequest, GenerateResult
from gnomon.hub.spec import BenchmarkSpec
from gnomon.judge_prompt import JudgePrompt
from gnomon.modes.pairwise_items import corpus_items
from gnomon.modes.turns import GeneratingMode
from gnomon.modes.verdicts import (
    PAIRWISE,
    PARSER_VERSION,
    parse_labelled,
    parse_pairwise,
    parse_rating,
    parse_yes_no,
)
from gnomon.prompts import Sample
from gnomon.scoring.metrics import judge_corpus_metrics, judge_metrics


class JudgedMode(GeneratingMode):
    judged = True
    scores_in_background = True

    def __init__(self, spec: BenchmarkSpec) -> None:
        super().__init__(spec)
        assert spec.judge is not None  # spec validation
        self.judge = spec.judge
        self.prompt = JudgePrompt(spec.judge, spec.id)

    def metric_names(self) -> list[str]:
        # the corpus statistics the spec lists are produced too, from items each result writes
        corpus = [m for m in self.spec.metrics if m in judge_corpus_metrics(self.judge.verdict)]
        return judge_metrics(self.judge.verdict) + corpus

    def scorer_config(self) -> dict[str, Any]:
        return {
            **super().scorer_config(),
            # `labels` unset stays out, so judges specified before it keep their scorer hash
            "judge": self.judge.model_dump(
                exclude={"labels"} if self.judge.labels is None else None
            ),
            "verdict_parser": PARSER_VERSION,
        }

    def scored_by(self) -> str:
        return "scored by a judge model"

    def result(self, sample: Sample, answers: list[Any]) -> dict[str, Any]:
        raise RuntimeError(f"{self.spec.id} is scored from a judge's verdicts, not on its own")

    def judge_requests(self, sample: Sample, answers: list[Any]) -> list[GenerateRequest]:
        assert sample.judge is not None  # the renderer fills it for judged benchmarks
        answer = answers[-1].text
        said = [a.text for a in answers]
        asked = [sample.judge["question"], *sample.turns]

        def ask(**named: str) -> GenerateRequest:
            assert sample.judge is not None
            return self.prompt.request(sample.judge, answers=said, questions=asked, **named)

        if self.judge.verdict != "pairwise":
            return [ask(answer=answer)]
        baseline = sample.judge["baseline"]
        return [  # the model as A, then as B
            ask(answer=answer, answer_a=answer, answer_b=baseline),
            ask(answer=answer, answer_a=baseline, answer_b=answer),
        ]

    def judged_result(
        self, sample: Sample, answers: list[Any], verdicts: list[GenerateResult]
    ) -> dict[str, Any]:
        replies = [v.text for v in verdicts]
        kind = self.judge.verdict
        if kind == "rating":
            rating = parse_rating(replies[0], self.judge.scale)
            scale = self.judge.scale
            value = (rating - 1) / (scale - 1) if self.judge.normalize else rating
            metrics = {"rating": value}
            correct = rating > (scale + 1) / 2
            parsed: list[Any] = [rating]
        elif kind == "yes_no":
            yes = parse_yes_no(replies[0])
            metrics, correct, parsed = {"yes_rate": float(yes)}, yes, ["yes" if yes else "no"]
        else:
            labels = [self._pairwise_label(r) for r in replies]
            as_a = PAIRWISE[labels[0]]  # the model's outcome when it was A
            as_b = 1.0 - PAIRWISE[labels[1]]  # ... and when it was B, swapped back
            win_rate = (as_a + as_b) / 2
            metrics = {"win_rate": win_rate, "position_consistency": float(as_a == as_b)}
            correct, parsed = win_rate > 0.5, labels
        result = {
            "prediction": answers[-1].text,
            "target": str(sample.target),
            "correct": bool(correct),
            "metrics": metrics,
            "output": answers[-1].text,
            "judge_replies": replies,
            "verdicts": parsed,
            "extractor": "judge",
            "truncated": any(a.truncated for a in answers),
        }
        if self.multi_stage:
            result["turn_outputs"] = [a.text for a in answers]
        if kind == "pairwise":
            result |= self._corpus(sample, parsed, metrics["win_rate"], answers[-1].text)
        return result

    # --- pairwise: verdicts given as bare tokens, and items for the corpus statistics -----

    def _pairwise_label(self, reply: str) -> str:
        if self.judge.labels is not None:
            return parse_labelled(reply, self.judge.labels)
        return parse_pairwise(reply)

    def _corpus(
        self, sample: Sample, labels: list[str], win_rate: float, answer: str
    ) -> dict[str, Any]:
        """`corpus` items for the spec's pairwise corpus metrics (lengths and style need the
        baseline's text, which the renderer put in `sample.judge`)."""
        assert sample.judge is not None
        items = corpus_items(self.spec.metrics, labels, win_rate, answer, sample.judge["baseline"])
        return {"corpus": items} if items else {}
