"""The store: one SQLite file holding every answer a model gave and every score made of them.

Answers and scores are kept apart. An answer (table `answers`) is what an engine returned for one
exact request, keyed by the model and the request's content (`gnomon.requests.request_key`); a
score (table `results`) is a scorer's verdict on one sample's answers, keyed by those answers and
the scorer's configuration hash. Resume reuses answers; changing how a benchmark is scored makes
new scores from the stored answers, and the old scores stay under their own scorer hash. Writes
are committed a batch at a time in WAL mode, so a killed process loses at most the batch in flight
and never leaves a half-written row.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gnomon import text
from gnomon.errors import UserError
from gnomon.sandbox.hidden import hide_from_sandboxes
from gnomon.store_answers import AnswerRow, StoreAnswers, _chunks
from gnomon.store_reads import StoreReads
from gnomon.store_schema import (
    _ADDED_COLUMNS,
    _INDEXES,
    _MOMENTS_SQL,
    _SCHEMA,
    _TABLES,
    LEGACY_SCORER,
    SCHEMA_VERSION,
)


def result_key(
    model_key: str,
    bench: str,
    bench_version: int,
    prompt_hash: str,
    sample_id: str,
    content_hash: str,
    settings: dict[str, Any],
) -> str:
    blob = json.dumps(
        [model_key, bench, bench_version, prompt_hash, sample_id, content_hash, settings],
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(text.encode(blob)).hexdigest()


@dataclass(frozen=True)
class ResultRow:
    key: str
    model_key: str
    bench: str
    bench_version: int
    prompt_hash: str
    sample_id: str
    index: int
    cluster: str | None
    correct: bool
    metrics: dict[str, float]
    payload: dict[str, Any]
    prompt: str
    scorer_hash: str = LEGACY_SCORER
    answer_keys: list[str] | None = None  # the answers scored, model's and judge's


class Store(StoreReads, StoreAnswers):
    def __init__(self, path: Path, *, create: bool = True) -> None:
        """`create=False` refuses a path that holds no store: readers must not make one."""
        self.path = path
        hide_from_sandboxes(path)  # its tests and answers are no business of a program we run
        try:
            if create:
                _create_private(path)
            elif not path.is_file():
                raise UserError(f"no store at {path}")
            self.conn = sqlite3.connect(
                path, timeout=30, isolation_level=None, factory=_TextConnection
            )
            self.conn.text_factory = _read_text
        except (OSError, sqlite3.Error) as exc:
            raise UserError(f"cannot open store {path}: {exc}") from None
        try:
            self.conn.row_factory = sqlite3.Row
            tables = self._check_ours()  # before any write: a foreign file stays untouched
            if not create and not tables:
                raise UserError(f"{path}: no gnomon store here yet")
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            if "results" in tables and self._version() < SCHEMA_VERSION:
                old = self._version()
                try:
                    self._migrate()
                except sqlite3.OperationalError as exc:
                    if not _read_only(exc):
                        raise
                    raise UserError(
                        f"{path}: this store is from an older gnomon (schema {old}) and must be "
                        f"upgraded to schema {SCHEMA_VERSION} once, which needs write access to "
                        f"it and its folder ({exc})"
                    ) from None
            if not (tables >= _TABLES and self._indexes() >= _INDEXES):
                self._create()  # readers of a current store write nothing
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            if _read_only(exc):  # SQLite's write-ahead log needs to write beside the file
                raise UserError(
                    f"cannot read store {path} without write access to it and its folder ({exc})"
                ) from None
            raise UserError(f"{path}: not a usable gnomon store ({exc})") from None
        except UserError:
            self.conn.close()
            raise

    def _check_ours(self) -> set[str]:
        tables = {
            r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        if tables and "meta" not in tables:
            raise UserError(f"{self.path}: an SQLite database, but not a gnomon store")
        if "meta" in tables:
            row = self.conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is None or int(row[0]) > SCHEMA_VERSION:
                raise UserError(
                    f"{self.path}: store schema {row[0] if row else '?'} is newer than this "
                    f"gnomon understands ({SCHEMA_VERSION}); upgrade gnomon"
                )
        return tables

    def _version(self) -> int:
        row = self.conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        return int(row[0]) if row else SCHEMA_VERSION

    def _migrate(self) -> None:
        """A schema-1 store gains the new columns and tables in one transaction: its rows stay
        byte for byte, and read as scores of the legacy scorer (their keys are the sample keys
        `gnomon.pipeline.lookup` adopts answers from)."""
        with self.transaction():
            for table, columns in _ADDED_COLUMNS.items():
                have = {r[1] for r in self.conn.execute(f"PRAGMA table_info({table})")}
                for column in columns:
                    if column.split()[0] not in have:
                        self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self.conn.execute(statement)
            self.conn.execute(
                "UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION),)
            )

    def _indexes(self) -> set[str]:
        rows = self.conn.execute("SELECT name FROM sqlite_master WHERE type='index'")
        return {r[0] for r in rows}

    def _create(self) -> None:
        with self.transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self.conn.execute(statement)
            self.conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)",
                (str(SCHEMA_VERSION),),
            )

    def transaction(self) -> _Transaction:
        return _Transaction(self.conn)

    def close(self) -> None:
        self.conn.close()

    # ----------------------------------------------------------------- runs
    def begin_run(
        self, run_id: str, model: str, model_key: str, config: dict[str, Any], version: str
    ) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT INTO runs (run_id, created, status, model, model_key, config, "
                "gnomon_version) VALUES (?, ?, 'running', ?, ?, ?, ?)",
                (run_id, time.time(), model, model_key, _json(config), version),
            )

    def add_bench(
        self,
        run_id: str,
        bench: str,
        version: int,
        prompt_hash: str,
        shots: int,
        keys: Sequence[str],
        spec: dict[str, Any],
        *,
        planned: int | None = None,
        scorer_hash: str | None = None,
        headline: str | None = None,
        headline_note: str | None = None,
        judge: str | None = None,
    ) -> int:
        """Record the plan for one benchmark (`planned` samples, `len(keys)` unless given) and
        link the scores among `keys` that already exist; returns how many were reused.
        `headline` is the metric this run reports (one it produced), with
        `headline_note` saying why when it is not the spec's; `judge` names a judged run's judge."""
        with self.transaction():
            self.conn.execute(
                "INSERT INTO run_benches (run_id, bench, bench_version, prompt_hash, shots, "
                "planned, spec, scorer_hash, headline, headline_note, judge) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id, bench, version, prompt_hash, shots,
                    len(keys) if planned is None else planned, _json(spec),
                    scorer_hash, headline, headline_note, judge,
                ),
            )  # fmt: skip
            reused = 0
            for chunk in _chunks(keys, 500):
                marks = ",".join("?" * len(chunk))
                cur = self.conn.execute(
                    f"INSERT OR IGNORE INTO run_results (run_id, bench, key) "
                    f"SELECT ?, ?, key FROM results WHERE key IN ({marks})",
                    (run_id, bench, *chunk),
                )
                reused += cur.rowcount
        return reused

    def add_results(
        self,
        run_id: str,
        rows: Iterable[ResultRow],
        answers: Iterable[AnswerRow] = (),
        *,
        rescored: bool = False,
    ) -> int:
        """Commit a batch of scored samples, with any answers not yet stored, in one transaction
        (all or nothing). `rescored`: the scores were made from answers already in the store."""
        now = time.time()
        rows = list(rows)
        with self.transaction():
            self._insert_answers(run_id, answers, now)
            self.conn.executemany(
                "INSERT OR IGNORE INTO results (key, model_key, bench, bench_version, "
                "prompt_hash, sample_id, idx, cluster, correct, metrics, payload, prompt, "
                "run_id, created, scorer_hash, answer_keys) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        r.key, r.model_key, r.bench, r.bench_version, r.prompt_hash, r.sample_id,
                        r.index, r.cluster, int(r.correct), _json(r.metrics),
                        _json(r.payload), r.prompt, run_id, now, r.scorer_hash,
                        None if r.answer_keys is None else _json(r.answer_keys),
                    )
                    for r in rows
                ],
            )  # fmt: skip
            self.conn.executemany(
                "INSERT OR IGNORE INTO run_results (run_id, bench, key) VALUES (?, ?, ?)",
                [(run_id, r.bench, r.key) for r in rows],
            )
            counter = "rescored" if rescored else "computed"
            self.conn.execute(
                f"UPDATE runs SET {counter} = {counter} + ? WHERE run_id = ?", (len(rows), run_id)
            )
        return len(rows)

    def add_failures(self, run_id: str, bench: str, failures: Iterable[tuple[str, str]]) -> None:
        """Samples the engine could not answer: kept with the run, not as results."""
        with self.transaction():
            self.conn.executemany(
                "INSERT OR REPLACE INTO run_failures VALUES (?, ?, ?, ?)",
                [(run_id, bench, sample_id, reason) for sample_id, reason in failures],
            )

    def failures(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT bench, sample_id, reason FROM run_failures WHERE run_id = ? ORDER BY rowid",
            (run_id,),
        )
        return [dict(r) for r in rows]

    def finish_run(self, run_id: str, status: str, **fields: Any) -> None:
        allowed = {"engine", "planned", "reused", "tokens", "seconds"}
        sets = ["status = ?", "finished = ?"]
        values: list[Any] = [status, time.time()]
        for name, value in fields.items():
            if name not in allowed:
                raise ValueError(name)
            sets.append(f"{name} = ?")
            values.append(_json(value) if name == "engine" else value)
        with self.transaction():
            self.conn.execute(
                f"UPDATE runs SET {', '.join(sets)} WHERE run_id = ?", (*values, run_id)
            )

    # ----------------------------------------------------------------- reading
    def existing(self, keys: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(keys, 500):
            marks = ",".join("?" * len(chunk))
            found.update(
                r[0]
                for r in self.conn.execute(f"SELECT key FROM results WHERE key IN ({marks})", chunk)
            )
        return found

    def runs(self) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT * FROM runs ORDER BY created DESC").fetchall()
        return [_run_dict(r) for r in rows]

    def run(self, run_id: str) -> dict[str, Any]:
        row = self.conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            matches = self.conn.execute(
                "SELECT * FROM runs WHERE run_id LIKE ? ORDER BY created DESC", (run_id + "%",)
            ).fetchall()
            if len(matches) != 1:
                if matches:
                    raise UserError(f"run id {run_id!r} matches {len(matches)} runs; give more")
                raise UserError(f"no run {run_id!r} in {self.path}")
            row = matches[0]
        return _run_dict(row)

    def run_benches(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT b.*, (SELECT COUNT(*) FROM run_results r WHERE r.run_id = b.run_id "
            "AND r.bench = b.bench) AS done FROM run_benches b WHERE run_id = ? ORDER BY rowid",
            (run_id,),
        ).fetchall()
        return [dict(r) | {"spec": json.loads(r["spec"])} for r in rows]

    def moments(self, run_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Rows of (run_id, bench, metric, cluster, n, total, total_sq, nonbinary) for these runs.
        A finished run never changes, so its moments are computed once and kept; a run still
        going is computed afresh on every call."""
        out: list[dict[str, Any]] = []
        pending = list(dict.fromkeys(run_ids))
        for chunk in _chunks(pending, 500):
            marks = ",".join("?" * len(chunk))
            kept = {
                r[0]
                for r in self.conn.execute(
                    f"SELECT run_id FROM run_moments_done WHERE run_id IN ({marks})", chunk
                )
            }
            if kept:
                rows = self.conn.execute(
                    f"SELECT * FROM run_moments WHERE run_id IN ({','.join('?' * len(kept))})",
                    list(kept),
                )
                out.extend(dict(r) for r in rows)
            for run_id in chunk:
                if run_id not in kept:
                    out.extend(self._compute_moments(run_id))
        return out

    def _compute_moments(self, run_id: str) -> list[dict[str, Any]]:
        status = self.conn.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        rows = [
            {"run_id": run_id, **dict(r)}
            for r in self.conn.execute(_MOMENTS_SQL, (run_id,)).fetchall()
        ]
        if status is not None and status[0] != "running":  # read after it ended: final
            try:
                self._keep_moments(run_id, rows)
            except sqlite3.OperationalError as exc:
                if not _read_only(exc):
                    raise  # a read-only store is read all the same, the sums not kept
        return rows

    def _keep_moments(self, run_id: str, rows: list[dict[str, Any]]) -> None:
        with self.transaction():
            if self.conn.execute(
                "SELECT 1 FROM run_moments_done WHERE run_id = ?", (run_id,)
            ).fetchone():
                return  # another reader kept them first
            self.conn.executemany(
                "INSERT INTO run_moments VALUES (:run_id, :bench, :metric, :cluster, :n, "
                ":total, :total_sq, :nonbinary)",
                rows,
            )
            self.conn.execute("INSERT INTO run_moments_done VALUES (?)", (run_id,))

    def truncated_counts(self, run_id: str) -> dict[str, int]:
        rows = self.conn.execute(
            "SELECT r.bench, COUNT(*) FROM run_results r JOIN results s ON s.key = r.key "
            "WHERE r.run_id = ? AND json_extract(s.payload, '$.truncated') GROUP BY r.bench",
            (run_id,),
        )
        return {bench: count for bench, count in rows}

    def cut_counts(self, run_id: str) -> dict[str, int]:
        """Samples whose generation ran out of its token budget (`cut_at_max_tokens`)."""
        rows = self.conn.execute(
            "SELECT r.bench, COUNT(*) FROM run_results r JOIN results s ON s.key = r.key "
            "WHERE r.run_id = ? AND json_extract(s.payload, '$.cut_at_max_tokens') "
            "GROUP BY r.bench",
            (run_id,),
        )
        return {bench: count for bench, count in rows}

    def no_answer_counts(self, run_id: str) -> dict[str, int]:
        """Samples whose generation held no answer any extractor could find: scored as wrong
        (the extractor's fallback), and counted apart so a report can tell them from errors."""
        rows = self.conn.execute(
            "SELECT r.bench, COUNT(*) FROM run_results r JOIN results s ON s.key = r.key "
            "WHERE r.run_id = ? AND json_extract(s.payload, '$.extractor') = 'none' "
            "GROUP BY r.bench",
            (run_id,),
        )
        return {bench: count for bench, count in rows}

    def samples(self, run_id: str, bench: str | None = None) -> Iterator[dict[str, Any]]:
        query = (
            "SELECT s.* FROM run_results r JOIN results s ON s.key = r.key WHERE r.run_id = ?"
            + (" AND r.bench = ?" if bench else "")
            + " ORDER BY s.bench, s.idx"
        )
        for row in self.conn.execute(query, (run_id, bench) if bench else (run_id,)):
            yield {
                "key": row["key"],
                "bench": row["bench"],
                "sample_id": row["sample_id"],
                "index": row["idx"],
                "cluster": row["cluster"],
                "correct": bool(row["correct"]),
                "metrics": json.loads(row["metrics"]),
                "prompt": row["prompt"],
                "prompt_hash": row["prompt_hash"],
                **json.loads(row["payload"]),
            }


def _create_private(path: Path) -> None:
    """A new store holds expected answers: owner-only from the first byte (its folder too, when
    gnomon makes it). SQLite gives the -wal and -shm files the database file's mode. An existing
    file keeps the mode its owner chose."""
    if not path.parent.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _read_only(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorname", "").startswith("SQLITE_READONLY")


def _json(obj: Any) -> str:
    """JSON columns keep lone surrogates raw (the connection's `to_store` escapes them), so even
    a high and a low surrogate side by side come back as two, not as one character."""
    return json.dumps(obj, ensure_ascii=False)


def _stored(params: Any) -> Any:
    if isinstance(params, dict):
        return {k: text.to_store(v) if isinstance(v, str) else v for k, v in params.items()}
    return tuple(text.to_store(v) if isinstance(v, str) else v for v in params)


def _read_text(data: bytes) -> str:
    return text.from_store(data.decode("utf-8", "replace"))


class _TextConnection(sqlite3.Connection):
    """Every str goes into SQLite through `text.to_store` and comes out through
    `text.from_store` (the text_factory): any str, lone surrogates included, is stored and read
    back exactly, whichever module runs the query."""

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        return super().execute(sql, _stored(parameters))

    def executemany(self, sql: str, seq: Iterable[Any], /) -> sqlite3.Cursor:
        return super().executemany(sql, (_stored(p) for p in seq))


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception (Ctrl-C included)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        if self.conn.in_transaction:  # one left open by a Ctrl-C that landed right after BEGIN
            self.conn.execute("ROLLBACK")
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _run_dict(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    out["config"] = json.loads(out["config"])
    out["engine"] = json.loads(out["engine"]) if out["engine"] else {}
    return out
