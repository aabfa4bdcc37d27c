"""Looking a plan up in the store: which scores exist, which samples are answered, what is left.

A sample walks its stages through the stored answers: each stage's requests are keyed and read
back, and a multi-turn sample builds its next turn from the stored answer to the last. A sample
whose every request is answered is scored (or its score reused) without the model; the rest wait
for the engine, and only their missing requests are sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gnomon.pipeline.plan import BenchPlan, Lookup, score_key
from gnomon.requests import (
    Answer,
    Request,
    answer_from_json,
    answer_json,
    kind_of,
    request_key,
    shown,
)
from gnomon.store import AnswerRow, Store


@dataclass
class SampleState:
    """A sample's answers so far, and the requests of the stage it waits on."""

    answers: list[Answer] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    pending: list[Request] = field(default_factory=list)
    pending_keys: list[str] = field(default_factory=list)
    new_answers: list[AnswerRow] = field(default_factory=list)  # to store with its score
    prompt: str | None = None  # the first request as shown: what the model was sent
    # the stored answers among `pending_keys`, once they have been looked up (None: not yet)
    known: dict[str, str] | None = None


@dataclass
class PlanState:
    lookup: Lookup
    states: dict[int, SampleState]  # every position not reused
    score_keys: dict[int, str]  # positions whose answers are complete
    reused_keys: list[str] = field(default_factory=list)  # the stored scores it reuses


def start_stage(plan: BenchPlan, pos: int, state: SampleState) -> None:
    state.pending = plan.requests(plan.samples[pos], state.answers)
    state.pending_keys = [request_key(plan.model_key, r) for r in state.pending]
    state.known = None
    if state.pending:  # the last stage's request shows the whole conversation up to its turn
        state.prompt = shown(state.pending[0])


def look_up(plan: BenchPlan, store: Store, *, chat_api: bool = False) -> PlanState:
    states = {pos: SampleState() for pos in range(len(plan.samples))}
    for pos, state in states.items():
        start_stage(plan, pos, state)
    done: dict[int, str] = {}
    reused: list[int] = []
    reused_keys: list[str] = []
    candidates: dict[int, tuple[str, list[str]]] = {}
    if not plan.mode.multi_stage:  # the answer keys are the request keys: no answer is read
        candidates = {
            pos: (score_key(plan, pos, s.pending_keys), s.pending_keys)
            for pos, s in states.items()
            if s.pending
        }
        have = store.existing([key for key, _ in candidates.values()])
        reused = [pos for pos, (key, _) in candidates.items() if key in have]
        reused_keys = [candidates[pos][0] for pos in reused]
        for pos in reused:
            del states[pos]
    active = [pos for pos, s in states.items() if s.pending]
    while active:
        stored = store.answers([k for pos in active for k in states[pos].pending_keys])
        following = []
        for pos in active:
            state = states[pos]
            if not all(k in stored for k in state.pending_keys):
                state.known = {k: stored[k] for k in state.pending_keys if k in stored}
                continue
            for request, key in zip(state.pending, state.pending_keys, strict=True):
                state.answers.append(answer_from_json(kind_of(request), stored[key]))
                state.keys.append(key)
            start_stage(plan, pos, state)
            if state.pending:
                following.append(pos)
        active = following
    _adopt_legacy(plan, store, states, chat_api)
    lookup = Lookup(reused=reused)
    for pos, state in states.items():
        if state.pending:
            lookup.todo.append(pos)
        elif pos in candidates and candidates[pos][1] == state.keys:
            done[pos] = candidates[pos][0]  # already worked out above
        else:
            done[pos] = score_key(plan, pos, state.keys)
    if plan.mode.multi_stage:  # only now are the complete samples' answer keys known
        have = store.existing(list(done.values()))
        for pos in [p for p, key in done.items() if key in have]:
            lookup.reused.append(pos)
            reused_keys.append(done[pos])
            del states[pos], done[pos]
    lookup.rescore = sorted(done)
    lookup.reused.sort()
    return PlanState(lookup, states, done, reused_keys)


def _adopt_legacy(
    plan: BenchPlan, store: Store, states: dict[int, SampleState], chat_api: bool
) -> None:
    """Samples scored before answers were kept apart: their answers are read back from the old
    score's payload (under the exact requests this plan sends), so upgrading never recomputes.
    A score from a run that sent its prompts differently (chat API or not) is not adopted."""
    if plan.mode.multi_stage:
        return
    waiting = {plan.sample_keys[pos]: pos for pos, s in states.items() if s.pending and not s.keys}
    if not waiting:
        return
    for key, old in store.legacy_results(list(waiting)).items():
        if bool(old["config"].get("chat_api")) != chat_api:
            continue
        pos = waiting[key]
        state = states[pos]
        answers = plan.mode.legacy_answers(plan.samples[pos], old["payload"])
        if answers is None or len(answers) != len(state.pending):
            continue
        for request, rkey, answer in zip(state.pending, state.pending_keys, answers, strict=True):
            state.answers.append(answer)
            state.keys.append(rkey)
            state.new_answers.append(
                AnswerRow(rkey, plan.model_key, kind_of(request), answer_json(answer))
            )
        state.pending, state.pending_keys = [], []
