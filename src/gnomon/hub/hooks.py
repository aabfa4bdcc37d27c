"""Row hooks: the few benchmarks whose rows need code, not a template, to become prompt fields.

A spec names a hook by its registered name (never an import path or code string), so a spec file
stays data and cannot run arbitrary code.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Row = dict[str, Any]  # one parsed JSON row: its fields are whatever the data file holds
RowHook = Callable[[Row], Row]


def _clean_hellaswag(text: str) -> str:
    """lm-evaluation-harness's HellaSwag clean-up: WikiHow bracket artifacts and double spaces."""
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ")


def hellaswag(row: Row) -> Row:
    ctx = f"{row['ctx_a']} {str(row['ctx_b']).capitalize()}"
    return {
        **row,
        "query": _clean_hellaswag(f"{row['activity_label']}: {ctx}"),
        "choices": [_clean_hellaswag(str(e)) for e in row["endings"]],
        "gold": int(str(row["label"])),
    }


HOOKS: dict[str, RowHook] = {"hellaswag": hellaswag}
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "hellaswag": ("activity_label", "ctx_a", "ctx_b", "endings", "label"),
}

# Split hooks: preparation that is no function of one row alone (GPQA's seeded shuffle). Each
# makes a fresh row function per subset, called on that subset's rows in order. The Open LLM
# Leaderboard's hooks live in their own module.
SplitHook = Callable[[], RowHook]
SPLIT_HOOKS: dict[str, SplitHook] = {}


def _register_leaderboard() -> None:
    from gnomon.hub import leaderboard_hooks as lb

    HOOKS.update(lb.ROW_HOOKS)
    REQUIRED_FIELDS.update(lb.ROW_FIELDS)
    SPLIT_HOOKS.update(lb.SPLIT_HOOKS)


_register_leaderboard()
