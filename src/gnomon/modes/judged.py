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
`answer` the last turn's answer and `answers` / `questions` every turn's, or with `per_turn`
once per turn, about that turn with the exchange up to it (MT-Bench: turn 1 alone, then turn 2
with the whole conversation), the metrics being the mean over turns plus each turn's
(`rating_turn1`, ...). Every turn's answer is kept in the result (`turn_outputs`).

A rating judge with `samples` K > 1 rates each answer K times at a sampling temperature:
`rating` is the mean and `rating_spread` the ratings' standard deviation, the judge's own noise.
A reply that cannot be read is asked again (`reply_error`, see `pipeline/judging.py`) before the
sample fails.
"""

from __future__ import annotations

from statistics import fmean, pstdev
from typing import Any

from gnomon.engines.base import GenerateRequest, GenerateResult
from gnomon.hub.spec import BenchmarkSpec
from gnomon.judge_prompt import JudgePrompt
from gnomon.modes.pairwise_items import corpus_items
from gnomon.modes.turns import GeneratingMode, questions
from gnomon.modes.verdicts import (
    PAIRWISE,
    PARSER_VERSION,
    VerdictError,
    parse_labelled,
    parse_pairwise,
    parse_rating,
    parse_rating_fastchat,
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
        return judge_metrics(self.judge.verdict, self.judged_turns, self.judge.samples) + corpus

    @property
    def judged_turns(self) -> int:
        """How many turns the judge is asked about one by one (0: once, about the whole)."""
        return 1 + len(self.spec.prompt.turns or ()) if self.judge.per_turn else 0

    def scorer_config(self) -> dict[str, Any]:
        return {
            **super().scorer_config(),
            "judge": self.judge.hashed(),
            "verdict_parser": PARSER_VERSION,
        }

    def scored_by(self) -> str:
        return "scored by a judge model"

    def result(self, sample: Sample, answers: list[Any]) -> dict[str, Any]:
        raise RuntimeError(f"{self.spec.id} is scored from a judge's verdicts, not on its own")

    # --- what the judge is asked: per turn (per_turn), per repeat (samples), per order -------

    def judge_requests(self, sample: Sample, answers: list[Any]) -> list[GenerateRequest]:
        """In order: each judged turn (the last alone unless `per_turn`), each of its `samples`
        repeats, and for pairwise verdicts both orders (the model as A, then as B)."""
        assert sample.judge is not None  # the renderer fills it for judged benchmarks
        said = [a.text for a in answers]
        asked = [sample.judge["question"], *sample.turns]
        out = []
        for turn in range(1, len(said) + 1) if self.judge.per_turn else [0]:
            upto = turn or len(said)
            answer = said[upto - 1]
            orders: list[dict[str, str]] = [{}]
            if self.judge.verdict == "pairwise":
                baseline = sample.judge["baseline"]
                orders = [
                    {"answer_a": answer, "answer_b": baseline},
                    {"answer_a": baseline, "answer_b": answer},
                ]
            for repeat in range(self.judge.samples):
                out += [
                    self.prompt.request(
                        sample.judge,
                        answers=said[:upto],
                        questions=asked[:upto],
                        turn=turn,
                        sample=repeat,
                        answer=answer,
                        **order,
                    )  # fmt: skip
                    for order in orders
                ]
        return out

    def reply_error(self, sample: Sample, index: int, reply: str) -> str | None:
        """Why the judge's reply to request `index` cannot be read (None: it can): such a reply
        is asked again, as a new request, before the sample fails."""
        try:
            self._read(reply)
        except VerdictError as exc:
            return str(exc)
        return None

    def _read(self, reply: str) -> Any:
        kind = self.judge.verdict
        if kind == "rating":
            if self.judge.rating_read == "fastchat":
                return parse_rating_fastchat(reply, self.judge.scale)
            return parse_rating(reply, self.judge.scale)
        if kind == "yes_no":
            return parse_yes_no(reply)
        if self.judge.labels is not None:  # bare tokens (AlpacaEval's m / M)
            return parse_labelled(reply, self.judge.labels)
        return parse_pairwise(reply)

    # --- the verdicts read back into metrics ---------------------------------------------------

    def judged_result(
        self, sample: Sample, answers: list[Any], verdicts: list[GenerateResult]
    ) -> dict[str, Any]:
        replies = [v.text for v in verdicts]
        read = [self._read(r) for r in replies]  # an unreadable one raises VerdictError
        per_order = 2 if self.judge.verdict == "pairwise" else 1
        per_turn = self.judge.samples * per_order
        turns = [read[i : i + per_turn] for i in range(0, len(read), per_turn)]
        scored = [self._turn_metrics(t) for t in turns]
        first = judge_metrics(self.judge.verdict)[0]
        metrics = {name: fmean(s[name] for s in scored) for name in scored[0]}
        if self.judge.per_turn:
            metrics |= {f"{first}_turn{t}": s[first] for t, s in enumerate(scored, 1)}
        if self.judge.verdict == "rating":
            mean_rating = fmean(r for t in turns for r in t)
            correct = mean_rating > (self.judge.scale + 1) / 2
            parsed: list[Any] = read
        elif self.judge.verdict == "yes_no":
            correct = metrics["yes_rate"] > 0.5
            parsed = ["yes" if yes else "no" for yes in read]
        else:
            correct, parsed = metrics["win_rate"] > 0.5, read
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
            result["turn_questions"] = questions(sample)  # the browser shows the whole exchange
        if self.judge.verdict == "pairwise":
            result |= self._corpus(sample, parsed, metrics["win_rate"], answers[-1].text)
        return result

    def _corpus(
        self, sample: Sample, labels: list[str], win_rate: float, answer: str
    ) -> dict[str, Any]:
        """`corpus` items for the spec's pairwise corpus metrics (lengths and style need the
        baseline's text, which the renderer put in `sample.judge`)."""
        assert sample.judge is not None
        items = corpus_items(self.spec.metrics, labels, win_rate, answer, sample.judge["baseline"])
        return {"corpus": items} if items else {}

    def _turn_metrics(self, read: list[Any]) -> dict[str, float]:
        """One judged turn's metrics from its readings (its repeats; pairwise: both orders)."""
        kind = self.judge.verdict
        if kind == "rating":
            scale = self.judge.scale
            values = [(r - 1) / (scale - 1) if self.judge.normalize else r for r in read]
            out = {"rating": fmean(values)}
            if self.judge.samples > 1:
                out["rating_spread"] = pstdev(values)
            return out
        if kind == "yes_no":
            return {"yes_rate": fmean(float(yes) for yes in read)}
        as_a = PAIRWISE[read[0]]  # the model's outcome when it was A
        as_b = 1.0 - PAIRWISE[read[1]]  # ... and when it was B, swapped back
        return {"win_rate": (as_a + as_b) / 2, "position_consistency": float(as_a == as_b)}


def with_judge_samples(spec: BenchmarkSpec, samples: int | None) -> BenchmarkSpec:
    """`--judge-samples K`: a rating judge of `spec` asked K times per answer (other specs as
    they are)."""
    judge = spec.judge
    if samples is None or judge is None or judge.verdict != "rating":
        return spec
    return spec.model_copy(update={"judge": judge.model_copy(update={"samples": samples})})
