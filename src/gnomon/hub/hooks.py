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


def minerva_math(row: Row) -> Row:
    """Minerva's MATH reference answer: the solution's last `\\boxed{}`, normalised (it replaces
    a dataset's own `answer` column, as lm-evaluation-harness's `minerva_math` does)."""
    from gnomon.scoring.math_answers import minerva_gold

    return {**row, "answer": minerva_gold(str(row["solution"]))}


HOOKS: dict[str, RowHook] = {"hellaswag": hellaswag, "minerva_math": minerva_math}
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "hellaswag": ("activity_label", "ctx_a", "ctx_b", "endings", "label"),
    "minerva_math": ("problem", "solution"),
}
