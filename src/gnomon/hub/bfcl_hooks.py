"""BFCL's rows and their possible answers, which BFCL keeps in two files matched by id.

A row of `BFCL_v4_<category>.json` holds the question and the function docs; its possible
answers (`ground_truth`) are in `possible_answer/BFCL_v4_<category>.json` of the same package.
The split hook `bfcl_answers` adds them to each row that does not carry them already (rows given
with `--data` may), reading the answers file of the row's own category from the installed
`bfcl_eval` package (found without importing it: `pip install bfcl-eval --no-deps` suffices).
"""

from __future__ import annotations

import json
import re
from typing import Any

from gnomon.errors import UserError

Row = dict[str, Any]

PACKAGE = "bfcl_eval"
_CATEGORY = re.compile(r"^(?P<category>[a-z_]+?)_\d+(?:-\d+)*$")


def category_of(row_id: str) -> str:
    """BFCL's test category from a row id: `simple_python_3`, `live_multiple_12-4-0`."""
    found = _CATEGORY.match(row_id)
    if found is None:
        raise ValueError(f"{row_id!r} is not a BFCL row id (<category>_<n>)")
    return found.group("category")


def _answers_file(category: str) -> dict[str, Any]:
    from gnomon.data import package_file

    reference = f"{PACKAGE}:data/possible_answer/BFCL_v4_{category}.json"
    try:
        path = package_file(reference)
    except UserError as exc:
        raise UserError(
            f"{exc} - BFCL rows without `ground_truth` take it from the bfcl-eval package "
            "(pip install bfcl-eval --no-deps), or give rows that carry it"
        ) from None
    answers: dict[str, Any] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            answers[item["id"]] = item["ground_truth"]
    return answers


def bfcl_answers() -> Any:
    """A row function that adds each row's possible answers (`ground_truth`)."""
    files: dict[str, dict[str, Any]] = {}

    def step(row: Row) -> Row:
        if "ground_truth" in row:
            return row
        row_id = str(row["id"])
        category = category_of(row_id)
        if category not in files:
            files[category] = _answers_file(category)
        if row_id not in files[category]:
            raise ValueError(f"no possible answer for {row_id} in BFCL's {category} answers")
        return {**row, "ground_truth": files[category][row_id]}

    return step


SPLIT_HOOKS = {"bfcl_answers": bfcl_answers}
