"""The leaderboard as plain JSON: served at /api/board.json and written by the static export, for
anyone who wants the numbers rather than the pages."""

from __future__ import annotations

import math
from typing import Any

from gnomon.rank.board import Board, Entry, Interval
from gnomon.stats import Score


def _num(x: float) -> float | None:
    return None if math.isnan(x) else x


def _score(s: Score | Interval | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {
        "value": _num(s.value),
        "stderr": _num(s.stderr),
        "ci95": [_num(s.ci_low), _num(s.ci_high)],
    }


def _judged(e: Entry) -> dict[str, Any]:
    return {
        "judge": e.judge,
        "judge_name": e.judge_name,
        "judge_prompt_hash": e.judge_prompt_hash,
        "judge_sampling": e.judge_sampling,
        "judge_reliability": e.reliability.as_dict() if e.reliability else None,
    }


def board_json(board: Board) -> dict[str, Any]:
    return {
        "dimensions": board.dimensions,
        # one entry per column: a benchmark in its standard setting under its own id, and
        # each other setting seen as a variant (`mmlu@0shot`) naming its benchmark
        "benchmarks": {
            b.id: {
                "title": b.title,
                "dimension": b.dimension,
                "metric": b.headline,
                "benchmark": b.bench,
                "setting": b.setting.describe(),
                # values are in the metric's own unit: a share 0..1, BLEU 0..100 points, ...
                "unit": b.scale.unit,
                "higher_is_better": b.scale.higher_is_better,
                "averaged": b.averaged,
                # a judged column: its one judge (another judge's scores: another column)
                "judge": {"name": b.judge, "key": b.judge_key} if b.judge else None,
            }
            for b in board.benches.values()
        },
        "models": [
            {
                "name": m.name,
                "key": m.key,
                "slug": m.slug,
                "overall": _score(m.overall),
                "complete": m.complete,
                "dimensions": {d: _score(m.dimensions.get(d)) for d in board.dimensions},
                "missing": {d: ids for d, ids in m.missing.items() if ids},
                "benchmarks": {
                    bid: {
                        **(_score(e.score) or {}),
                        "n": e.done,
                        "planned": e.planned,
                        "run_id": e.run_id,
                        "prompt_hash": e.prompt_hash,
                        "shots": e.shots,
                        "benchmark": e.bench,
                        "metric": e.headline,
                        "unit": e.scale.unit,
                        **(_judged(e) if e.judge else {}),
                    }
                    for bid, e in m.entries.items()
                },
            }
            for m in board.models
        ],
    }
