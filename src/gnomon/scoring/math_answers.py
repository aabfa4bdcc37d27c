"""Reading and comparing competition-math answers the way published MATH scorers do.

Reported MATH numbers come from a few scorers whose quirks decide the score, so gnomon keeps
each one's behaviour, written from its description, rather than an approximation:

- Minerva's (Lewkowycz et al. 2022, appendix D, as lm-evaluation-harness's `minerva_math` runs
  it): the text after "Final Answer: The final answer is", normalised (units, `\\text{}`, `$`,
  shorthand `\\frac12`, thousands separators), then equal strings or a zero sympy difference of
  the two LaTeX expressions;
- Hendrycks MATH's string normalisation (`strip_string`, used by lm-eval's `aime` tasks): the
  answer in the last `\\boxed{}`, normalised, compared as strings;
- math-verify on the whole output against the whole worked solution (lm-eval's `math_verify`).
"""

from __future__ import annotations

import contextlib
import re
import threading
from functools import lru_cache
from typing import Any

from gnomon.scoring import deadline

SYMPY_SECONDS = 5.0

# --- \boxed{} ---------------------------------------------------------------------------------


def last_boxed(text: str) -> str | None:
    """The last `\\boxed{...}` (or `\\fbox{...}`) with its braces balanced, or `\\boxed X` up to
    the next `$` when the text uses the brace-less form anywhere; None when there is none."""
    if "\\boxed " in text:
        return "\\boxed " + text.split("\\boxed ")[-1].split("$")[0]
    start = text.rfind("\\boxed")
    if start < 0:
        start = text.rfind("\\fbox")
        if start < 0:
            return None
    depth = 0
    for end in range(start, len(text)):
        char = text[end]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start : end + 1]
    return None


def unbox(boxed: str) -> str:
    """The content of `last_boxed`'s result; ValueError when it is not a `\\boxed` form."""
    if "\\boxed " in boxed:
        if not boxed.startswith("\\boxed "):
            raise ValueError(f"not a \\boxed answer: {boxed[:40]!r}")
        return boxed[len("\\boxed ") :]
    if not (boxed.startswith("\\boxed{") and boxed.endswith("}")):
        raise ValueError(f"not a \\boxed{{}} answer: {boxed[:40]!r}")
    return boxed[len("\\boxed{") : -1]


# --- Minerva ----------------------------------------------------------------------------------

_FINAL = re.compile(r"Final Answer: The final answer is(.*?). I hope it is correct.")
_CLOSING = "I hope it is correct."

# Applied in order; then the unit words and markup below are removed.
_SUBSTITUTIONS = (
    ("an ", ""),
    ("a ", ""),
    (".$", "$"),
    ("\\$", ""),
    ("\\ ", ""),
    (" ", ""),
    ("mbox", "text"),
    (",\\text{and}", ","),
    ("\\text{and}", ","),
    ("\\text{m}", "\\text{}"),
)
_REMOVED = (
    "square",
    "ways",
    "integers",
    "dollars",
    "mph",
    "inches",
    "ft",
    "hours",
    "km",
    "units",
    "\\ldots",
    "sue",
    "points",
    "feet",
    "minutes",
    "digits",
    "cents",
    "degrees",
    "cm",
    "gm",
    "pounds",
    "meters",
    "meals",
    "edges",
    "students",
    "childrentickets",
    "multiples",
    "\\text{s}",
    "\\text{.}",
    "\\text{\ns}",
    "\\text{}^2",
    "\\text{}^3",
    "\\text{\n}",
    "\\text{}",
    "\\mathrm{th}",
    "^\\circ",
    "^{\\circ}",
    "\\;",
    ",\\!",
    "{,}",
    '"',
    "\\dots",
)
_COMMAND_SPLIT = re.compile(r"(\\[a-zA-Z]+)")
_UNWRAP = [
    (re.compile(r"(.*?)(\$)(.*?)(\$)(.*)"), "$\\3$"),
    (re.compile(r"(\\text\{)(.*?)(\})"), "\\2"),
    (re.compile(r"(\\textbf\{)(.*?)(\})"), "\\2"),
    (re.compile(r"(\\overline\{)(.*?)(\})"), "\\2"),
    (re.compile(r"(\\boxed\{)(.*)(\})"), "\\2"),
    (re.compile(r"(frac)([^{])(.)"), "frac{\\2}{\\3}"),
    (re.compile(r"(sqrt)(\[[^\]]*\])(\w)"), "\\1\\2{\\3}"),
    (re.compile(r"(sqrt)(?!\[)([^{])"), "sqrt{\\2}"),
]
_THOUSANDS = re.compile(r"-?\d{1,3}(,\d{3})+")


def minerva_final_answer(output: str) -> str | None:
    """The text after "Final Answer: The final answer is" and before its closing sentence (which
    may be missing at the very end), stripped; None when the output has no such line."""
    found = _FINAL.search(output + _CLOSING)
    return found.group(1).strip() if found else None


def minerva_normalize(answer: str) -> str:
    """Minerva's normalisation of a final answer: the right-hand side of an equation, without
    units, spaces, `$`, `\\text{}` and box markup, with shorthand TeX written out."""
    answer = answer.split("=")[-1]
    words = [w for w in _REMOVED if w.isalpha()]
    for word in words:  # while spaces still delimit words, never inside a command name
        answer = re.sub(rf"(?<!\\)\b{word}\b", "", answer)
    for before, after in _SUBSTITUTIONS:
        answer = answer.replace(before, after)
    for expr in _REMOVED:
        if expr.isalpha():  # glued to other text now: outside LaTeX command names only
            parts = _COMMAND_SPLIT.split(answer)
            parts[::2] = [p.replace(expr, "") for p in parts[::2]]
            answer = "".join(parts)
        else:
            answer = answer.replace(expr, "")
    for pattern, replacement in _UNWRAP:
        answer = pattern.sub(replacement, answer)
    answer = answer.replace("$", "")
    if _THOUSANDS.fullmatch(answer):
        answer = answer.replace(",", "")
    return answer


def minerva_gold(solution: str) -> str:
    """The reference answer of a worked MATH solution: its last `\\boxed{}`, normalised."""
    boxed = last_boxed(solution)
    if boxed is None:
        raise ValueError("the solution has no \\boxed{} answer")
    return minerva_normalize(unbox(boxed))


@lru_cache(maxsize=1)
def _latex_parser() -> Any:
    """sympy's LaTeX parser, imported on first use (slow); it needs antlr4's 4.11 runtime."""
    from sympy.parsing.latex import parse_latex

    return parse_latex


def minerva_equiv(prediction: str, reference: str, seconds: float = SYMPY_SECONDS) -> bool:
    """Minerva's comparison of two normalised answers: equal text, or LaTeX expressions whose
    difference sympy simplifies to zero. Anything sympy cannot parse, subtract or simplify in
    time is unequal, as in the reference implementation."""
    if prediction and prediction == reference:
        return True
    import sympy

    parse = _latex_parser()
    try:
        with deadline.time_limit(seconds, "sympy comparison"):
            return bool(sympy.simplify(parse(prediction) - parse(reference)) == 0)
    except ImportError:
        raise
    except Exception:  # parse errors of every kind, timeouts, sympy's own failures: unequal
        return False


# --- Hendrycks MATH string normalisation ---------------------------------------------------------


def _right_units(text: str) -> str:
    if "\\text{ " not in text:
        return text
    parts = text.split("\\text{ ")
    if len(parts) != 2:
        raise ValueError("several \\text{ } units")
    return parts[0]


def _sqrt_braces(text: str) -> str:
    if "\\sqrt" not in text:
        return text
    head, *rest = text.split("\\sqrt")
    out = head
    for part in rest:
        out += "\\sqrt" + (part if part[0] == "{" else "{" + part[0] + "}" + part[1:])
    return out


def _frac_braces(text: str) -> str:
    head, *rest = text.split("\\frac")
    out = head
    for part in rest:
        out += "\\frac"
        if part[0] == "{":
            out += part
            continue
        if len(part) < 2:
            return text
        a, b, tail = part[0], part[1], part[2:]
        out += "{" + a + "}{" + b + "}" + tail if b != "{" else "{" + a + "}" + b + tail
    return out


def _slash_fraction(text: str) -> str:
    parts = text.split("/")
    if len(parts) != 2:
        return text
    a, b = int(parts[0]), int(parts[1])  # a ValueError here fails the whole comparison
    if text != f"{a}/{b}":
        return text
    return "\\frac{" + str(a) + "}{" + str(b) + "}"


def hendrycks_strip(text: str) -> str:
    """Hendrycks MATH's normalisation of an answer string; raises on the inputs it cannot
    handle (empty `\\sqrt`, several units, a non-integer `a/b`), which `hendrycks_equiv` turns
    into plain string equality."""
    for before, after in (
        ("\n", ""),
        ("\\!", ""),
        ("\\\\", "\\"),
        ("tfrac", "frac"),
        ("dfrac", "frac"),
        ("\\left", ""),
        ("\\right", ""),
        ("^{\\circ}", ""),
        ("^\\circ", ""),
        ("\\$", ""),
    ):
        text = text.replace(before, after)
    text = _right_units(text)
    text = text.replace("\\%", "").replace(" .", " 0.").replace("{.", "{0.")
    if not text:
        return text
    if text[0] == ".":
        text = "0" + text
    sides = text.split("=")
    if len(sides) == 2 and len(sides[0]) <= 2:
        text = sides[1]
    text = _frac_braces(_sqrt_braces(text).replace(" ", ""))
    if text == "0.5":
        text = "\\frac{1}{2}"
    return _slash_fraction(text)


def hendrycks_equiv(prediction: str, reference: str) -> bool:
    """Equal after `hendrycks_strip`; equal as given when either side cannot be normalised."""
    try:
        return hendrycks_strip(prediction) == hendrycks_strip(reference)
    except Exception:  # the normaliser's own failures (IndexError, ValueError) on odd text
        return prediction == reference


def boxed_or_dollars(output: str) -> str:
    """The answer as lm-eval's AIME scorer reads a response: the last `\\boxed{}` content, else
    the text between the first and last `$`, else the whole response."""
    dollars = [i for i, char in enumerate(output) if char == "$"]
    answer = output if len(dollars) <= 1 else output[dollars[0] + 1 : dollars[-1]]
    boxed = last_boxed(output)
    if boxed is not None:
        with contextlib.suppress(ValueError):  # `\\fbox{}`: the `$` reading stands
            answer = unbox(boxed)
    return answer


# --- math-verify, as lm-eval's `math_verify` metric calls it ----------------------------------


def math_verify_whole(output: str, solution: str) -> bool:
    """math-verify with its default reading of both texts (LaTeX, then plain expressions): the
    gold answer found in the worked solution against the answer found in the whole output."""
    from gnomon.scoring.extractors import _math_verify

    mv = _math_verify()
    main = threading.current_thread() is threading.main_thread()
    timeout = 5 if main else None  # math-verify's bound needs SIGALRM: main thread only
    gold = mv.parse(solution, parsing_timeout=timeout)
    target = mv.parse(output, parsing_timeout=timeout)
    return bool(mv.verify(gold=gold, target=target, timeout_seconds=timeout))
