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
# (`prompt.turns`; one item without), so a template can show the whole exchange; a judge asked
# per turn (`per_turn`) also sees `turn`, and the lists only up to that turn.
ANSWER_NAMES = ("answer", "answer_a", "answer_b")


class JudgePrompt:
    def __init__(self, spec: JudgeSpec, bench: str) -> None:
        self.spec = spec
        try:
            self._template = ENV.from_string(spec.template)
            self._system = ENV.from_string(spec.system) if spec.system else None
            # per_turn: the templates of turns after the first (default: the first turn's)
            self._turn_template = (
                ENV.from_string(spec.turn_template) if spec.turn_template else self._template
            )
            self._turn_system = ENV.from_string(spec.turn_system) if spec.turn_system else None
            if spec.turn_system is None:
                self._turn_system = self._system
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
        asked = [question, *turns]
        for turn in range(1, len(asked) + 1) if self.spec.per_turn else [0]:
            placeholder = {
                **dict.fromkeys(ANSWER_NAMES, ""),
                "answers": [""] * (turn or len(asked)),
                "questions": asked[: turn or None],
                **({"turn": turn} if turn else {}),
            }
            for what, template in self._templates(turn):
                if template is not None:
                    evaluate(row.origin, what, template.render, self._context(out, placeholder))
        return out

    def _templates(self, turn: int) -> list[tuple[str, Any]]:
        """(name, template) of the user message and the system message asked about `turn` (0:
        the judge is asked once, about the whole answer)."""
        if turn > 1:
            return [
                ("judge.turn_template", self._turn_template),
                ("judge.turn_system", self._turn_system),
            ]
        return [("judge.template", self._template), ("judge.system", self._system)]

    def _context(self, row_vars: dict[str, Any], answers: dict[str, Any]) -> dict[str, Any]:
        return {**row_vars["row"], **row_vars, **answers}

    def request(
        self,
        row_vars: dict[str, Any],
        *,
        answers: Sequence[str] = (),
        questions: Sequence[str] = (),
        turn: int = 0,
        sample: int = 0,
        **named: str,
    ) -> GenerateRequest:
        """The judge's request: a conversation (system, then the rendered template) at the
        judge's temperature (0 unless it samples). `context` holds the same text flat, for
        engines that take plain text. `answers` and `questions` are the conversation's turns
        (default: the one answer, the one question); `turn` > 0 asks about that turn alone
        (`per_turn`; the templates see `turn`); `sample` numbers a sampled judge's repeats
        (its seed), so each is its own stored request."""
        named = {**dict.fromkeys(ANSWER_NAMES, ""), **named}
        context = self._context(
            row_vars,
            {
                **named,
                "answers": list(answers) or [named["answer"]],
                "questions": list(questions) or [row_vars["question"]],
                **({"turn": turn} if turn else {}),
            },
        )
        (_, template), (_, system_template) = self._templates(turn)
        user = template.render(**context)
        system = system_template.render(**context) if system_template else None
        turns = ((Message("system", system),) if system else ()) + (Message("user", user),)
        flat = f"{system}\n\n{user}" if system else user
        temperature = self.spec.judge_temperature
        return GenerateRequest(
            flat, (), self.spec.max_tokens, temperature, seed=sample, messages=turns
        )
