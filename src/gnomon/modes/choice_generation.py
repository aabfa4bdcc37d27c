"""Multiple choice on an endpoint that cannot score text (a chat-only API): the options are
lettered in the prompt, the model writes an answer, and the letter is read from it.

This is a different measurement from loglikelihood scoring, so it has its own prompt variant
(part of the prompt hash and the store key) and every result says `scored_by: generation`.
"""

from __future__ import annotations

import re
import string
from typing import Any

from gnomon.engines.base import GenerateRequest, GenerateResult
from gnomon.modes.base import Answer, Mode, output_answer
from gnomon.prompts import Sample

VARIANT = "choice-as-generation-v1"
_INSTRUCTION = "Answer with the letter of the correct option."


def lettered_prompt(sample: Sample) -> str:
    """The prompt as written when the choices are already letters (MMLU); otherwise the options
    are listed with letters after the question."""
    letters = string.ascii_uppercase[: len(sample.choices)]
    if list(sample.choices) == list(letters):
        return sample.context
    choices = sample.choices
    if sample.continuation is not None:  # choices that are contexts: each option is whole
        choices = tuple(f"{choice} {sample.continuation}" for choice in choices)
    options = "\n".join(
        f"{letter}. {choice}" for letter, choice in zip(letters, choices, strict=True)
    )
    head = sample.context.rstrip()
    return f"{head + chr(10) if head else ''}{options}\n{_INSTRUCTION}\nAnswer:"


def read_letter(text: str, n_choices: int) -> int | None:
    """The first option letter standing alone in the answer ("B", "(B)", "B.", "Answer: B")."""
    letters = string.ascii_uppercase[:n_choices]
    match = re.search(rf"(?<![A-Za-z])([{letters}])(?![A-Za-z])", text)
    return letters.index(match.group(1)) if match else None


class ChoiceAsGenerationMode(Mode):
    verb = "generate"

    def requests(self, sample: Sample) -> list[GenerateRequest]:
        return [GenerateRequest(lettered_prompt(sample), ("\n\n",), 16)]

    def settings(self) -> dict[str, Any]:
        return {"variant": VARIANT, "max_tokens": 16}

    def metric_names(self) -> list[str]:
        return ["acc"]

    def legacy_answers(self, sample: Sample, payload: dict[str, Any]) -> list[Answer] | None:
        return output_answer(payload)

    def result(self, sample: Sample, answers: list[GenerateResult]) -> dict[str, Any]:
        output = answers[0].text
        pred = read_letter(output, len(sample.choices))
        correct = pred in sample.golds
        return {
            "prediction": pred,
            "prediction_text": sample.choices[pred] if pred is not None else None,
            "target": sample.target,
            "target_text": " | ".join(sample.choices[i] for i in sample.golds),
            "correct": correct,
            "metrics": {"acc": float(correct)},
            "output": output,
            "scored_by": "generation",
            "extractor": "letter" if pred is not None else "none",
            "truncated": answers[0].truncated,
        }
