"""Arena-Hard v2.0's rows: each question with the baseline answer its category is judged against.

Arena-Hard-Auto keeps questions (`question.jsonl`) and each model's answers
(`model_answer/<model>.jsonl`) in separate files of its hub repository, and picks the baseline
by category (its `JUDGE_SETTINGS`): o3-mini-2025-01-31 for hard prompts (and their coding and
math subsets), gemini-2.0-flash-001 for creative writing. The split hook here adds the
baseline's name and answer to each question row (`baseline_model`, `baseline_answer`), so the
judge prompt reads them as row fields; rows that already carry `baseline_answer` (a `--data`
file prepared offline) are left as they are, and nothing is downloaded for them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any

from gnomon.errors import UserError

REPO = "lmarena-ai/arena-hard-auto"
ANSWERS = "data/arena-hard-v2.0/model_answer/{model}.jsonl"
BASELINES = {
    "hard_prompt": "o3-mini-2025-01-31",
    "coding": "o3-mini-2025-01-31",
    "math": "o3-mini-2025-01-31",
    "creative_writing": "gemini-2.0-flash-001",
}


def read_answers(lines: Iterable[str]) -> dict[str, str]:
    """uid -> the answer's text, from a model_answer file (the last message's `answer`)."""
    answers = {}
    for line in lines:
        if line.strip():
            record = json.loads(line)
            answers[record["uid"]] = record["messages"][-1]["content"]["answer"]
    return answers


@cache
def _hub_answers(model: str) -> dict[str, str]:
    """A baseline's answers from Arena-Hard-Auto's hub repository (downloaded once)."""
    from huggingface_hub import hf_hub_download

    name = ANSWERS.format(model=model)
    try:
        path = hf_hub_download(REPO, name, repo_type="dataset")
        return read_answers(Path(path).read_text(encoding="utf-8").split("\n"))
    except Exception as exc:  # the hub client raises many types; all mean "could not load"
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise UserError(
            f"cannot load {model}'s answers ({REPO}, {name}): {reason}. Offline? Pass --data "
            "DIR with rows that carry `baseline_answer`"
        ) from None


def with_baseline(
    fields: dict[str, Any], answers: Callable[[str], dict[str, str]] = _hub_answers
) -> dict[str, Any]:
    """The question row with its category's baseline answer added (unless it has one)."""
    if "baseline_answer" in fields:
        return fields
    category = fields["category"]
    if category not in BASELINES:
        raise ValueError(f"category {category!r} has no Arena-Hard v2.0 baseline")
    model = BASELINES[category]
    found = answers(model).get(fields["uid"])
    if found is None:
        raise ValueError(f"{model} has no answer to question {fields['uid']}")
    return {**fields, "baseline_model": model, "baseline_answer": found}


def baseline_hook() -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The split hook (`source.process_split: arena_hard_v2`)."""
    return with_baseline
