"""Computing what the store lacks: missing answers through an executor, then scores.

The engine and the scorer run as a pipeline: a batch of finished samples is scored on a worker
thread (code in the sandbox, say) while the engine works on the next batch, and each batch's
answers and scores are committed together as soon as they are made.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from gnomon.engines.base import FailedResult
from gnomon.pipeline.executor import Executor
from gnomon.pipeline.lookup import PlanState, SampleState, start_stage
from gnomon.pipeline.plan import BenchPlan, score_key
from gnomon.pipeline.scoring import Scored, score_samples
from gnomon.requests import Answer, answer_from_json, answer_json, kind_of
from gnomon.store import AnswerRow, Store

_SCORE_CHUNK = 2048  # samples scored (and committed) together when nothing is computed


class Recorder:
    """Scores samples on a worker thread and commits what comes back, in the caller's thread
    (the store's connection stays on one thread)."""

    def __init__(self, plan: BenchPlan, store: Store, run_id: str, *, rescored: bool) -> None:
        self.plan, self.store, self.run_id, self.rescored = plan, store, run_id, rescored
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="gnomon-score")
        self.pending: deque[Future[Scored]] = deque()
        self.written = 0
        self.background = plan.mode.scores_in_background or plan.mode.judged

    def submit(self, items: list[tuple[int, SampleState]], keys: dict[int, str]) -> None:
        if not items:
            return
        if self.background:
            self.pending.append(self.pool.submit(score_samples, self.plan, items, keys))
        else:
            self._write(score_samples(self.plan, items, keys))

    def flush(self, wait: bool = False) -> None:
        while self.pending and (wait or self.pending[0].done()):
            self._write(self.pending.popleft().result())

    def _write(self, scored: Scored) -> None:
        self.written += self.store.add_results(
            self.run_id, scored.rows, scored.answers, rescored=self.rescored
        )
        if scored.failures:
            self.store.add_failures(self.run_id, self.plan.spec.id, scored.failures)

    def close(self) -> None:
        try:
            self.flush(wait=True)
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)


def rescore(
    plan: BenchPlan, state: PlanState, store: Store, run_id: str, *, counted: str = "rescored"
) -> int:
    """Score the samples whose answers are all at hand: no engine, no model."""
    recorder = Recorder(plan, store, run_id, rescored=counted == "rescored")
    try:
        for start in range(0, len(state.lookup.rescore), _SCORE_CHUNK):
            chunk = state.lookup.rescore[start : start + _SCORE_CHUNK]
            recorder.submit([(pos, state.states[pos]) for pos in chunk], state.score_keys)
            recorder.flush()
    finally:
        recorder.close()
    return recorder.written


def compute(
    plan: BenchPlan,
    state: PlanState,
    executor: Executor,
    store: Store,
    run_id: str,
    progress: Callable[[str, int], Callable[[int], None]],
) -> int:
    """Answer the samples that need the engine, stage by stage, and score each when done.
    `progress(label, total)` gives each stage its own bar: a later turn's count is known only
    when the turn before it is answered."""
    states = state.states
    active = list(state.lookup.todo)
    recorder = Recorder(plan, store, run_id, rescored=False)
    try:
        stage = 0
        while active:
            label = plan.spec.id if stage == 0 else f"{plan.spec.id} (turn {stage + 1})"
            advance = progress(label, sum(len(states[pos].pending) for pos in active))
            active = _stage(plan, states, active, executor, store, run_id, recorder, advance)
            stage += 1
    finally:
        recorder.close()
    return recorder.written


def _stage(
    plan: BenchPlan,
    states: dict[int, SampleState],
    active: list[int],
    executor: Executor,
    store: Store,
    run_id: str,
    recorder: Recorder,
    advance: Callable[[int], None],
) -> list[int]:
    """One stage for every active sample: send the requests not yet answered, finish each
    sample's stage as its last answer arrives. Returns the samples with a further stage."""
    unread = [k for pos in active if states[pos].known is None for k in states[pos].pending_keys]
    stored = store.answers(unread)  # what the look-up read already is not read again
    for pos in active:
        stored.update(states[pos].known or {})
    got: dict[int, dict[int, Answer | FailedResult]] = {pos: {} for pos in active}
    sends, owners = [], []
    for pos in active:
        s = states[pos]
        for j, (request, key) in enumerate(zip(s.pending, s.pending_keys, strict=True)):
            if key in stored:
                got[pos][j] = answer_from_json(kind_of(request), stored[key])
            else:
                sends.append(request)
                owners.append((pos, j))
    following: list[int] = []
    finished: list[tuple[int, SampleState]] = []
    failures: list[tuple[str, str]] = []
    partial: list[AnswerRow] = []

    closed: set[int] = set()

    def finish(pos: int) -> None:
        closed.add(pos)
        s = states[pos]
        answers = [got[pos][j] for j in range(len(s.pending))]
        rows = [
            AnswerRow(key, plan.model_key, kind_of(req), answer_json(a))
            for req, key, a in zip(s.pending, s.pending_keys, answers, strict=True)
            if key not in stored and not isinstance(a, FailedResult)
        ]
        failed = [a.reason for a in answers if isinstance(a, FailedResult)]
        if failed:  # the others are kept: the retry sends only what failed
            partial.extend(rows)
            failures.append((plan.samples[pos].sample_id, failed[0]))
            return
        s.answers.extend(a for a in answers if not isinstance(a, FailedResult))
        s.keys.extend(s.pending_keys)
        start_stage(plan, pos, s)
        if s.pending:
            partial.extend(rows)  # a later turn builds on them: kept now
            following.append(pos)
        else:
            s.new_answers.extend(rows)
            finished.append((pos, s))

    def commit() -> None:
        if partial:
            store.add_answers(run_id, partial)
            partial.clear()
        if failures:
            store.add_failures(run_id, plan.spec.id, failures)
            failures.clear()
        if finished:
            keys = {pos: score_key(plan, pos, s.keys) for pos, s in finished}
            recorder.submit(list(finished), keys)
            finished.clear()
        recorder.flush()

    for pos in active:
        if len(got[pos]) == len(states[pos].pending):
            finish(pos)
    commit()
    for batch in executor.run(sends):
        for index, answer in batch:
            pos, j = owners[index]
            got[pos][j] = answer
            if len(got[pos]) == len(states[pos].pending):
                finish(pos)
        commit()
        advance(len(batch))
    unanswered = [pos for pos in active if pos not in closed]
    if unanswered:
        raise RuntimeError(f"{plan.spec.id}: the engine left {len(unanswered)} samples unanswered")
    return following
