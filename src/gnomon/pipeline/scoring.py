"""Scoring finished samples: the plan's scorer over their answers, one failure never more.

A scorer that raises on one sample (an extractor choking on odd text, a judge's nonsense) fails
that sample alone, with the reason; its answers are stored all the same, so fixing the scorer
re-scores it without asking the model again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from gnomon.modes.verdicts import VerdictError
from gnomon.pipeline.lookup import SampleState
from gnomon.pipeline.plan import BenchPlan
from gnomon.requests import shown
from gnomon.store import AnswerRow, ResultRow


@dataclass
class Scored:
    rows: list[ResultRow] = field(default_factory=list)
    answers: list[AnswerRow] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (sample id, reason)


def score_samples(
    plan: BenchPlan, items: list[tuple[int, SampleState]], score_keys: dict[int, str]
) -> Scored:
    out = Scored()
    for _, state in items:
        out.answers.extend(state.new_answers)
    if plan.mode.judged:
        return _judged(plan, items, score_keys, out)
    batch = [(plan.samples[pos], state.answers) for pos, state in items]
    try:
        results: list[dict[str, Any] | BaseException] = list(plan.mode.results(batch))
    except Exception:  # find the sample that broke it: each alone
        results = []
        for sample, answers in batch:
            try:
                results.append(plan.mode.results([(sample, answers)])[0])
            except Exception as exc:
                results.append(exc)
    for (pos, state), result in zip(items, results, strict=True):
        sample = plan.samples[pos]
        if isinstance(result, BaseException):
            out.failures.append((sample.sample_id, _reason("scoring", result)))
            continue
        out.rows.append(_row(plan, pos, state, result, score_keys[pos]))
    return out


def _judged(
    plan: BenchPlan, items: list[tuple[int, SampleState]], score_keys: dict[int, str], out: Scored
) -> Scored:
    """Ask the judge about every item, then score each with the verdicts; a judge that cannot
    answer, or answers what the parser cannot read, fails that sample alone."""
    assert plan.judge_runner is not None  # plan_bench refuses a judged plan without a judge
    asked: list[tuple[int, SampleState]] = []
    requests = []
    for pos, state in items:
        try:
            requests.append(plan.mode.judge_requests(plan.samples[pos], state.answers))
            asked.append((pos, state))
        except Exception as exc:
            out.failures.append((plan.samples[pos].sample_id, _reason("judge prompt", exc)))
    samples = [plan.samples[pos] for pos, _ in asked]

    def check(item: int, index: int, reply: str) -> str | None:
        return plan.mode.reply_error(samples[item], index, reply)

    verdicts = plan.judge_runner.ask(requests, check)
    out.answers.extend(verdicts.new)
    for (pos, state), replies, keys, tries in zip(
        asked, verdicts.answers, verdicts.keys, verdicts.tries, strict=True
    ):
        sample = plan.samples[pos]
        if isinstance(replies, str):
            out.failures.append((sample.sample_id, replies[:500]))
            continue
        try:
            result = plan.mode.judged_result(sample, state.answers, replies)  # type: ignore[arg-type]
        except VerdictError as exc:  # asked again and again, never readable
            out.failures.append((sample.sample_id, _unreadable(exc, tries)))
            continue
        except Exception as exc:
            out.failures.append((sample.sample_id, _reason("scoring", exc)))
            continue
        if tries:  # read in the end: which attempts it took
            result["judge_retries"] = {str(j): texts for j, texts in tries.items()}
        judged = SampleState(state.answers, state.keys + keys, prompt=state.prompt)
        out.rows.append(_row(plan, pos, judged, result, score_keys[pos]))
    return out


def _reason(what: str, exc: BaseException) -> str:
    return f"{what} failed: {type(exc).__name__}: {exc}"[:500]


RAW_SHOWN = 2000  # of each unreadable reply, in the failure's reason
# how a failed judgment's reason begins: its unreadable replies are stored, so a re-run reads them
# back and fails it again (only another judge or judge prompt asks anew)
JUDGMENT_FAILED = "judgment failed after"


def _unreadable(exc: VerdictError, tries: dict[int, list[str]]) -> str:
    """A judgment that failed: the reason, then every attempt's raw reply (the replies are also
    stored as the judge's answers), so that nobody mistakes it for a score or has to guess."""
    texts = [text for _, attempts in sorted(tries.items()) for text in attempts]
    raw = " | ".join(json.dumps(t[:RAW_SHOWN], ensure_ascii=False) for t in texts)
    attempts = max((len(a) for a in tries.values()), default=1)
    times = "1 attempt" if attempts == 1 else f"{attempts} attempts"
    return f"{JUDGMENT_FAILED} {times}: {exc}; raw replies: {raw}"


def _row(
    plan: BenchPlan, pos: int, state: SampleState, result: dict[str, Any], key: str
) -> ResultRow:
    sample = plan.samples[pos]
    metrics = result.pop("metrics")
    prompt = state.prompt
    if prompt is None:
        first = plan.requests(sample, [])
        prompt = shown(first[0]) if first else sample.context
    return ResultRow(
        key=key,
        model_key=plan.model_key,
        bench=plan.spec.id,
        bench_version=plan.spec.version,
        prompt_hash=plan.prompt_hash,
        sample_id=sample.sample_id,
        index=sample.index,
        cluster=sample.cluster,
        correct=bool(result["correct"]),
        metrics=metrics,
        payload=result,
        prompt=prompt,  # what the model was sent
        scorer_hash=plan.scorer_hash,
        answer_keys=state.keys,
    )
