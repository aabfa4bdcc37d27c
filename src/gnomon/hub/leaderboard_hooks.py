"""Row and split hooks of the Open LLM Leaderboard v2 benchmarks (lm-eval's `leaderboard` tasks).

Each does what lm-eval's `process_docs` or `doc_to_*` functions for that task do, where a
template cannot: BBH's per-subtask choice labels and description (data lm-eval keeps in its task
files, shipped in `hub/fewshot/`), MuSR's choices (a Python list written as a string), MATH's
boxed answer, and GPQA's shuffled options.
"""

from __future__ import annotations

import ast
import json
import random
import re
from collections.abc import Callable
from functools import cache
from typing import Any

from gnomon.hub.spec_parts import FEWSHOT_DIR

Row = dict[str, Any]


@cache
def bbh_tasks() -> dict[str, dict[str, Any]]:
    """Per BBH subtask: `description` and `choices` (scripts/hub_fewshot.py)."""
    text = (FEWSHOT_DIR / "leaderboard_bbh_tasks.json").read_text(encoding="utf-8")
    tasks: dict[str, dict[str, Any]] = json.loads(text)
    return tasks


def leaderboard_bbh(row: Row) -> Row:
    task = bbh_tasks().get(str(row["subset"]))
    if task is None:
        raise ValueError(f"subset {row['subset']!r} is not a leaderboard BBH subtask")
    return {**row, "description": task["description"], "choices": list(task["choices"])}


def leaderboard_musr(row: Row) -> Row:
    """MuSR stores its choices as a Python list literal in a string; lm-eval reads it so."""
    try:
        choices = ast.literal_eval(str(row["choices"]))
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        choices = None
    if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
        raise ValueError("`choices` is not a list of strings written as a Python literal")
    return {**row, "choice_list": choices}


INVALID_ANSWER = "[invalidanswer]"


def leaderboard_math(row: Row) -> Row:
    """MATH's reference answer: the content of the solution's last box (the leaderboard's
    helpers find it as Minerva's do; no box, or one that is not `\\boxed`, is invalid)."""
    from gnomon.scoring.math_answers import last_boxed, unbox

    boxed = last_boxed(str(row["solution"]))
    try:
        answer = unbox(boxed) if boxed is not None else INVALID_ANSWER
    except ValueError:
        answer = INVALID_ANSWER
    return {**row, "answer": answer}


def _gpqa_text(text: object) -> str:
    """lm-eval's GPQA clean-up of an option (`gpqa_*` tasks): None is one space."""
    if text is None:
        return " "
    if not isinstance(text, str):
        raise ValueError(f"an option is {type(text).__name__}, not text")
    return text.strip().replace(" [title]", ". ").replace("  ", " ")


def _leaderboard_gpqa_text(text: object) -> str:
    """The leaderboard's variant: bracketed markup is dropped too."""
    if text is None:
        return " "
    if not isinstance(text, str):
        raise ValueError(f"an option is {type(text).__name__}, not text")
    text = re.sub(r"\[.*?\]", "", text.strip().replace(" [title]", ". "))
    return text.replace("  ", " ")


GPQA_SEED = 0  # lm-eval's default `random_seed`: `simple_evaluate` seeds `random` with it


def _gpqa_shuffle(clean: Callable[[object], str]) -> Callable[[], Callable[[Row], Row]]:
    """A split hook: the four options shuffled as lm-eval's `process_docs` does with the
    global `random`, one generator seeded with 0 (lm-eval's default seed) per subset, its rows
    in order; `choice1`..`choice4`, `choices` and `answer`, the gold letter in parentheses."""

    def start() -> Callable[[Row], Row]:
        rng = random.Random(GPQA_SEED)

        def shuffle(row: Row) -> Row:
            correct = clean(row["Correct Answer"])
            options = [clean(row[f"Incorrect Answer {i}"]) for i in (1, 2, 3)] + [correct]
            rng.shuffle(options)
            fields = {f"choice{i + 1}": option for i, option in enumerate(options)}
            gold = f"({'ABCD'[options.index(correct)]})"
            return {**row, **fields, "choices": options, "answer": gold}

        return shuffle

    return start


ROW_HOOKS = {
    "leaderboard_bbh": leaderboard_bbh,
    "leaderboard_musr": leaderboard_musr,
    "leaderboard_math": leaderboard_math,
}
ROW_FIELDS = {
    "leaderboard_bbh": ("subset", "input", "target"),
    "leaderboard_musr": ("narrative", "question", "choices", "answer_choice"),
    "leaderboard_math": ("problem", "solution"),
}
SPLIT_HOOKS = {
    "gpqa": _gpqa_shuffle(_gpqa_text),
    "leaderboard_gpqa": _gpqa_shuffle(_leaderboard_gpqa_text),
}
