"""Math benchmarks' rows: Hendrycks MATH (as `EleutherAI/hendrycks_math`), MATH-500, AIME 2024
and 2025, GSM8K (for the CoT variant).

Answers take the forms that make scorers disagree: fractions written `\\frac{3}{4}`, `\\dfrac34`
or `3/4`, intervals, square roots, thousands separators, units in `\\text{}`, tuples, `x = 5`,
degrees and the brace-less `\\boxed 5`; a few solutions box an intermediate value before the
final one, so that only the last `\\boxed{}` counts.
"""

from __future__ import annotations

import random

from gnomon.rowgen import RowDict, rows
from gnomon.rowgen._text import NAMES, NOUNS, rng, sentence
from gnomon.tiny import _gsm8k

MATH_SUBSETS = {  # hub config -> the `type` column's value
    "algebra": "Algebra",
    "counting_and_probability": "Counting & Probability",
    "geometry": "Geometry",
    "intermediate_algebra": "Intermediate Algebra",
    "number_theory": "Number Theory",
    "prealgebra": "Prealgebra",
    "precalculus": "Precalculus",
}

# (boxed answer as a solution writes it, the problem's question)
_ANSWERS: list[tuple[str, str]] = [
    ("\\frac{3}{4}", "What fraction of the {n} is left?"),
    ("\\dfrac{5}{2}", "Find $x$ if $2x - 5 = 0$."),
    ("[2,5)", "Find the domain of the expression $\\frac{{\\sqrt{{x-2}}}}{{\\sqrt{{5-x}}}}$."),
    ("2\\sqrt{3}", "Find the length of the {n} in simplest radical form."),
    ("10,\\!080", "How many ways can the {n} be arranged?"),
    ("18\\text{ cm}", "How long is the {n}, in centimeters?"),
    ("(1,-2)", "Find the point where the two {n}s meet, as an ordered pair."),
    ("x=5", "Solve for $x$: $3x + 1 = 16$."),
    ("30^\\circ", "Find the angle, in degrees, between the {n}s."),
    ("-\\frac{2}{3}", "Find $\\frac{{a}}{{b}}$, assuming $b$ is nonzero."),
    ("\\$1.25", "How much does one {n} cost, in dollars?"),
    ("\\text{(C)}", "Which of the {n}s is largest? Enter the letter."),
    ("0.5", "What is the probability that the {n} is red?"),
    ("1,2", "Enter all the solutions, separated by commas."),
    ("\\pi", "Find the area of the {n}, in terms of $\\pi$."),
    ("12", "How many {n}s are there?"),
]


def _solution(r: random.Random, answer: str) -> str:
    steps = [sentence(r), f"We have ${r.randint(2, 9)} + {r.randint(2, 9)} = {r.randint(4, 18)}$."]
    style = r.random()
    if style < 0.15:  # an intermediate value boxed first: the last box is the answer
        steps.append(f"First, $y = \\boxed{{{r.randint(2, 9)}}}$ is not the answer.")
    if style > 0.9 and answer.isdigit():  # the brace-less form
        steps.append(f"So the answer is $\\boxed {answer}$.")
    elif style > 0.8:
        steps.append(f"Therefore\n\\[\n\\boxed{{{answer}}}\n\\]")
    else:
        steps.append(f"Therefore, the answer is $\\boxed{{{answer}}}$.")
    return "  ".join(steps)


def _problem(r: random.Random, template: str) -> str:
    return f"{sentence(r)} {template.format(n=r.choice(NOUNS))}"


@rows("minerva_math", sizes={"test": 14, "train": 4})
def hendrycks_math(split: str, n: int, seed: int) -> list[RowDict]:
    """`EleutherAI/hendrycks_math` rows (problem, level, type, solution), each tagged with its
    config in `subset` as gnomon tags hub rows; the subsets come in turn, as loaded."""
    r = rng("minerva_math", split, seed)
    configs = list(MATH_SUBSETS)
    out = []
    for i in range(n):
        config = configs[i * len(configs) // max(n, 1)]
        answer, template = _ANSWERS[(i + seed) % len(_ANSWERS)]
        out.append(
            {
                "problem": _problem(r, template),
                "level": f"Level {r.randint(1, 5)}",
                "type": MATH_SUBSETS[config],
                "solution": _solution(r, answer),
                "subset": config,
            }
        )
    return out


@rows("math_500", sizes={"test": 12})
def math_500(split: str, n: int, seed: int) -> list[RowDict]:
    """`HuggingFaceH4/MATH-500` rows: its `answer` column is the boxed answer as written (the
    Minerva scorer recomputes it from the solution); `level` is an integer there."""
    r = rng("math_500", split, seed)
    out = []
    for i in range(n):
        answer, template = _ANSWERS[(i * 3 + seed) % len(_ANSWERS)]
        config = r.choice(list(MATH_SUBSETS))
        out.append(
            {
                "problem": _problem(r, template),
                "solution": _solution(r, answer),
                "answer": answer,
                "subject": MATH_SUBSETS[config],
                "level": r.randint(1, 5),
                "unique_id": f"test/{config}/{r.randint(1, 1500)}.json",
            }
        )
    return out


def _aime_problem(r: random.Random) -> str:
    name = r.choice(NAMES)
    return (
        f"{name} has ${r.randint(2, 40)}$ {r.choice(NOUNS)}s. {sentence(r)} Find the remainder "
        f"when $\\frac{{m}}{{n}}$ is divided by $1000$, where $m$ and $n$ are relatively prime."
    )


@rows("aime24", sizes={"train": 8})
def aime24(split: str, n: int, seed: int) -> list[RowDict]:
    """`Maxwell-Jia/AIME_2024` rows: ID, Problem, Solution, and Answer as an integer."""
    r = rng("aime24", split, seed)
    out = []
    for i in range(n):
        answer = r.choice([0, 7, 33, 204, 540, 999, r.randint(1, 999)])
        out.append(
            {
                "ID": f"2024-{'I' * (1 + i // 15)}-{i % 15 + 1}",
                "Problem": _aime_problem(r),
                "Solution": f"{sentence(r)} So the answer is $\\boxed{{{answer:03d}}}$.",
                "Answer": answer,
            }
        )
    return out


@rows("aime25", sizes={"test": 8})
def aime25(split: str, n: int, seed: int) -> list[RowDict]:
    """`math-ai/aime25` rows: problem, answer (a string) and id (a string)."""
    r = rng("aime25", split, seed)
    return [
        {
            "problem": _aime_problem(r),
            "answer": str(r.choice([0, 70, 588, 16, 117, 999, r.randint(1, 999)])),
            "id": str(i),
        }
        for i in range(n)
    ]


@rows("gsm8k_cot", sizes={"test": 12})
def gsm8k_cot(split: str, n: int, seed: int) -> list[RowDict]:
    """`openai/gsm8k` rows (question, answer ending "#### N"), as for `gsm8k`."""
    return _gsm8k(split, n, seed)


MGSM_LANGUAGES = {  # config -> (the train questions' "Question:", "Step-by-Step Answer:", a cue)
    "bn": ("প্রশ্ন:", "ধাপে ধাপে উত্তর:", "কতগুলি?"),
    "de": ("Frage:", "Schritt-für-Schritt-Antwort:", "Wie viele?"),
    "en": ("Question:", "Step-by-Step Answer:", "How many?"),
    "es": ("Pregunta:", "Respuesta paso a paso:", "¿Cuántos?"),
    "fr": ("Question :", "Réponse étape par étape :", "Combien ?"),
    "ja": ("問題：", "ステップごとの答え：", "いくつですか？"),
    "ru": ("Задача:", "Пошаговоерешение:", "Сколько?"),
    "sw": ("Swali:", "Jibu la Hatua kwa Hatua:", "Ngapi?"),
    "te": ("ప్రశ్న:", "దశలవారీగా సమాధానం:", "ఎన్ని?"),
    "th": ("โจทย์:", "คำตอบทีละขั้นตอน:", "กี่อัน?"),
    "zh": ("问题：", "逐步解答:", "有多少个？"),
}


@rows("mgsm", sizes={"test": 22, "train": 22})
def mgsm(split: str, n: int, seed: int) -> list[RowDict]:
    """`juletxara/mgsm` rows, tagged with their language config in `subset`: test rows have
    `answer` and `equation_solution` null and an integer `answer_number`; train rows (the
    exemplars) carry the language's "Question:" in `question` and a worked `answer`."""
    r = rng("mgsm", split, seed)
    langs = list(MGSM_LANGUAGES)
    out = []
    for i in range(n):
        lang = langs[i * len(langs) // max(n, 1)]
        ask, worked, cue = MGSM_LANGUAGES[lang]
        a, b = r.randint(2, 60), r.randint(2, 40)
        result = a + b if r.random() < 0.7 else a * b
        op = "+" if result == a + b else "*"
        body = f"{r.choice(NAMES)} has {a} {r.choice(NOUNS)}s and gets {b}. {cue}"
        row: RowDict = {"question": body, "answer": None, "answer_number": result}
        row["equation_solution"] = None
        if split == "train":
            row["question"] = f"{ask} {body}"
            row["answer"] = f"{worked} {a} {op} {b} = {result}. The answer is {result}."
            row["equation_solution"] = f"{a} {op} {b} = {result}."
        row["subset"] = lang
        out.append(row)
    return out


@rows("asdiv", sizes={"validation": 12})
def asdiv(split: str, n: int, seed: int) -> list[RowDict]:
    """`EleutherAI/asdiv` rows: body, question, solution_type, answer with its unit in
    parentheses ("9 (apples)"; a ratio or a decimal has none of its own) and formula."""
    r = rng("asdiv", split, seed)
    out = []
    for _ in range(n):
        noun = r.choice(NOUNS)
        a, b = r.randint(2, 40), r.randint(2, 40)
        kind = r.choice(["Addition", "Subtraction", "Multiplication", "Ratio", "Decimal"])
        if kind == "Addition":
            value, formula = str(a + b), f"{a}+{b}={a + b}"
        elif kind == "Subtraction":
            a, b = max(a, b), min(a, b)
            value, formula = str(a - b), f"{a}-{b}={a - b}"
        elif kind == "Multiplication":
            value, formula = str(a * b), f"{a}*{b}={a * b}"
        elif kind == "Ratio":
            value, formula = f"{a}:{b}", f"{a}:{b}={a}:{b}"
        else:
            value, formula = f"{a / 4:g}", f"{a}/4={a / 4:g}"
        unit = f" ({noun}s)" if kind not in ("Ratio", "Decimal") else ""
        out.append(
            {
                "body": f"{r.choice(NAMES)} has {a} {noun}s. {sentence(r)}",
                "question": f"How many {noun}s does the {r.choice(NOUNS)} hold?",
                "solution_type": kind,
                "answer": value + unit,
                "formula": formula,
            }
        )
    return out
