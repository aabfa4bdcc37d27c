"""What the leaderboard, its pages and the sample browser read from the store, as methods of the
store itself (`Store` inherits `StoreReads`).

Every query the user-facing readers need lives here, next to the schema it depends on: a change
of table layout is then made in the store's own package, and `gnomon.rank` holds no SQL. The
queries keep the tricks that make a board of thousands of runs and a run of 100,000 samples
cheap: counts and order read from `results_by_key` (INDEXED BY, since the planner would pick the
unique key index), the kept moments of a finished run instead of a pass over its rows, rows
fetched by rowid after ordering integers only, and IN lists cut into chunks of 500.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

SampleFilter = Literal["all", "correct", "wrong"]
# payload fields a sample page shows, hence what its search covers (besides prompt and id)
SHOWN_FIELDS: tuple[str, ...] = (
    "output",
    "prediction_text",
    "prediction",
    "extracted",
    "target_text",
    "target",
    "choices",
    "turn_outputs",  # a conversation's answers, a judge's replies, the tool calls as written
    "judge_replies",
    "judge_retries",
    "tool_calls",
    "error",
)
# a headline metric's value for one sample: (value, cluster, results rowid)
MetricValue = tuple[float, str | None, int]
_CHUNK = 500


@dataclass(frozen=True)
class StoredSample:
    """One results row as the pages show it, JSON columns decoded."""

    rowid: int
    sample_id: str
    index: int
    cluster: str | None
    correct: bool  # the stored flag (acc for choice, exact_match for generation)
    metrics: dict[str, float]
    payload: dict[str, Any]
    prompt: str


@dataclass(frozen=True)
class SampleSlice:
    """A window of one run's samples on one benchmark, filtered and searched."""

    counts: dict[str, int]  # all / correct / wrong, before the search
    total: int  # samples matching the filter and the search
    offset: int  # where the window starts: past the last match, the last full window's start
    rows: list[StoredSample]


class StoreReads:
    """Read-only queries for `gnomon rank` and the reports. Mixed into `Store`, which owns the
    connection; nothing here writes."""

    conn: sqlite3.Connection

    # ----------------------------------------------------------------- runs
    def data_version(self) -> tuple[int, int]:
        """Changes when anything was committed since: `data_version` moves with other
        connections' commits, `total_changes` with this connection's own writes."""
        return self.conn.execute("PRAGMA data_version").fetchone()[0], self.conn.total_changes

    def run_ids(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT run_id FROM runs")]

    def run_row(self, run_id: str) -> dict[str, Any] | None:
        """The run with exactly this id, columns as stored (config and engine as JSON text);
        None when there is none. `Store.run` instead takes a unique prefix and raises."""
        row = self.conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return dict(row) if row is not None else None

    def run_history(self, model_key: str) -> list[dict[str, Any]]:
        """Every run of one model, newest first: id, created, status, planned, seconds, tokens."""
        rows = self.conn.execute(
            "SELECT run_id, created, status, planned, seconds, tokens FROM runs "
            "WHERE model_key = ? ORDER BY created DESC",
            (model_key,),
        )
        return [dict(r) for r in rows]

    def leaderboard_rows(self) -> list[dict[str, Any]]:
        """One row per (run, benchmark): the candidates for each cell of the board. `config`
        and `spec` stay JSON text; the board decodes each distinct spec once. `scored`: whether
        the run stored any score of the benchmark."""
        rows = self.conn.execute(
            "SELECT r.run_id, r.model, r.model_key, r.status, r.created, r.config, b.bench, "
            "b.bench_version, b.prompt_hash, b.shots, b.planned, b.spec, b.headline, "
            "b.headline_note, b.judge, EXISTS (SELECT 1 FROM run_results l WHERE "
            "l.run_id = b.run_id AND l.bench = b.bench) AS scored "
            "FROM run_benches b JOIN runs r ON r.run_id = b.run_id"
        ).fetchall()
        return [dict(r) for r in rows]

    # ----------------------------------------------------------------- judges
    def judged_runs(self, bench: str | None = None) -> list[dict[str, Any]]:
        """Every (run, benchmark) a judge scored, oldest first: run_id, bench, judge (its model
        key), scorer_hash, spec (decoded), created, model_key, model and the judge as the run
        was given it (`judge_display`, e.g. `openai:gpt-4o`)."""
        rows = self.conn.execute(
            "SELECT b.run_id, b.bench, b.judge, b.scorer_hash, b.spec, r.created, r.model_key, "
            "r.model, json_extract(r.config, '$.judge') AS judge_display FROM run_benches b "
            "JOIN runs r ON r.run_id = b.run_id WHERE b.judge IS NOT NULL"
            + (" AND b.bench = ?" if bench is not None else "")
            + " ORDER BY r.created, b.run_id",
            (bench,) if bench is not None else (),
        ).fetchall()
        return [dict(r) | {"spec": json.loads(r["spec"])} for r in rows]

    def judged_scores(self, run_id: str, bench: str, scorer_hash: str) -> list[dict[str, Any]]:
        """A judged run's scores on one benchmark under its own scorer: sample_id, model_key,
        metrics, verdicts and answer_keys (the model's answers and the judge's, in order)."""
        rows = self.conn.execute(
            "SELECT s.sample_id, s.model_key, s.metrics, json_extract(s.payload, '$.verdicts'), "
            "s.answer_keys FROM run_results r JOIN results s ON s.key = r.key "
            "WHERE r.run_id = ? AND r.bench = ? AND s.scorer_hash = ? ORDER BY s.idx",
            (run_id, bench, scorer_hash),
        )
        return [
            {
                "sample_id": sid,
                "model_key": model_key,
                "metrics": json.loads(metrics),
                "verdicts": json.loads(verdicts) if verdicts is not None else None,
                "answer_keys": json.loads(keys) if keys is not None else None,
            }
            for sid, model_key, metrics, verdicts, keys in rows
        ]

    def answer_owners(self, keys: Sequence[str]) -> dict[str, str]:
        """Answer key -> the model key that gave it, for the keys stored."""
        out: dict[str, str] = {}
        for chunk in _chunks(list(dict.fromkeys(keys))):
            marks = ",".join("?" * len(chunk))
            rows = self.conn.execute(
                f"SELECT key, model_key FROM answers WHERE key IN ({marks})", list(chunk)
            )
            out.update((key, owner) for key, owner in rows)
        return out

    # ----------------------------------------------------------------- samples
    def first_sample(self, run_id: str, bench: str) -> dict[str, Any] | None:
        """The run's first question on a benchmark (sample_id, prompt): found in the index, then
        read alone, so a run of any size costs one row."""
        first = self.conn.execute(
            "SELECT s.rowid FROM run_results r JOIN results s INDEXED BY results_by_key "
            "ON s.key = r.key WHERE r.run_id = ? AND r.bench = ? ORDER BY s.idx LIMIT 1",
            (run_id, bench),
        ).fetchone()
        if first is None:
            return None
        row = self.conn.execute(
            "SELECT sample_id, prompt FROM results WHERE rowid = ?", (first[0],)
        ).fetchone()
        return dict(row) if row is not None else None

    def sample_slice(
        self,
        run_id: str,
        bench: str,
        filter: SampleFilter = "all",
        search: str = "",
        offset: int = 0,
        limit: int = 50,
        verdict: str | None = None,
    ) -> SampleSlice:
        """Up to `limit` samples from `offset` in question order, keeping those the filter and
        the search (a case-insensitive substring of the prompt, the sample id or a shown payload
        field) keep. `verdict` names the 0/1 metric that makes a sample correct where that is
        not the stored flag (a choice benchmark reported by acc_norm)."""
        # results_by_key holds idx and correct: counting, filtering and ordering read no row
        base = (
            "FROM run_results r JOIN results s INDEXED BY results_by_key ON s.key = r.key "
            "WHERE r.run_id = ? AND r.bench = ?"
        )
        right, right_params = "s.correct", []
        if verdict:
            right, right_params = "IFNULL(json_extract(s.metrics, ?) = 1, 0)", [f'$."{verdict}"']
        kept = self._kept_correct(run_id, bench, verdict) if verdict else None
        if kept is not None:  # the count from the index, the correct ones from the kept moments
            counted = self.conn.execute(f"SELECT COUNT(*) {base}", (run_id, bench)).fetchone()[0]
            counts_row = (counted, kept)
        else:
            counts_row = self.conn.execute(
                f"SELECT COUNT(*), TOTAL({right}) {base}", (*right_params, run_id, bench)
            ).fetchone()
        counts = {
            "all": counts_row[0],
            "correct": int(counts_row[1]),
            "wrong": counts_row[0] - int(counts_row[1]),
        }
        where = base
        params: list[str | int] = [run_id, bench]
        if filter != "all":
            where += f" AND {right} = ?"
            params += [*right_params, 1 if filter == "correct" else 0]
        found: list[int] | None = None
        if search:
            # case-insensitive for ASCII, as SQLite's LIKE is; over what the page shows, not keys
            fields = ["s.prompt", "s.sample_id"]
            fields += [f"json_extract(s.payload, '$.{f}')" for f in SHOWN_FIELDS]
            where += " AND (" + " OR ".join(f"{f} LIKE ? ESCAPE '\\'" for f in fields) + ")"
            params += [_like(search)] * len(fields)
            # one pass over the text: the matches in order give both the total and the window
            found = [
                r[0] for r in self.conn.execute(f"SELECT s.rowid {where} ORDER BY s.idx", params)
            ]
            total = len(found)
        else:
            total = counts[filter]
        limit = max(1, limit)
        last = (max(1, -(-total // limit)) - 1) * limit
        offset = min(max(0, offset), last)
        if found is None:
            # order and skip row ids, not whole rows: a deep page then sorts integers only
            ids = [
                r[0]
                for r in self.conn.execute(
                    f"SELECT s.rowid {where} ORDER BY s.idx LIMIT ? OFFSET ?",
                    (*params, limit, offset),
                )
            ]
        else:
            ids = found[offset : offset + limit]
        by_id = self.results_by_rowid(ids)
        return SampleSlice(counts, total, offset, [by_id[i] for i in ids])

    def _kept_correct(self, run_id: str, bench: str, metric: str) -> float | None:
        """How many samples scored 1 on a 0/1 metric, from a finished run's kept moments; None
        when they are not kept or the metric is not 0/1."""
        if not self.conn.execute(
            "SELECT 1 FROM run_moments_done WHERE run_id = ?", (run_id,)
        ).fetchone():
            return None
        row = self.conn.execute(
            "SELECT TOTAL(total), TOTAL(nonbinary), COUNT(*) FROM run_moments "
            "WHERE run_id = ? AND bench = ? AND metric = ?",
            (run_id, bench, metric),
        ).fetchone()
        return row[0] if row[2] and not row[1] else None

    def results_by_rowid(self, rowids: Sequence[int]) -> dict[int, StoredSample]:
        """These results rows, by rowid (the handle the other reads return)."""
        out: dict[int, StoredSample] = {}
        for chunk in _chunks(rowids):
            marks = ",".join("?" * len(chunk))
            rows = self.conn.execute(
                f"SELECT rowid, sample_id, idx, cluster, correct, metrics, payload, prompt "
                f"FROM results WHERE rowid IN ({marks})",
                list(chunk),
            )
            for r in rows:
                out[r[0]] = StoredSample(
                    r[0], r[1], r[2], r[3], bool(r[4]), json.loads(r[5]), json.loads(r[6]), r[7]
                )
        return out

    # ----------------------------------------------------------------- comparison
    def headline_values(
        self, run_id: str, bench: str, metric: str, sample_ids: Sequence[str] | None = None
    ) -> dict[str, MetricValue]:
        """sample_id -> (value, cluster, rowid) of one metric over a run's benchmark, samples
        without the metric left out. All of them in question order, in one query; or only
        `sample_ids`, found through `results_by_sample`, so a small run's questions are looked
        up in a large run without reading it whole."""
        path = f'$."{metric}"'
        if sample_ids is None:
            rows = self.conn.execute(
                "SELECT s.sample_id, s.cluster, json_extract(s.metrics, ?), s.rowid "
                "FROM run_results r JOIN results s ON s.key = r.key "
                "WHERE r.run_id = ? AND r.bench = ? ORDER BY s.idx",
                (path, run_id, bench),
            )
            return {sid: (v, c, rowid) for sid, c, v, rowid in rows if v is not None}
        out: dict[str, MetricValue] = {}
        for chunk in _chunks(sample_ids):
            marks = ",".join("?" * len(chunk))
            rows = self.conn.execute(
                f"SELECT s.sample_id, s.cluster, json_extract(s.metrics, ?), s.rowid "
                f"FROM results s INDEXED BY results_by_sample JOIN run_results r "
                f"ON r.run_id = ? AND r.key = s.key WHERE s.bench = ? AND s.sample_id IN ({marks})",
                (path, run_id, bench, *chunk),
            )
            out.update((sid, (v, c, rowid)) for sid, c, v, rowid in rows if v is not None)
        return out


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]
