"""One page of a run's samples: filtered and searched in SQL, so a run of 100,000 samples costs
a page of rows, not a pass over all of them in Python."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from gnomon.store import Store

Filter = Literal["all", "correct", "wrong"]
FILTERS: tuple[Filter, ...] = ("all", "correct", "wrong")
PER_PAGE = 50
_SHOWN = ("output", "prediction_text", "prediction", "extracted", "target_text", "target")
_SHOWN += ("choices",)


@dataclass
class SamplePage:
    run_id: str
    bench: str
    filter: Filter
    query: str
    page: int
    pages: int
    total: int  # samples matching the filter and search
    counts: dict[str, int]  # all / correct / wrong, before search
    rows: list[dict[str, Any]]
    verdict: str | None = None  # the metric correct/wrong follows, when not the stored flag


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def sample_page(
    store: Store,
    run_id: str,
    bench: str,
    filter: Filter = "all",
    query: str = "",
    page: int = 1,
    per_page: int = PER_PAGE,
    verdict: str | None = None,
) -> SamplePage:
    """`verdict` names the metric whose value 1 makes a sample correct, where that is not the
    stored `correct` flag (a choice benchmark reported by acc_norm: the flag follows acc)."""
    # results_by_key holds idx and correct: counting, filtering and ordering read no row
    base = (
        "FROM run_results r JOIN results s INDEXED BY results_by_key ON s.key = r.key "
        "WHERE r.run_id = ? AND r.bench = ?"
    )
    right, right_params = "s.correct", []
    if verdict:
        right, right_params = "IFNULL(json_extract(s.metrics, ?) = 1, 0)", [f'$."{verdict}"']
    kept = _kept_correct(store, run_id, bench, verdict) if verdict else None
    if kept is not None:  # the count from the index, the correct ones from the kept moments
        counts_row = (store.conn.execute(f"SELECT COUNT(*) {base}", (run_id, bench)).fetchone()[0],
                      kept)  # fmt: skip
    else:
        counts_row = store.conn.execute(
            f"SELECT COUNT(*), TOTAL({right}) {base}", (*right_params, run_id, bench)
        ).fetchone()
    counts = {
        "all": counts_row[0],
        "correct": int(counts_row[1]),
        "wrong": counts_row[0] - int(counts_row[1]),
    }
    where, params = base, [run_id, bench]
    if filter != "all":
        where += f" AND {right} = ?"
        params += [*right_params, 1 if filter == "correct" else 0]
    found: list[int] | None = None
    if query:
        # case-insensitive for ASCII, as SQLite's LIKE is; over what the page shows, not JSON keys
        fields = ["s.prompt", "s.sample_id"] + [f"json_extract(s.payload, '$.{f}')" for f in _SHOWN]
        where += " AND (" + " OR ".join(f"{f} LIKE ? ESCAPE '\\'" for f in fields) + ")"
        params += [_like(query)] * len(fields)
        # one pass over the text: the matches in order give both the total and the page
        found = [r[0] for r in store.conn.execute(f"SELECT s.rowid {where} ORDER BY s.idx", params)]
        total = len(found)
    else:
        total = counts[filter]
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    offset = (page - 1) * per_page
    if found is None:
        # order and skip row ids, not whole rows: a deep page then sorts integers only
        ids = [
            r[0]
            for r in store.conn.execute(
                f"SELECT s.rowid {where} ORDER BY s.idx LIMIT ? OFFSET ?",
                (*params, per_page, offset),
            )
        ]
    else:
        ids = found[offset : offset + per_page]
    marks = ",".join("?" * len(ids))
    fetched = store.conn.execute(
        f"SELECT rowid, sample_id, idx, cluster, correct, metrics, payload, prompt FROM results "
        f"WHERE rowid IN ({marks})",
        ids,
    ).fetchall()
    by_id = {r["rowid"]: r for r in fetched}
    rows = [_sample(by_id[i], verdict) for i in ids]
    return SamplePage(
        run_id,
        bench,
        filter,
        query,
        page,
        pages,
        total,
        counts,
        rows,
        verdict,
    )


def _kept_correct(store: Store, run_id: str, bench: str, metric: str) -> float | None:
    """How many samples scored 1 on a 0/1 metric, from a finished run's kept moments."""
    if not store.conn.execute(
        "SELECT 1 FROM run_moments_done WHERE run_id = ?", (run_id,)
    ).fetchone():
        return None
    row = store.conn.execute(
        "SELECT TOTAL(total), TOTAL(nonbinary), COUNT(*) FROM run_moments "
        "WHERE run_id = ? AND bench = ? AND metric = ?",
        (run_id, bench, metric),
    ).fetchone()
    return row[0] if row[2] and not row[1] else None


def _sample(row: Any, verdict: str | None = None) -> dict[str, Any]:
    payload = json.loads(row["payload"])
    metrics = json.loads(row["metrics"])
    correct = metrics.get(verdict) == 1 if verdict else bool(row["correct"])
    logprobs = payload.get("choice_logprobs")
    choices = None
    if logprobs is not None:
        labels = payload.get("choices") or [str(i) for i in range(len(logprobs))]
        best = max(range(len(logprobs)), key=lambda i: (logprobs[i], -i)) if logprobs else -1
        target = payload.get("target")
        choices = [
            {"label": label, "logprob": lp, "best": i == best, "target": i == target}
            for i, (label, lp) in enumerate(zip(labels, logprobs, strict=False))
        ]
    extracted = payload.get("extracted")
    labels = payload.get("choices")
    norm = payload.get("prediction_norm")
    return {
        "sample_id": row["sample_id"],
        "index": row["idx"],
        "cluster": row["cluster"],
        "correct": correct,
        "metrics": metrics,
        "prompt": row["prompt"],
        "output": payload.get("output"),
        "prediction": payload.get("prediction_text", payload.get("prediction")),
        "prediction_norm": labels[norm] if labels and norm is not None else None,
        "extracted": extracted,
        "target": payload.get("target_text", payload.get("target")),
        "choices": choices,
        "runs": payload.get("runs"),
        "truncated": bool(payload.get("truncated")),
    }
