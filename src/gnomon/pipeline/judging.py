"""Judges: another model's verdict on a sample's answers, asked as one more set of requests.

A judge is an ordinary engine plus the requests a mode's scorer builds for it
(`Mode.judge_requests`). Its answers are stored like the model's, keyed by the judge's model key
and the exact request, so a judge is never asked the same thing twice and a re-run resumes.
Judging runs on the scoring thread, with its own read connection to the store, while the engine
under evaluation works on its next batch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from gnomon.engines.base import FailedResult, GenerateRequest
from gnomon.pipeline.executor import Executor
from gnomon.requests import Answer, answer_from_json, answer_json, kind_of, request_key
from gnomon.store import AnswerRow, Store

# A reply the scorer cannot read is asked again, this many times, each time as a new request
# (the same prompt, the attempt in its seed) so that the store keeps every attempt and a re-run
# asks none of them again; a judge over an API may answer differently even at temperature 0.
RETRIES = 2
_ATTEMPT_SEED = 1000  # attempt k of repeat r is seeded r + 1000 k (repeats are at most 100)

# Why request j of item i cannot be read (None: it can), from its reply's text.
ReplyCheck = Callable[[int, int, str], str | None]


@dataclass
class Verdicts:
    """Per item, the judge's answers in request order, or the reason it could not answer.

    `tries` holds, per item, the replies to requests asked again because they could not be
    read: request index -> every attempt's text, in order (the answer kept is the last)."""

    answers: list[list[Answer] | str] = field(default_factory=list)
    keys: list[list[str]] = field(default_factory=list)
    new: list[AnswerRow] = field(default_factory=list)  # judge answers to store
    tries: list[dict[int, list[str]]] = field(default_factory=list)


def attempt(request: GenerateRequest, k: int) -> GenerateRequest:
    """Attempt k (0: the request itself) at the same prompt: a request of its own."""
    return request if k == 0 else replace(request, seed=request.seed + _ATTEMPT_SEED * k)


class Judge:
    """The judge model: its store identity, and an executor loaded on first use (a run whose
    judge verdicts are all stored never loads the judge)."""

    def __init__(
        self,
        model_key: str,
        load: Callable[[], Executor],
        store_path: Path,
        *,
        greedy_repeats: bool = False,
    ) -> None:
        self.model_key = model_key
        # True when the judge at temperature 0 gives the same text to the same prompt (a local
        # model): an unreadable greedy reply is then not asked again
        self.greedy_repeats = greedy_repeats
        self._load = load
        self._executor: Executor | None = None
        self._store_path = store_path
        self._lock = threading.Lock()

    @property
    def executor(self) -> Executor:
        with self._lock:
            if self._executor is None:
                self._executor = self._load()
            return self._executor

    def ask(
        self, requests: list[list[GenerateRequest]], check: ReplyCheck | None = None
    ) -> Verdicts:
        """Answer each item's judge requests: stored verdicts are read back, the rest asked. A
        reply that `check` refuses is asked again (`attempt`), up to `RETRIES` times."""
        out = Verdicts(keys=[[] for _ in requests], tries=[{} for _ in requests])
        final: dict[tuple[int, int], Answer | FailedResult] = {}
        todo = {(i, j): r for i, item in enumerate(requests) for j, r in enumerate(item)}
        for k in range(RETRIES + 1):
            got = self._round({at: attempt(r, k) for at, r in todo.items()}, out)
            todo = {}
            for (i, j), answer in got.items():
                final[(i, j)] = answer
                if isinstance(answer, FailedResult) or check is None:
                    continue
                text = answer.text  # type: ignore[union-attr]  # judges generate
                if check(i, j, text) is None:
                    continue
                out.tries[i].setdefault(j, []).append(text)
                same = self.greedy_repeats and requests[i][j].temperature == 0
                if k < RETRIES and not same:
                    todo[(i, j)] = requests[i][j]
            if not todo:
                break
        for i, item in enumerate(requests):
            answers = [final[(i, j)] for j in range(len(item))]
            failed = [a.reason for a in answers if isinstance(a, FailedResult)]
            if failed:
                out.answers.append(f"the judge could not answer: {failed[0]}")
            else:
                out.answers.append([a for a in answers if not isinstance(a, FailedResult)])
        return out

    def _round(
        self, asking: dict[tuple[int, int], GenerateRequest], out: Verdicts
    ) -> dict[tuple[int, int], Answer | FailedResult]:
        """One round of requests, by (item, request): stored answers read back, the rest sent;
        every key joins its item's keys, every new answer `out.new`."""
        keys = {at: request_key(self.model_key, r) for at, r in asking.items()}
        reader = Store(self._store_path, create=False)  # this thread's own connection
        try:
            stored = reader.answers(list(keys.values()))
        finally:
            reader.close()
        got: dict[tuple[int, int], Answer | FailedResult] = {}
        sends: list[GenerateRequest] = []
        owners: list[tuple[int, int]] = []
        for at, request in asking.items():
            out.keys[at[0]].append(keys[at])
            if keys[at] in stored:
                got[at] = answer_from_json(kind_of(request), stored[keys[at]])
            else:
                sends.append(request)
                owners.append(at)
        if sends:
            for batch in self.executor.run(sends):
                for index, answer in batch:
                    at = owners[index]
                    got[at] = answer
                    if not isinstance(answer, FailedResult):
                        row = AnswerRow(keys[at], self.model_key, "generate", answer_json(answer))
                        out.new.append(row)
        return got
