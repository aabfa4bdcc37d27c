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
from dataclasses import dataclass, field
from pathlib import Path

from gnomon.engines.base import FailedResult, GenerateRequest
from gnomon.pipeline.executor import Executor
from gnomon.requests import Answer, answer_from_json, answer_json, kind_of, request_key
from gnomon.store import AnswerRow, Store


@dataclass
class Verdicts:
    """Per item, the judge's answers in request order, or the reason it could not answer."""

    answers: list[list[Answer] | str] = field(default_factory=list)
    keys: list[list[str]] = field(default_factory=list)
    new: list[AnswerRow] = field(default_factory=list)  # judge answers to store


class Judge:
    """The judge model: its store identity, and an executor loaded on first use (a run whose
    judge verdicts are all stored never loads the judge)."""

    def __init__(self, model_key: str, load: Callable[[], Executor], store_path: Path) -> None:
        self.model_key = model_key
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

    def ask(self, requests: list[list[GenerateRequest]]) -> Verdicts:
        """Answer each item's judge requests: stored verdicts are read back, the rest asked."""
        keys = [[request_key(self.model_key, r) for r in item] for item in requests]
        reader = Store(self._store_path, create=False)  # this thread's own connection
        try:
            stored = reader.answers([k for item in keys for k in item])
        finally:
            reader.close()
        got: dict[tuple[int, int], Answer | FailedResult] = {}
        sends: list[GenerateRequest] = []
        owners: list[tuple[int, int]] = []
        for i, (item, item_keys) in enumerate(zip(requests, keys, strict=True)):
            for j, (request, key) in enumerate(zip(item, item_keys, strict=True)):
                if key in stored:
                    got[(i, j)] = answer_from_json(kind_of(request), stored[key])
                else:
                    sends.append(request)
                    owners.append((i, j))
        out = Verdicts(keys=keys)
        if sends:
            for batch in self.executor.run(sends):
                for index, answer in batch:
                    got[owners[index]] = answer
                    if not isinstance(answer, FailedResult):
                        i, j = owners[index]
                        out.new.append(
                            AnswerRow(keys[i][j], self.model_key, "generate", answer_json(answer))
                        )
        for i, item in enumerate(requests):
            answers = [got[(i, j)] for j in range(len(item))]
            failed = [a.reason for a in answers if isinstance(a, FailedResult)]
            if failed:
                out.answers.append(f"the judge could not answer: {failed[0]}")
            else:
                out.answers.append([a for a in answers if not isinstance(a, FailedResult)])
        return out
