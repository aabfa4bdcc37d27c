"""The store: one SQLite file holding every sample result, keyed by content.

A result's key hashes the model, the benchmark version, the prompt hash, the sample (id and rendered
content) and the settings that change answers. Cache, resume and "what has this model done" are
the same lookup. Results are committed a batch at a time in WAL mode, so a killed process loses at
most the batch in flight and never leaves a half-written row.
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
from gnomon.store_reads import StoreReads

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    finished REAL,
    status TEXT NOT NULL,
    model TEXT NOT NULL,
    model_key TEXT NOT NULL,
    config TEXT NOT NULL,
    engine TEXT,
    gnomon_version TEXT NOT NULL,
    planned INTEGER NOT NULL DEFAULT 0,
    reused INTEGER NOT NULL DEFAULT 0,
    computed INTEGER NOT NULL DEFAULT 0,
    tokens INTEGER NOT NULL DEFAULT 0,
    seconds REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    model_key TEXT NOT NULL,
    bench TEXT NOT NULL,
    bench_version INTEGER NOT NULL,
    prompt_hash TEXT NOT NULL,
    sample_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    cluster TEXT,
    correct INTEGER NOT NULL,
    metrics TEXT NOT NULL,
    payload TEXT NOT NULL,
    prompt TEXT NOT NULL,
    run_id TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS results_by_model ON results (model_key, bench, prompt_hash);
-- A run's samples by index and verdict without reading each row: the sample pages count, filter
-- and order by these (`INDEXED BY results_by_key`: the planner would pick the unique key index).
CREATE INDEX IF NOT EXISTS results_by_key ON results (key, idx, correct);
-- One question across runs: a comparison looks up the few questions a small run shares with a
-- large one instead of reading the large run whole.
CREATE INDEX IF NOT EXISTS results_by_sample ON results (bench, sample_id);
CREATE TABLE IF NOT EXISTS run_results (
    run_id TEXT NOT NULL,
    bench TEXT NOT NULL,
    key TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE INDEX IF NOT EXISTS run_results_by_bench ON run_results (run_id, bench, key);
CREATE TABLE IF NOT EXISTS run_failures (
    run_id TEXT NOT NULL,
    bench TEXT NOT NULL,
    sample_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (run_id, bench, sample_id)
);
CREATE TABLE IF NOT EXISTS run_benches (
    run_id TEXT NOT NULL,
    bench TEXT NOT NULL,
    bench_version INTEGER NOT NULL,
    prompt_hash TEXT NOT NULL,
    shots INTEGER NOT NULL,
    planned INTEGER NOT NULL,
    spec TEXT NOT NULL,
    PRIMARY KEY (run_id, bench)
);
CREATE TABLE IF NOT EXISTS run_moments (
    run_id TEXT NOT NULL,
    bench TEXT NOT NULL,
    metric TEXT NOT NULL,
    cluster TEXT,
    n INTEGER NOT NULL,
    total REAL NOT NULL,
    total_sq REAL NOT NULL,
    nonbinary INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS run_moments_by_run ON run_moments (run_id, bench);
CREATE TABLE IF NOT EXISTS run_moments_done (run_id TEXT PRIMARY KEY);
"""
_TABLES = {"meta", "runs", "results", "run_results", "run_failures", "run_benches"}
_TABLES |= {"run_moments", "run_moments_done"}
_INDEXES = {"results_by_model", "results_by_key", "results_by_sample", "run_results_by_bench"}
_INDEXES |= {"run_moments_by_run"}

# Per (bench, metric, cluster) count, sum and sum of squares of a run's sample metrics: every
# score and interval is rebuilt from these (stats.summarize_moments) without loading samples.
_MOMENTS_SQL = """
SELECT r.bench AS bench, j.key AS metric, s.cluster AS cluster, COUNT(*) AS n,
       TOTAL(j.value) AS total, TOTAL(j.value * j.value) AS total_sq,
       TOTAL(j.value NOT IN (0, 1)) AS nonbinary
FROM run_results r JOIN results s ON s.key = r.key, json_each(s.metrics) j
WHERE r.run_id = ? GROUP BY r.bench, j.key, s.cluster
"""


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


class Store(StoreReads):
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
            if not (tables >= _TABLES and self._indexes() >= _INDEXES):
                self._create()  # readers of a current store write nothing
        except sqlite3.DatabaseError as exc:
            self.conn.close()
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
    ) -> int:
        """Record the plan for one benchmark and link the results that already exist; returns
        how many were reused."""
        with self.transaction():
            self.conn.execute(
                "INSERT INTO run_benches VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, bench, version, prompt_hash, shots, len(keys), _json(spec)),
            )
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

    def add_results(self, run_id: str, rows: Iterable[ResultRow]) -> int:
        """Commit a batch of finished samples in one transaction (all or nothing)."""
        now = time.time()
        rows = list(rows)
        with self.transaction():
            for r in rows:
                self.conn.execute(
                    "INSERT OR IGNORE INTO results VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        r.key, r.model_key, r.bench, r.bench_version, r.prompt_hash, r.sample_id,
                        r.index, r.cluster, int(r.correct), _json(r.metrics),
                        _json(r.payload), r.prompt, run_id, now,
                    ),
                )  # fmt: skip
                self.conn.execute(
                    "INSERT OR IGNORE INTO run_results (run_id, bench, key) VALUES (?, ?, ?)",
                    (run_id, r.bench, r.key),
                )
            self.conn.execute(
                "UPDATE runs SET computed = computed + ? WHERE run_id = ?", (len(rows), run_id)
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
            with self.transaction():
                if self.conn.execute(
                    "SELECT 1 FROM run_moments_done WHERE run_id = ?", (run_id,)
                ).fetchone():
                    return rows  # another reader kept them first
                self.conn.executemany(
                    "INSERT INTO run_moments VALUES (:run_id, :bench, :metric, :cluster, :n, "
                    ":total, :total_sq, :nonbinary)",
                    rows,
                )
                self.conn.execute("INSERT INTO run_moments_done VALUES (?)", (run_id,))
        return rows

    def truncated_counts(self, run_id: str) -> dict[str, int]:
        rows = self.conn.execute(
            "SELECT r.bench, COUNT(*) FROM run_results r JOIN results s ON s.key = r.key "
            "WHERE r.run_id = ? AND json_extract(s.payload, '$.truncated') GROUP BY r.bench",
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


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _run_dict(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    out["config"] = json.loads(out["config"])
    out["engine"] = json.loads(out["engine"]) if out["engine"] else {}
    return out
