"""`gnomon score`: score answers made by any other tool, as if gnomon's own engine had made them.

The file holds one JSON line per answer: a sample id (`sample_id`, `task_id` or `id`) and the
output text (`output`, `completion` or `text`); several lines per sample for pass@k. The answers
are stored under a model named after the file's content and scored by the benchmark's own
scorer, so the same file is never scored twice and a changed scorer re-scores it.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

from gnomon import __version__
from gnomon.data import read_jsonl
from gnomon.engines.answers import split_thinking
from gnomon.engines.base import GenerateResult
from gnomon.errors import UserError
from gnomon.hub.spec import BenchmarkSpec
from gnomon.pipeline.compute import rescore
from gnomon.pipeline.judging import Judge
from gnomon.pipeline.lookup import PlanState, SampleState
from gnomon.pipeline.plan import Lookup, check_judge, plan_bench, score_key
from gnomon.requests import answer_json, kind_of, request_key, shown
from gnomon.run import RunOutcome, new_run_id
from gnomon.store import AnswerRow, Store

ID_FIELDS = ("sample_id", "task_id", "id")
TEXT_FIELDS = ("output", "completion", "text")


def read_answers(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Sample id -> [(output, origin "file:line")], in file order; every problem names its line."""
    by_id: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in read_jsonl(path, errors="surrogateescape"):  # other tools' bytes, kept
        ident = next((row.fields[f] for f in ID_FIELDS if f in row.fields), None)
        if not isinstance(ident, str | int) or isinstance(ident, bool):
            raise UserError(f"{row.origin}: a line needs a sample id (`sample_id`) and `output`")
        field = next((f for f in TEXT_FIELDS if f in row.fields), "output")
        output = row.fields.get(field)
        if not isinstance(output, str):
            raise UserError(f"{row.origin}: `{field}` (the answer's text) must be a string")
        by_id[str(ident)].append((output, row.origin))
    if not by_id:
        raise UserError(f"{path}: no answers")
    return by_id


def answers_per_sample(by_id: dict[str, list[tuple[str, str]]], spec: BenchmarkSpec) -> int:
    """Every sample needs as many answers as the others; a benchmark scored on one answer takes
    exactly one, so a second line for a sample is a duplicate, named by its line."""
    if spec.mode != "code":
        for lines in by_id.values():
            if len(lines) > 1:
                first, dup = lines[0][1], lines[1][1]
                raise UserError(f"{dup}: a second answer for this sample (first at {first})")
        return 1
    counts = Counter(len(v) for v in by_id.values())
    n = counts.most_common(1)[0][0]
    for lines in by_id.values():
        if len(lines) != n:
            raise UserError(
                f"{lines[-1][1]}: this sample has {len(lines)} answers, the others {n}; "
                "pass@k needs the same number for every sample"
            )
    return n


def score_file(
    spec: BenchmarkSpec,
    path: Path,
    store: Store,
    data_dir: Path | None,
    log: Callable[[str], None],
    *,
    choice_by_generation: bool = False,
    judge: Judge | None = None,
) -> RunOutcome:
    """`judge` answers what a judged benchmark (or a judge extractor) asks about each answer."""
    if spec.mode == "choice" and not choice_by_generation:
        raise UserError(
            f"{spec.id} is scored from log-probabilities ({', '.join(spec.metrics)}), which a "
            "file of answers cannot give; add --choice-by generation to read a letter instead"
        )
    if spec.mode in ("target", "rolling"):
        raise UserError(
            f"{spec.id} is scored from log-probabilities ({', '.join(spec.metrics)}), which a "
            "file of answers cannot give; run the model on it"
        )
    if spec.mode == "tool_call":
        raise UserError(
            f"{spec.id} is scored from the model's tool calls, which a file of text answers "
            "cannot give; run the model on it"
        )
    check_judge([spec], judge)  # before the answers and the rows are read
    started = time.monotonic()
    by_id = read_answers(path)
    n = answers_per_sample(by_id, spec)
    model_id = f"file:{hashlib.sha256(path.read_bytes()).hexdigest()[:16]}"
    plan = plan_bench(
        spec, data_dir, None, None, model_id, completions=n, temperature=0.0,
        choice_by_generation=choice_by_generation, judge=judge,
    )  # fmt: skip
    if plan.mode.multi_stage:
        raise UserError(f"{spec.id} builds each turn on the model's last answer: run the model")
    known = {s.sample_id for s in plan.samples}
    for ident, lines in by_id.items():
        if ident not in known:
            raise UserError(f"{lines[0][1]}: sample id {ident!r} is not in {spec.id}")
    keep = [pos for pos, s in enumerate(plan.samples) if s.sample_id in by_id]
    if len(keep) < len(plan.samples):
        log(f"{len(plan.samples) - len(keep)} of {len(plan.samples)} {spec.id} samples have no "
            "answer in the file; scoring the rest")  # fmt: skip
    state = PlanState(Lookup(), {}, {})
    for pos in keep:
        sample = plan.samples[pos]
        requests = plan.requests(sample, [])
        outputs = [output for output, _ in by_id[sample.sample_id]]
        # a reasoning model's `<think>` blocks are its thinking, never its answer
        answers = [GenerateResult(a, reasoning=r) for a, r in map(split_thinking, outputs)]
        keys = [request_key(model_id, r) for r in requests]
        rows = [
            AnswerRow(k, model_id, kind_of(r), answer_json(a))
            for k, r, a in zip(keys, requests, answers, strict=True)
        ]
        shown_prompt = shown(requests[0]) if requests else sample.context
        state.states[pos] = SampleState(list(answers), keys, [], [], rows, shown_prompt)
        state.score_keys[pos] = score_key(plan, pos, keys)
    have = store.existing(list(state.score_keys.values()))
    state.lookup.reused = [pos for pos in keep if state.score_keys[pos] in have]
    state.lookup.rescore = [pos for pos in keep if state.score_keys[pos] not in have]
    run_id = new_run_id()
    config = {
        "model": f"file:{path}",
        "benches": [spec.id],
        "samples": n,
        "judge": plan.judge,
        # answers written out are letters or text: a choice benchmark is scored by generation
        "choice_scored_by": "generation",
    }
    store.begin_run(run_id, f"file:{path}", model_id, config, __version__)
    reused = store.add_bench(
        run_id, spec.id, spec.version, plan.prompt_hash, plan.shots,
        [state.score_keys[pos] for pos in state.lookup.reused], spec.model_dump(),
        planned=len(keep), scorer_hash=plan.scorer_hash, headline=plan.headline,
        headline_note=plan.headline_note, judge=plan.judge,
    )  # fmt: skip
    log(f"run {run_id}: {len(keep)} samples, {reused} reused, {len(state.lookup.rescore)} to score")
    scored, status = 0, "failed"
    try:
        scored = rescore(plan, state, store, run_id, counted="computed")
        status = "incomplete" if store.failures(run_id) else "complete"
    finally:
        seconds = time.monotonic() - started
        store.finish_run(run_id, status, planned=len(keep), reused=reused, seconds=seconds)
    store.moments([run_id])
    return RunOutcome(run_id, len(keep), reused, scored, seconds, 0, {})
