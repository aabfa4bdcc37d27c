"""One page of a run's samples: filtered and searched in SQL, so a run of 100,000 samples costs
a page of rows, not a pass over all of them in Python."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gnomon.rank.sample_detail import judgments, tool_calls, turns
from gnomon.store import Store
from gnomon.store_reads import SampleFilter, StoredSample

Filter = SampleFilter
FILTERS: tuple[Filter, ...] = ("all", "correct", "wrong")
PER_PAGE = 50


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


def sample_page(
    store: Store,
    run_id: str,
    bench: str,
    filter: Filter = "all",
    query: str = "",
    page: int = 1,
    per_page: int = PER_PAGE,
    verdict: str | None = None,
    judge: dict[str, Any] | None = None,
) -> SamplePage:
    """`verdict` names the metric whose value 1 makes a sample correct, where that is not the
    stored `correct` flag (a choice benchmark reported by acc_norm: the flag follows acc). `judge`
    is the spec's judge section, which tells what each stored judge reply judged. A page past the
    last one shows the last."""
    found = store.sample_slice(
        run_id, bench, filter, query, (max(1, page) - 1) * per_page, per_page, verdict
    )
    pages = max(1, -(-found.total // per_page))
    rows = [_sample(r, verdict, judge) for r in found.rows]
    return SamplePage(
        run_id,
        bench,
        filter,
        query,
        found.offset // per_page + 1,
        pages,
        found.total,
        found.counts,
        rows,
        verdict,
    )


def _sample(
    row: StoredSample, verdict: str | None = None, judge: dict[str, Any] | None = None
) -> dict[str, Any]:
    payload, metrics = row.payload, row.metrics
    correct = metrics.get(verdict) == 1 if verdict else row.correct
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
    extractor = payload.get("extractor")  # what read the scored answer out of the output
    return {
        "sample_id": row.sample_id,
        "index": row.index,
        "cluster": row.cluster,
        "correct": correct,
        "metrics": metrics,
        "prompt": row.prompt,
        "output": payload.get("output"),
        "prediction": payload.get("prediction_text", payload.get("prediction")),
        "prediction_norm": labels[norm] if labels and norm is not None else None,
        "extracted": extracted,
        "extractor": str(extractor) if extractor is not None else None,
        "target": payload.get("target_text", payload.get("target")),
        "choices": choices,
        "runs": payload.get("runs"),
        "truncated": bool(payload.get("truncated")),
        "reasoning": payload.get("reasoning"),
        "cut_at_max_tokens": bool(payload.get("cut_at_max_tokens")),
        "turns": turns(row.prompt, payload),
        "judgments": judgments(payload, judge),
        "tool_calls": tool_calls(payload),
        "error": payload.get("error"),  # why a checker (BFCL's) refused the answer
    }
