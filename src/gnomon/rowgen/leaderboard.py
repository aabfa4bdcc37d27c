"""Made-up rows for the Open LLM Leaderboard v2 benchmarks, in the schemas of the datasets
lm-eval's `leaderboard` tasks read: SaylorTwift/bbh, Idavidrein/gpqa, DigitalLearningGmbH/
MATH-lighteval, TIGER-Lab/MMLU-Pro and TAUR-Lab/MuSR (each one's fields, types and quirks)."""

from __future__ import annotations

import random

from gnomon.hub.leaderboard_hooks import bbh_tasks
from gnomon.rowgen import RowDict, rows
from gnomon.rowgen._text import NAMES, NOUNS, letter, options, question, rng, sentence
from gnomon.rowgen.math import MATH_SUBSETS
from gnomon.tiny import synthetic_rows

# --- BBH (multiple choice), SaylorTwift/bbh: `input`, `target`; one config per subtask -------

BBH_SUBSETS = list(bbh_tasks())


def _bbh_row(r: random.Random, subset: str) -> RowDict:
    choices = bbh_tasks()[subset]["choices"]
    if choices[0].startswith("(A)"):  # lettered options written into the input
        opts = options(r, len(choices))
        lines = "\n".join(f"({letter(i)}) {o}" for i, o in enumerate(opts))
        text = f"{question(r)}\nOptions:\n{lines}"
    else:
        text = f"{sentence(r)} {question(r)}"
    return {"input": text, "target": r.choice(choices)}


@rows("leaderboard_bbh", sizes={"test": 48})
def bbh(split: str, n: int, seed: int) -> list[RowDict]:
    """`n` rows spread over the 24 subtasks (each row tagged with `subset`, as gnomon tags the
    hub's configs), targets drawn among each subtask's own choice labels."""
    r = rng("leaderboard_bbh", split, seed)
    subsets = [BBH_SUBSETS[i % len(BBH_SUBSETS)] for i in range(n)]
    return [{**_bbh_row(r, s), "subset": s} for s in subsets]


# --- GPQA, Idavidrein/gpqa (configs gpqa_diamond, gpqa_extended, gpqa_main; split train) -----

GPQA_SUBSETS = ["gpqa_diamond", "gpqa_extended", "gpqa_main"]
GPQA_DOMAINS = {
    "Physics": "Quantum Mechanics",
    "Chemistry": "Organic Chemistry",
    "Biology": "Genetics",
}


def _gpqa_option(r: random.Random, text: str) -> str:
    """Options as the CSV holds them: stray whitespace, trailing newlines, WikiHow-style
    `[title]` and bracketed notes that lm-eval's clean-up removes."""
    return r.choice([text, text, f" {text}\n", f"{text} [title] {r.choice(NOUNS)}",
                     f"{text} [note]", f"{text}  {r.choice(NOUNS)}"])  # fmt: skip


def _gpqa_row(r: random.Random, subset: str, i: int) -> RowDict:
    domain = r.choice(sorted(GPQA_DOMAINS))
    answers = options(r, 4)
    return {
        "Pre-Revision Question": question(r),
        "Pre-Revision Correct Answer": answers[0],
        "Pre-Revision Incorrect Answer 1": answers[1],
        "Pre-Revision Incorrect Answer 2": answers[2],
        "Pre-Revision Incorrect Answer 3": answers[3],
        "Pre-Revision Explanation": sentence(r),
        "Self-reported question-writing time (minutes)": float(r.randint(10, 90)),
        "Question": f"{sentence(r)} {question(r)}" + r.choice(["", "\n", " "]),
        "Correct Answer": _gpqa_option(r, answers[0]),
        "Incorrect Answer 1": _gpqa_option(r, answers[1]),
        "Incorrect Answer 2": _gpqa_option(r, answers[2]),
        "Incorrect Answer 3": _gpqa_option(r, answers[3]),
        "Explanation": sentence(r),
        "Subdomain": GPQA_DOMAINS[domain],
        "High-level domain": domain,
        "Record ID": f"rec{subset[5:9]}{i:04d}",
        "Writer's Difficulty Estimate": "Hard undergraduate level (could be a question on a hard undergraduate exam for students majoring in the subject)",  # noqa: E501
        "subset": subset,
    }


@rows("leaderboard_gpqa", sizes={"train": 18})
def gpqa(split: str, n: int, seed: int) -> list[RowDict]:
    r = rng("leaderboard_gpqa", split, seed)
    return [_gpqa_row(r, GPQA_SUBSETS[i % 3], i) for i in range(n)]


# --- MATH, DigitalLearningGmbH/MATH-lighteval: problem, level, type, solution -----------------

LEVELS = ["Level 5", "Level 5", "Level 5", "Level 3", "Level 1", "Level ?"]


def _boxed(r: random.Random) -> tuple[str, str]:
    """(the boxed part of a solution, its answer): plain numbers, fractions, nested braces, the
    `\\boxed ` and `\\fbox{}` spellings."""
    a, b = r.randint(2, 40), r.randint(2, 9)
    return r.choice([
        (f"\\boxed{{{a}}}", str(a)),
        (f"\\boxed{{\\frac{{{a}}}{{{b}}}}}", f"\\frac{{{a}}}{{{b}}}"),
        (f"\\boxed{{{a}\\sqrt{{{b}}}}}", f"{a}\\sqrt{{{b}}}"),
        (f"\\boxed{{({a},{b}]}}", f"({a},{b}]"),
        (f"\\boxed {a}", str(a)),
        (f"\\fbox{{{a}}}", str(a)),
    ])  # fmt: skip


def _math_row(r: random.Random, subset: str) -> RowDict:
    x, y = r.randint(2, 30), r.randint(2, 30)
    boxed, _ = _boxed(r)
    problem = r.choice([
        f"What is ${x} + {y}$?",
        f"If $a = {x}$ and $b = {y}$, find $\\frac{{a}}{{b}}$.",
        f"{sentence(r)} How many {r.choice(NOUNS)}s are there in all?",
    ])  # fmt: skip
    solution = f"{sentence(r)} We have $a={x}$, so the answer is ${boxed}$."
    if r.random() < 0.3:
        solution += f" Note that $\\{{{x}\\}}$ is a set."
    return {
        "problem": problem,
        "level": r.choice(LEVELS),
        "type": MATH_SUBSETS[subset],
        "solution": solution,
        "subset": subset,
    }


@rows("leaderboard_math_hard", sizes={"test": 28, "train": 7})
def math_hard(split: str, n: int, seed: int) -> list[RowDict]:
    r = rng("leaderboard_math_hard", split, seed)
    names = list(MATH_SUBSETS)
    return [_math_row(r, names[i % len(names)]) for i in range(n)]


# --- MMLU-Pro, TIGER-Lab/MMLU-Pro: test and validation ---------------------------------------

CATEGORIES = ["math", "law", "biology", "computer science", "other"]


def _mmlu_pro_row(r: random.Random, qid: int, validation: bool) -> RowDict:
    k = r.choice([10, 10, 10, 9, 4, 3])  # most have ten options, some fewer
    opts = options(r, k)
    index = r.randrange(k)
    cot = f"A: Let's think step by step. {sentence(r)} The answer is ({letter(index)})."
    return {
        "question_id": qid,
        "question": f"{question(r)}" + r.choice(["", " ", "\n"]),
        "options": opts,
        "answer": letter(index),
        "answer_index": index,
        "cot_content": cot if validation else "",
        "category": r.choice(CATEGORIES),
        "src": r.choice(["ori_mmlu-high_school_physics", "stemez-Physics", "theoremQA-Math"]),
    }


@rows("leaderboard_mmlu_pro", sizes={"test": 16, "validation": 7})
def mmlu_pro(split: str, n: int, seed: int) -> list[RowDict]:
    r = rng("leaderboard_mmlu_pro", split, seed)
    start = 70 if split == "test" else 0
    return [_mmlu_pro_row(r, start + i, split == "validation") for i in range(n)]


# --- MuSR, TAUR-Lab/MuSR: one split per subtask; `choices` is a Python list literal ------------

MUSR_SUBSETS = {
    "murder_mysteries": (2, "Who is the most likely murderer?"),
    "object_placements": (4, "Which location is the most likely place {name} would look?"),
    "team_allocation": (3, "Given the story, how would you uniquely allocate each person?"),
}


def _musr_row(r: random.Random, subset: str) -> RowDict:
    k, ask = MUSR_SUBSETS[subset]
    if subset == "object_placements":
        k = r.choice([3, 4, 5])
    choices = r.sample(NAMES, k) if subset == "murder_mysteries" else options(r, k)
    if r.random() < 0.4:  # quotes force repr() to switch quote styles, as the real files show
        choices[0] = f"{choices[0]}'s {r.choice(NOUNS)}"
    index = r.randrange(k)
    narrative = "\n\n".join(sentence(r) for _ in range(r.randint(2, 4)))
    return {
        "narrative": narrative,
        "question": ask.format(name=r.choice(NAMES)),
        "choices": repr(choices),
        "answer_index": index,
        "answer_choice": choices[index],
    }


@rows("leaderboard_musr", sizes={s: 6 for s in MUSR_SUBSETS})
def musr(split: str, n: int, seed: int) -> list[RowDict]:
    r = rng("leaderboard_musr", split, seed)
    return [_musr_row(r, split) for _ in range(n)]


# --- the Open LLM Leaderboard v1's settings of the classic benchmarks --------------------------


def _classic(bench: str, variant: str, sizes: dict[str, int]) -> None:
    """`variant` reads `bench`'s dataset: its rows are `bench`'s, with a train split big enough
    for its shots."""

    def make(split: str, n: int, seed: int) -> list[RowDict]:
        return synthetic_rows(bench, split, n, seed)

    rows(variant, sizes=sizes)(make)


_classic("arc_challenge", "arc_challenge_25shot", {"train": 30, "validation": 4, "test": 12})
_classic("hellaswag", "hellaswag_10shot", {"train": 14, "validation": 12})
