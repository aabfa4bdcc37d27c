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
) -> SamplePage:
    base = "FROM run_results r JOIN results s ON s.key = r.key WHERE r.run_id = ? AND r.bench = ?"
    counts_row = store.conn.execute(
        f"SELECT COUNT(*), TOTAL(s.correct) {base}", (run_id, bench)
    ).fetchone()
    counts = {
        "all": counts_row[0],
        "correct": int(counts_row[1]),
        "wrong": counts_row[0] - int(counts_row[1]),
    }
    where, params = base, [run_id, bench]
    if filter != "all":
        where += " AND s.correct = ?"
        params.append(1 if filter == "correct" else 0)
    if query:
        # case-insensitive for ASCII, as SQLite's LIKE is; over what the page shows, not JSON keys
        fields = ["s.prompt", "s.sample_id"] + [f"json_extract(s.payload, '$.{f}')" for f in _SHOWN]
        where += " AND (" + " OR ".join(f"{f} LIKE ? ESCAPE '\\'" for f in fields) + ")"
        params += [_like(query)] * len(fields)
    if query or filter != "all":
        total = store.conn.execute(f"SELECT COUNT(*) {where}", params).fetchone()[0]
    else:
        total = counts["all"]
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    rows = store.conn.execute(
        f"SELECT s.sample_id, s.idx, s.cluster, s.correct, s.metrics, s.payload, s.prompt "
        f"{where} ORDER BY s.idx LIMIT ? OFFSET ?",
        (*params, per_page, (page - 1) * per_page),
    ).fetchall()
    return SamplePage(
        run_id,
        bench,
        filter,
        query,
        page,
        pages,
        total,
        counts,
        [_sample(r) for r in rows],
    )


def _sample(row: Any) -> dict[str, Any]:
    payload = json.loads(row["payload"])
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
    return {
        "sample_id": row["sample_id"],
        "index": row["idx"],
        "cluster": row["cluster"],
        "correct": bool(row["correct"]),
        "metrics": json.loads(row["metrics"]),
        "prompt": row["prompt"],
        "output": payload.get("output"),
        "prediction": payload.get("prediction_text", payload.get("prediction")),
        "extracted": extracted,
        "target": payload.get("target_text", payload.get("target")),
        "choices": choices,
        "runs": payload.get("runs"),
        "truncated": bool(payload.get("truncated")),
    }
