"""The store's answers: what engines returned, one row per exact request, written with the
scores made of them or on their own (a conversation part-way, a sample with a failed request),
and the schema-1 scores whose answers a new run adopts. A mixin of `Store`."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from gnomon import text
from gnomon.store_schema import LEGACY_SCORER


@dataclass(frozen=True)
class AnswerRow:
    key: str  # gnomon.requests.request_key: the model and the exact request
    model_key: str
    kind: str  # score or generate
    answer: str  # JSON (gnomon.requests.answer_json)


class StoreAnswers:
    conn: sqlite3.Connection

    def transaction(self) -> Any:
        raise NotImplementedError

    def add_answers(self, run_id: str, answers: Iterable[AnswerRow]) -> None:
        """Answers whose sample is not finished yet (a multi-turn conversation part-way, a
        sample another of whose requests failed): kept, so no request is ever sent twice."""
        with self.transaction():
            self._insert_answers(run_id, answers, time.time())

    def _insert_answers(self, run_id: str, answers: Iterable[AnswerRow], now: float) -> None:
        """The hottest write of a run (one row per request): the text of each row is made
        storable once per distinct value (`text.to_store`), not once per parameter."""
        stored: dict[str, str] = {}

        def once(value: str) -> str:
            if value not in stored:
                stored[value] = text.to_store(value)
            return stored[value]

        rows = [
            (a.key, once(a.model_key), a.kind, text.to_store(a.answer), once(run_id), now)
            for a in answers
        ]
        if rows:
            sqlite3.Connection.executemany(
                self.conn, "INSERT OR IGNORE INTO answers VALUES (?, ?, ?, ?, ?, ?)", rows
            )

    def answers(self, keys: Sequence[str]) -> dict[str, str]:
        """The stored answers (JSON text, see `gnomon.requests`) among these request keys."""
        found: dict[str, str] = {}
        for chunk in _chunks(list(dict.fromkeys(keys)), 500):
            marks = ",".join("?" * len(chunk))
            rows = self.conn.execute(
                f"SELECT key, answer FROM answers WHERE key IN ({marks})", chunk
            )
            found.update((r[0], r[1]) for r in rows)
        return found

    def legacy_results(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Scores written before answers were kept apart, by their key (the sample key), with
        the payload their answers can be read back from and the config of the run that made
        them."""
        found: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(list(dict.fromkeys(keys)), 500):
            marks = ",".join("?" * len(chunk))
            rows = self.conn.execute(
                f"SELECT s.key, s.payload, r.config FROM results s LEFT JOIN runs r "
                f"ON r.run_id = s.run_id WHERE s.key IN ({marks}) AND s.scorer_hash = ?",
                (*chunk, LEGACY_SCORER),
            )
            for key, payload, config in rows:
                found[key] = {
                    "payload": json.loads(payload),
                    "config": json.loads(config) if config else {},
                }
        return found


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
