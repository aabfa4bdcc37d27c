"""Registered scorers: code that turns one output into metrics, for benchmarks whose reference
scores with a function (lm-eval's `process_results`) rather than filters and a metric.

A spec names one with `scorer:`. A scorer reads the output, the sample's target and, where it
needs one, its worked solution (`prompt.solution`); it says which metrics it computes, and the
spec's `metrics` pick among them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from gnomon.hub.leaderboard_hooks import INVALID_ANSWER
from gnomon.scoring.extractors import _math_timeout, _math_verify
from gnomon.scoring.math_answers import _REMOVED, _SUBSTITUTIONS, minerva_equiv
from gnomon.scoring.math_answers import _UNWRAP as _MINERVA_UNWRAP

# (output, target, solution) -> metric values; a list is a corpus item (one value per unit
# within the sample, e.g. IFEval's instructions), aggregated by the metric's aggregation
ScoreFn = Callable[[str, str, str | None], Mapping[str, float | list[float]]]


@dataclass(frozen=True)
class Scorer:
    metrics: tuple[str, ...]
    fn: ScoreFn
    needs_solution: bool = False  # the spec must give `prompt.solution`
    version: int = 1  # bump when what it computes changes: stored answers are re-scored
    # whether an output holds an answer the scorer can read at all: one that does not is
    # scored wrong and counted as "no answer" (None: every output holds one)
    answered: Callable[[str], bool] | None = None


# --- the Open LLM Leaderboard's MATH-hard (lm-eval `leaderboard_math_*_hard`) ---------------


def _math_verify_match(output: str, solution: str) -> bool:
    """math-verify, as the leaderboard calls it: the gold read from the whole solution with
    LaTeX extraction only, the output with math-verify's default extraction (LaTeX, then
    plain expressions)."""
    mv = _math_verify()
    timeout = _math_timeout()
    gold = mv.parse(solution, [mv.LatexExtractionConfig()], parsing_timeout=timeout)
    found = mv.parse(output, parsing_timeout=timeout)
    return bool(mv.verify(gold, found, timeout_seconds=timeout))


_FINAL_ANSWER = re.compile(r"Final Answer: The final answer is(.*?). I hope it is correct.")

# Minerva's tables (words and units dropped, substitutions, wrappers): the leaderboard's frozen
# copy of lm-eval's helpers keeps an older `sqrt` rule and plain replacement of words
_REPLACE = _SUBSTITUTIONS
_DROP = _REMOVED
_UNWRAP = (*_MINERVA_UNWRAP[:-2], (re.compile(r"(sqrt)([^{])"), "sqrt{\\2}"))


def minerva_normalize(answer: str) -> str:
    """A final answer reduced to a canonical string: the right-hand side of the last `=`,
    units and words dropped, math delimiters and `\\text{}`-like wrappers unwrapped, TeX
    shorthand (`\\frac12`) braced, thousands separators of plain integers removed."""
    answer = answer.split("=")[-1]
    for old, new in _REPLACE:
        answer = answer.replace(old, new)
    for word in _DROP:
        answer = answer.replace(word, "")
    for pattern, repl in _UNWRAP:
        answer = pattern.sub(repl, answer)
    answer = answer.replace("$", "")
    if answer.replace(",", "").isdigit():
        answer = answer.replace(",", "")
    return answer


def _original_match(output: str, answer: str) -> bool:
    """The leaderboard's `exact_match_original`: the answer after "Final Answer: The final
    answer is", Minerva-normalised, equal to the normalised reference as text or by sympy."""
    found = _FINAL_ANSWER.search(output + "I hope it is correct.")
    if found is None:
        return False
    predicted = minerva_normalize(found.group(1).strip())
    gold = minerva_normalize(answer)
    if predicted == INVALID_ANSWER:
        return False
    # the leaderboard gives sympy 1 s, lm-eval's minerva_math 5 s
    return predicted.strip() == gold.strip() or minerva_equiv(predicted, gold, seconds=1.0)


def leaderboard_math(output: str, answer: str, solution: str | None) -> dict[str, float]:
    """`answer`: the solution's boxed answer (the target); `solution`: the whole solution."""
    try:
        original = _original_match(output, answer)
    except Exception:  # the reference scores any failure of this path (antlr4 absent) as 0
        original = False
    return {
        "exact_match": float(_math_verify_match(output, solution or "")),
        "exact_match_original": float(original),
    }


def _math_answered(output: str) -> bool:
    """A "Final Answer:" line, or anything math-verify reads as an answer."""
    if _FINAL_ANSWER.search(output + "I hope it is correct.") is not None:
        return True
    return bool(_math_verify().parse(output, parsing_timeout=_math_timeout()))


# --- IFEval (lm-eval `ifeval`) -----------------------------------------------------------


def ifeval(output: str, target: str, solution: str | None) -> dict[str, float | list[float]]:
    """`solution`: the row's instructions as JSON, `{"instruction_id_list": [...], "kwargs":
    [...]}` (the spec's `prompt.solution` writes it)."""
    from gnomon.scoring.ifeval import judge

    row = json.loads(solution or "{}")
    verdicts = judge(output, row["instruction_id_list"], row["kwargs"])
    return {
        "prompt_level_strict_acc": float(all(verdicts.strict)),
        "inst_level_strict_acc": [float(v) for v in verdicts.strict],
        "prompt_level_loose_acc": float(all(verdicts.loose)),
        "inst_level_loose_acc": [float(v) for v in verdicts.loose],
    }


SCORERS: dict[str, Scorer] = {
    "ifeval": Scorer(
        (
            "prompt_level_strict_acc",
            "inst_level_strict_acc",
            "prompt_level_loose_acc",
            "inst_level_loose_acc",
        ),
        ifeval,
        needs_solution=True,
    ),
    "leaderboard_math": Scorer(
        ("exact_match", "exact_match_original"),
        leaderboard_math,
        needs_solution=True,
        version=2,  # 2: outputs without an answer are counted as "no answer"
        answered=_math_answered,
    ),
}
