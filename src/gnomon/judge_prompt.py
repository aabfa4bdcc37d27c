"""A judge's prompt: the spec's Jinja2 templates over a row, the question and the answers.

Templates are checked against every row when the benchmark is planned (with placeholder
answers), so an unknown field stops the run before any model loads, naming the row and field;
the real prompt is rendered when the model's answer is known.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jinja2 import TemplateError

from gnomon.data import Row
from gnomon.engines.base import GenerateRequest, Message
from gnomon.errors import UserError
from gnomon.hub.spec import JudgeSpec
from gnomon.templating import ENV, evaluate

# What a template sees besides the row's fields (which these names shadow; `row.NAME` reaches
# a shadowed field). `answers` and `questions` are lists, one item per turn of a conversation
# (`prompt.turns`; one item without), so a template can show the whole exchange.
ANSWER_NAMES = ("answer", "answer_a", "answer_b")


class JudgePrompt:
    def __init__(self, spec: JudgeSpec, bench: str) -> None:
        self.spec = spec
        try:
            self._template = ENV.from_string(spec.template)
            self._system = ENV.from_string(spec.system) if spec.system else None
            self._baseline = (
                ENV.compile_expression(spec.baseline, undefined_to_none=False)
                if spec.baseline
                else None
            )
        except TemplateError as exc:
            raise UserError(f"benchmark {bench}: bad judge template: {exc.message}") from None

    def row_vars(
        self,
        fields: dict[str, Any],
        row: Row,
        question: str,
        reference: Any,
        turns: Sequence[str] = (),
    ) -> dict:
        """What the judge's prompt for this row needs besides the answers; checks that the
        templates render for it (with as many placeholder answers as the row has turns)."""
        out: dict[str, Any] = {"row": dict(fields), "question": question, "reference": reference}
        if self._baseline is not None:
            baseline = evaluate(row.origin, "judge.baseline", self._baseline, {**fields, **out})
            if not isinstance(baseline, str):
                raise UserError(
                    f"{row.origin}: judge.baseline must give text, got {baseline!r:.80}"
                )
            out["baseline"] = baseline
        placeholder = {
            **dict.fromkeys(ANSWER_NAMES, ""),
            "answers": [""] * (1 + len(turns)),
            "questions": [question, *turns],
        }
        for what, template in (("judge.template", self._template), ("judge.system", self._system)):
            if template is not None:
                evaluate(row.origin, what, template.render, self._context(out, placeholder))
        return out

    def _context(self, row_vars: dict[str, Any], answers: dict[str, Any]) -> dict[str, Any]:
        return {**row_vars["row"], **row_vars, **answers}

    def request(
        self,
        row_vars: dict[str, Any],
        *,
        answers: Sequence[str] = (),
        questions: Sequence[str] = (),
        **named: str,
    ) -> GenerateRequest:
        """The judge's request: a conversation (system, then the rendered template) at
        temperature 0. `context` holds the same text flat, for engines that take plain text.
        `answers` and `questions` are the conversation's turns (default: the one answer, the
        one question)."""
        named = {**dict.fromkeys(ANSWER_NAMES, ""), **named}
        context = self._context(
            row_vars,
            {
                **named,
                "answers": list(answers) or [named["answer"]],
                "questions": list(questions) or [row_vars["question"]],
            },
        )
        user = self._template.render(**context)
        system = self._system.render(**context) if self._system else None
        turns = ((Message("system", system),) if system else ()) + (Message("user", user),)
        flat = f"{system}\n\n{user}" if system else user
        return GenerateRequest(flat, (), self.spec.max_tokens, 0.0, messages=turns)
