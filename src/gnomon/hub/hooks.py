"""Row hooks: the few benchmarks whose rows need code, not a template, to become prompt fields.

A spec names a hook by its registered name (never an import path or code string), so a spec file
stays data and cannot run arbitrary code.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable
from functools import cache
from typing import Any

from gnomon.hub.spec_parts import FEWSHOT_DIR

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


_LETTERS = {"A": 0, "B": 1, "C": 2, "D": 3}


def race(row: Row) -> Row:
    """lm-evaluation-harness's RACE: the article, its earlier questions answered (a question
    ending in a blank `  _  .` is completed in place), then the last question, whose four options
    are the choices. `problems` is a Python literal (a string), read without running code."""
    try:
        problems = ast.literal_eval(str(row["problems"]))
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        raise ValueError("`problems` is not a Python literal list of questions") from None
    if not isinstance(problems, list) or not problems:
        raise ValueError("`problems` holds no questions")
    try:
        text = "Article: " + str(row["article"]) + "\n\n"
        for problem in problems[:-1]:
            answer = problem["options"][_LETTERS[problem["answer"]]]
            if problem["question"][-6:] == "  _  .":
                text += problem["question"][:-5] + answer + "\n"
            else:
                text += "Question: " + problem["question"] + "\n" + "Answer: " + answer + "\n"
        last = problems[-1]
        return {
            **row,
            "query": text + last["question"],
            "choices": [last["options"][i] for i in range(4)],
            "gold": _LETTERS[last["answer"]],
        }
    except IndexError:
        raise ValueError("a question in `problems` has fewer than four options") from None


def minerva_math(row: Row) -> Row:
    """Minerva's MATH reference answer: the solution's last `\\boxed{}`, normalised (it replaces
    a dataset's own `answer` column, as lm-evaluation-harness's `minerva_math` does)."""
    from gnomon.scoring.math_answers import minerva_gold

    return {**row, "answer": minerva_gold(str(row["solution"]))}


# WikiText's tokenised text back to ordinary prose, step by step as lm-evaluation-harness's
# `wikitext_detokenizer` does it (the order matters: quotes after the brackets, and so on)
_WIKITEXT_STEPS: tuple[tuple[str, str, bool], ...] = (  # (pattern, replacement, is a regex)
    ("s '", "s'", False),
    (r"/' [0-9]/", r"/'[0-9]/", True),
    (" @-@ ", "-", False),
    (" @,@ ", ",", False),
    (" @.@ ", ".", False),
    (" : ", ": ", False),
    (" ; ", "; ", False),
    (" . ", ". ", False),
    (" ! ", "! ", False),
    (" ? ", "? ", False),
    (" , ", ", ", False),
    (r"\(\s*([^\)]*?)\s*\)", r"(\1)", True),
    (r"\[\s*([^\]]*?)\s*\]", r"[\1]", True),
    (r"{\s*([^}]*?)\s*}", r"{\1}", True),
    (r"\"\s*([^\"]*?)\s*\"", r'"\1"', True),
    (r"'\s*([^']*?)\s*'", r"'\1'", True),
    ("= = = =", "====", False),
    ("= = =", "===", False),
    ("= =", "==", False),
    (" \u00b0 ", "\u00b0", False),
    (" \n", "\n", False),
    ("\n ", "\n", False),
    (" N ", " 1 ", False),
    (" 's", "'s", False),
)


def wikitext_detokenize(page: str) -> str:
    for pattern, replacement, is_regex in _WIKITEXT_STEPS:
        if is_regex:
            page = re.sub(pattern, replacement, page)
        else:
            page = page.replace(pattern, replacement)
    return page


def wikitext(row: Row) -> Row:
    page = row["page"]
    if not isinstance(page, str):
        raise TypeError(f"`page` must be text, got {type(page).__name__}")
    return {**row, "detokenized": wikitext_detokenize(page)}


BBH_FEWSHOT = FEWSHOT_DIR / "bbh_cot_fewshot.jsonl"


@cache
def _bbh_descriptions() -> dict[str, str]:
    text = BBH_FEWSHOT.read_text("utf-8")
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return {r["subset"]: r["description"] for r in rows}


def bbh_cot(row: Row) -> Row:
    """Each BBH task's own description, as lm-evaluation-harness's task files write it."""
    subset = str(row["subset"])
    descriptions = _bbh_descriptions()
    if subset not in descriptions:
        raise ValueError(f"`subset` {subset!r} is not one of the 27 BBH tasks")
    return {**row, "description": descriptions[subset]}


def _drop_parse(answer: dict[str, Any]) -> list[str]:
    if answer["number"] != "":
        return [str(answer["number"])]
    if answer["spans"] != []:
        return list(answer["spans"])
    date = answer["date"]
    return [" ".join([date["day"], date["month"], date["year"]]).strip()]


def drop(row: Row) -> Row:
    """DROP's gold answers (`answers`): the answer and each validated answer, each a list of
    spans, duplicates dropped in order, as lm-evaluation-harness's `drop` reads them."""
    validated = row["validated_answers"]
    candidates = [row["answer"]] + [
        {"number": n, "date": d, "spans": s}
        for n, d, s in zip(validated["number"], validated["date"], validated["spans"], strict=True)
    ]
    answers: list[list[str]] = []
    for candidate in candidates:
        parsed = _drop_parse(candidate)
        if parsed not in answers:
            answers.append(parsed)
    return {**row, "answers": answers}


def _truthfulqa_answers(answers: list[Any]) -> list[str]:
    out = []
    for answer in answers:
        text = str(answer).strip()
        if text:
            out.append(text if text.endswith(".") else text + ".")
    return out


def truthfulqa_gen(row: Row) -> Row:
    """TruthfulQA's reference answers as lm-evaluation-harness's `truthfulqa_gen` compares
    with them: stripped, each ending in a full stop, and "I have no comment." among the correct."""
    correct = _truthfulqa_answers(row["correct_answers"])
    if "I have no comment." not in correct:
        correct.append("I have no comment.")
    return {
        **row,
        "question": str(row["question"]).strip(),
        "correct_answers": correct,
        "incorrect_answers": _truthfulqa_answers(row["incorrect_answers"]),
    }


MT_BENCH_REFERENCE = FEWSHOT_DIR / "mt_bench_gpt4_reference.jsonl"
MT_BENCH_REFERENCE_CATEGORIES = ("math", "reasoning", "coding")  # FastChat's NEED_REF_CATS


@cache
def _mt_bench_references() -> dict[int, list[str]]:
    text = MT_BENCH_REFERENCE.read_text("utf-8")
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return {int(r["prompt_id"]): r["ref_answers"] for r in rows}


def mt_bench(row: Row) -> Row:
    """`ref_answers`: GPT-4's answers to both turns, which FastChat's judge is shown for math,
    reasoning and coding questions (scripts/hub_mt_bench.py ships them, by `prompt_id`); []
    for the other categories."""
    if row["category"] not in MT_BENCH_REFERENCE_CATEGORIES:
        return {**row, "ref_answers": []}
    found = _mt_bench_references().get(int(row["prompt_id"]))
    if found is None:
        raise ValueError(
            f"no reference answer for {row['category']} question {row['prompt_id']} (MT-Bench "
            "judges math, reasoning and coding against GPT-4's answers, shipped for its 30)"
        )
    return {**row, "ref_answers": found}


HOOKS: dict[str, RowHook] = {
    "hellaswag": hellaswag,
    "race": race,
    "minerva_math": minerva_math,
    "wikitext": wikitext,
    "bbh_cot": bbh_cot,
    "drop": drop,
    "truthfulqa_gen": truthfulqa_gen,
    "mt_bench": mt_bench,
}
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "hellaswag": ("activity_label", "ctx_a", "ctx_b", "endings", "label"),
    "race": ("article", "problems"),
    "minerva_math": ("problem", "solution"),
    "wikitext": ("page",),
    "bbh_cot": ("subset",),
    "drop": ("answer", "validated_answers"),
    "truthfulqa_gen": ("question", "correct_answers", "incorrect_answers"),
    "mt_bench": ("category", "prompt_id"),
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


def _register_bfcl() -> None:
    from gnomon.hub import bfcl_hooks

    SPLIT_HOOKS.update(bfcl_hooks.SPLIT_HOOKS)


_register_leaderboard()
_register_bfcl()


def _register_arena_hard() -> None:
    from gnomon.hub import arena_hard

    SPLIT_HOOKS["arena_hard_v2"] = arena_hard.baseline_hook


_register_arena_hard()


def _register_livecodebench() -> None:
    from gnomon.hub import livecodebench

    HOOKS["livecodebench"] = livecodebench.livecodebench
    REQUIRED_FIELDS["livecodebench"] = livecodebench.ROW_FIELDS


_register_livecodebench()
