"""Turning rows into prompts: few-shot selection, Jinja2 rendering, and the content hash of each.

The layout is lm-evaluation-harness's: description, then each shot as text + target delimiter +
answer joined by the few-shot delimiter, then the few-shot delimiter and the question.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateError

from gnomon import text
from gnomon.data import Row, group_key
from gnomon.errors import UserError
from gnomon.hub.hooks import HOOKS, REQUIRED_FIELDS
from gnomon.hub.spec import BenchmarkSpec
from gnomon.judge_prompt import JudgePrompt
from gnomon.templating import ENV, evaluate

# several acceptable references, any one of which is right (an item may itself be a list: one
# answer made of several spans); or named lists of them (TruthfulQA's correct and incorrect)
References = list[str | list[str]]
Target = int | list[int] | str | References | dict[str, References]


def gold_indices(target: Target) -> list[int]:
    """A choice target's indices: one, or several where the row lists several right choices."""
    found = target if isinstance(target, list) else [target]
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in found):
        raise TypeError(f"a choice target is an index or a list of them, not {target!r:.60}")
    return [i for i in found if isinstance(i, int)]


@dataclass(frozen=True)
class Sample:
    """One rendered question: everything an engine request and a stored result need."""

    bench: str
    sample_id: str
    index: int
    context: str
    # the raw choice texts (choice mode; generate mode when an extractor reads them), else empty
    choices: tuple[str, ...]
    # gold choice index (a list where several choices are right), the reference answer text, or
    # references (see `Target`)
    target: Target
    cluster: str | None
    origin: str
    # code mode: rendered `solution_prefix`, `tests`, `call`, or an `error` saying why not
    program: dict[str, str] | None = None
    # a judged benchmark: what the judge's prompt needs (the row, the question, the baseline)
    judge: dict[str, Any] | None = None
    # a conversation (`prompt.turns`): the user's follow-up turns, after `context` (the first);
    # `system` is the system message sent before it (--chat --system-prompt)
    turns: tuple[str, ...] = ()
    system: str | None = None
    # choices that are contexts (`prompt.choices_in: context`): the text scored after each
    continuation: str | None = None
    # each choice's truth (`prompt.labels`), for metrics over every true choice (mc2)
    labels: tuple[int, ...] = ()
    # the worked solution (`prompt.solution`), for metrics that read the gold answer out of it
    solution: str | None = None
    # this row's stop sequences, where `generation.until` has templates (None: the spec's)
    until: tuple[str, ...] | None = None

    @property
    def golds(self) -> list[int]:
        """The right choices' indices (choice mode): one, or several where the row lists them."""
        return gold_indices(self.target)

    @property
    def content_hash(self) -> str:
        parts: list[object] = [self.context, self.choices, self.target]
        if self.program is not None:
            parts.append(self.program)
        if self.judge is not None:  # the judge's prompt may read any field of the row
            parts.append(self.judge)
        if self.turns or self.system:  # only a conversation has them: others hash as before
            parts.append({"turns": self.turns, "system": self.system})
        if self.continuation is not None or self.labels:  # likewise
            parts.append({"continuation": self.continuation, "labels": self.labels})
        if self.solution is not None:
            parts.append({"solution": self.solution})
        if self.until is not None:
            parts.append({"until": self.until})
        blob = json.dumps(parts, ensure_ascii=False, sort_keys=True, default=str)
        return hashlib.sha256(text.encode(blob)).hexdigest()[:16]


@dataclass(frozen=True)
class ChatFormat:
    """A chat model's prompt: few-shot examples as user/assistant turns, then the question, laid
    out by the model's own chat template (`apply`), after an optional system prompt."""

    apply: Callable[[list[dict[str, str]]], str]
    system: str | None = None
    fingerprint: str = ""  # hash of the template and system prompt: part of the prompt hash

    def render(self, description: str, shots: list[tuple[str, str]], question: str) -> str:
        messages = [{"role": "system", "content": self.system}] if self.system else []
        turns = [*shots, (question, None)]
        for i, (user, assistant) in enumerate(turns):
            messages.append({"role": "user", "content": (description if i == 0 else "") + user})
            if assistant is not None:
                messages.append({"role": "assistant", "content": assistant})
        return self.apply(messages)


class Renderer:
    """Compiles a spec's templates once and renders rows; errors name the row's file and line."""

    def __init__(
        self, spec: BenchmarkSpec, shots: int | None = None, chat: ChatFormat | None = None
    ) -> None:
        self.spec = spec
        self.chat = chat
        self.shots = spec.fewshot.count if shots is None else shots
        p = spec.prompt
        try:
            self._description = ENV.from_string(p.description)
            self._template = ENV.from_string(p.template)
            self._target = ENV.compile_expression(p.target, undefined_to_none=False)
            self._fewshot_target = (
                ENV.compile_expression(p.fewshot_target, undefined_to_none=False)
                if p.fewshot_target
                else None
            )
            self._choices: Callable[..., Any] | None = (
                ENV.compile_expression(p.choices, undefined_to_none=False)
                if isinstance(p.choices, str)
                else None
            )
            self._labels = (
                ENV.compile_expression(p.labels, undefined_to_none=False) if p.labels else None
            )
            self._solution = (
                ENV.compile_expression(p.solution, undefined_to_none=False) if p.solution else None
            )
        except TemplateError as exc:
            raise UserError(f"benchmark {spec.id}: bad template: {exc.message}") from None
        try:
            code = spec.code
            self._code = (
                {
                    "solution_prefix": ENV.from_string(code.solution_prefix),
                    "tests": ENV.from_string(code.tests),
                    "call": ENV.from_string(code.call),
                }
                if code
                else None
            )
        except TemplateError as exc:
            raise UserError(f"benchmark {spec.id}: bad code template: {exc.message}") from None
        try:
            self._turns = [ENV.from_string(t) for t in p.turns or ()]
        except TemplateError as exc:
            raise UserError(f"benchmark {spec.id}: bad turn template: {exc.message}") from None
        until = spec.generation.until if spec.generation else []
        try:
            self._until = (
                [ENV.from_string(u) for u in until] if any("{{" in u for u in until) else None
            )
        except TemplateError as exc:
            raise UserError(f"benchmark {spec.id}: bad stop template: {exc.message}") from None
        self._judge = JudgePrompt(spec.judge, spec.id) if spec.judge is not None else None
        self._keeps_choices = spec.mode == "choice" or any(
            e.kind == "multi_choice" for e in spec.extract
        )
        self._choice_contexts = spec.mode == "choice" and p.choices_in == "context"
        if self._choice_contexts and chat is not None:
            raise UserError(
                f"benchmark {spec.id}: its choices are contexts of their own (`choices_in: "
                "context`), which gnomon does not lay out as a chat"
            )
        self._hook = HOOKS.get(spec.source.process) if spec.source.process else None
        if spec.source.process and self._hook is None:
            raise UserError(f"benchmark {spec.id}: unknown row hook {spec.source.process!r}")

    def _system(self, talk: bool) -> str | None:
        """A conversation's system message: the benchmark's own where it defines one (it is
        part of the benchmark's prompt), else the local chat format's `--system-prompt`."""
        if not talk:
            return None
        if self.spec.prompt.system is not None:
            return self.spec.prompt.system
        return self.chat.system if self.chat is not None else None

    def fields(self, row: Row) -> dict[str, Any]:
        if self._hook is None:
            return row.fields
        missing = [
            f
            for f in REQUIRED_FIELDS.get(self.spec.source.process or "", ())
            if f not in row.fields
        ]
        if missing:
            raise UserError(f"{row.origin}: row lacks field `{missing[0]}`")
        try:
            return self._hook(row.fields)
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"{row.origin}: cannot prepare row: {exc}") from None

    def _eval(self, what: str, fn: Callable[..., Any], fields: dict[str, Any], row: Row) -> Any:
        return evaluate(row.origin, what, fn, fields)

    def choices(self, fields: dict[str, Any], row: Row) -> list[str]:
        raw = self.spec.prompt.choices
        value = raw if self._choices is None else self._eval("choices", self._choices, fields, row)
        if (
            not isinstance(value, list | tuple)
            or not value
            or not all(isinstance(c, str) for c in value)
        ):
            raise UserError(
                f"{row.origin}: choices must be a non-empty list of strings, got {value!r:.80}"
            )
        return list(value)

    def target(self, fields: dict[str, Any], row: Row, n_choices: int | None) -> Target:
        """A choice index; in choice mode also a list of them, where several choices are right
        (AGIEval's `gold`), one element standing for itself. Elsewhere the reference text, or
        several references (`References`), or named lists of them."""
        value = self._eval("target", self._target, fields, row)
        if n_choices is not None:
            indices = list(value) if isinstance(value, list | tuple) and value else [value]
            for index in indices:
                if not isinstance(index, int) or isinstance(index, bool):
                    raise UserError(
                        f"{row.origin}: target must be a choice index, got {value!r:.80}"
                    )
                if not 0 <= index < n_choices:
                    raise UserError(
                        f"{row.origin}: target {index} is not one of {n_choices} choices"
                    )
            return indices[0] if len(indices) == 1 else indices
        if isinstance(value, str):
            return value
        if _is_reference_list(value):
            return [v if isinstance(v, str) else list(v) for v in value]
        if (
            isinstance(value, dict)
            and value
            and all(isinstance(k, str) and _is_reference_list(v) for k, v in value.items())
        ):  # named lists of references: TruthfulQA's correct and incorrect answers
            return {k: [r if isinstance(r, str) else list(r) for r in v] for k, v in value.items()}
        raise UserError(
            f"{row.origin}: target must be text, a non-empty list of reference texts or a "
            f"mapping of such lists, got {value!r:.80}"
        )

    def labels(self, fields: dict[str, Any], row: Row, n_choices: int) -> tuple[int, ...]:
        """Each choice's truth, 1 or 0, one per choice."""
        if self._labels is None:
            return ()
        value = self._eval("labels", self._labels, fields, row)
        if (
            not isinstance(value, list | tuple)
            or len(value) != n_choices
            or any(v not in (0, 1) or isinstance(v, float) for v in value)
        ):
            raise UserError(
                f"{row.origin}: labels must be {n_choices} values 0 or 1 (one per choice), "
                f"got {value!r:.80}"
            )
        if 1 not in value:
            raise UserError(f"{row.origin}: labels mark no choice as true")
        return tuple(int(v) for v in value)

    def program(self, fields: dict[str, Any], row: Row) -> dict[str, str]:
        """The test side of a code sample. A row whose tests cannot be rendered is kept, with
        the reason, so that it becomes a recorded failure rather than stopping the run."""
        assert self._code is not None
        try:
            rendered = {k: self._eval(k, t.render, fields, row) for k, t in self._code.items()}
        except UserError as exc:
            return {"error": f"the benchmark row has no usable tests ({exc})"}
        if not rendered["tests"].strip():
            return {"error": "the benchmark row has no tests"}
        return rendered

    def solution(self, fields: dict[str, Any], row: Row) -> str | None:
        if self._solution is None:
            return None
        value = self._eval("solution", self._solution, fields, row)
        if self.spec.mode == "tool_call" and isinstance(value, dict):
            # JSON in the row's own key order: tool docs reach the model as the row has them
            # (`tojson` would sort their parameters)
            value = json.dumps(value, ensure_ascii=False)
        if not isinstance(value, str):
            raise UserError(f"{row.origin}: solution must be text, got {value!r:.80}")
        return value

    def until(self, fields: dict[str, Any], row: Row) -> tuple[str, ...] | None:
        """This row's stop sequences, when the spec's depend on the row."""
        if self._until is None:
            return None
        stops = tuple(self._eval("until", t.render, fields, row) for t in self._until)
        if not all(stops):
            raise UserError(f"{row.origin}: a stop sequence renders empty: {stops!r:.80}")
        return stops

    def question(self, fields: dict[str, Any], row: Row) -> str:
        return self._eval("template", self._template.render, fields, row)

    def shot_text(self, row: Row) -> str:
        """A worked example: the question followed by its answer."""
        question, answer = self.shot_parts(row)
        return question + self.spec.prompt.target_delimiter + answer

    def shot_parts(self, row: Row) -> tuple[str, str]:
        fields = self.fields(row)
        if self._choice_contexts:  # the gold choice is the question, the shared text its answer
            choices = self.choices(fields, row)
            target = self.target(fields, row, len(choices))
            gold = choices[gold_indices(target)[0]]
            if self._fewshot_target is not None:
                return gold, str(self._eval("fewshot_target", self._fewshot_target, fields, row))
            return gold, self.question(fields, row)
        if self._fewshot_target is not None:
            answer = str(self._eval("fewshot_target", self._fewshot_target, fields, row))
        elif self.spec.mode == "choice":
            choices = self.choices(fields, row)
            right = self.target(fields, row, len(choices))
            answer = choices[gold_indices(right)[0]]
        else:
            target = self.target(fields, row, None)
            # several references: the shot shows the first, as lm-evaluation-harness does
            answer = _first_text(target) if isinstance(target, list) and target else str(target)
        return self.question(fields, row), answer

    def render(
        self, rows: Sequence[Row], fewshot_rows: Sequence[Row], same_split: bool
    ) -> list[Sample]:
        """Render every row; shots are chosen here so that the choice is part of the hash."""
        picker = _ShotPicker(self.spec, self.shots, fewshot_rows, same_split)
        shot_cache: dict[int, tuple[str, str]] = {}
        samples = []
        for row in rows:
            fields = self.fields(row)
            description = self._eval("description", self._description.render, fields, row)
            shots = []
            for shot in picker.pick(row, fields):
                if shot.index not in shot_cache:
                    shot_cache[shot.index] = self.shot_parts(shot)
                shots.append(shot_cache[shot.index])
            question = self.question(fields, row)
            # choices that are contexts: each follows the shared prefix, the question is scored
            continuation = question if self._choice_contexts else None
            if self._choice_contexts:
                question = ""
            turns = tuple(
                self._eval(f"turns[{i}]", t.render, fields, row) for i, t in enumerate(self._turns)
            )
            # a conversation is sent as messages, laid out by whoever answers (the model's
            # chat template, a chat API): its first user turn is the prompt in plain layout
            talk = bool(turns) or self.spec.prompt.chat
            if self.chat is not None and not talk:
                context = self.chat.render(description, shots, question)
            else:
                delim, target_delim = (
                    self.spec.prompt.fewshot_delimiter,
                    self.spec.prompt.target_delimiter,
                )
                blocks = [q + target_delim + a for q, a in shots]
                end = self.spec.prompt.fewshot_end
                prefix = delim.join(blocks) + (delim if end is None else end) if blocks else ""
                context = description + prefix + question
            choices = self.choices(fields, row) if self._keeps_choices else []
            scored = self.spec.mode == "choice"  # elsewhere choices only help read the answer
            target = self.target(fields, row, len(choices) if scored else None)
            labels = self.labels(fields, row, len(choices)) if scored else ()
            id_field = self.spec.source.id_field
            sample_id = (
                str(row.fields[id_field]) if id_field and id_field in row.fields else str(row.index)
            )
            cluster = str(fields.get(self.spec.cluster_by)) if self.spec.cluster_by else None
            judge = None
            if self._judge is not None:
                judge = self._judge.row_vars(fields, row, question, target, turns)
            elif self.spec.asks_judge:  # a judge extractor reads the question, not the shots
                judge = {"question": question}
            samples.append(
                Sample(
                    self.spec.id,
                    sample_id,
                    row.index,
                    context,
                    tuple(choices),
                    target,
                    cluster,
                    row.origin,
                    self.program(fields, row) if self._code else None,
                    judge,
                    turns,
                    self._system(talk),
                    continuation,
                    labels,
                    self.solution(fields, row),
                    self.until(fields, row),
                )
            )
        return samples


class _ShotPicker:
    """lm-evaluation-harness's samplers: `first_n` in file order, or a seeded RNG in row order.
    With `group_by`, each group draws from its own RNG, as each of lm-eval's subtasks (one per
    MMLU subject, BBH task) seeds its own sampler."""

    def __init__(
        self, spec: BenchmarkSpec, count: int, pool: Sequence[Row], same_split: bool
    ) -> None:
        self.count = count
        self.sampler = spec.fewshot.sampler
        self.group_by = spec.fewshot.group_by
        self.same_split = same_split
        # whether the row being asked is kept out of its own shots, and how it is recognised:
        # by position in a shared split (gnomon's default), by equal fields (lm-eval's rule)
        exclude = spec.fewshot.exclude_eval_row
        self.exclude = same_split if exclude is None else exclude
        self.by_fields = exclude is True
        self.seed = spec.fewshot.seed
        self.rngs: dict[Any, random.Random] = {}
        self.pools: dict[Any, list[Row]] = defaultdict(list)
        for row in pool:
            key = group_key(row.fields.get(self.group_by)) if self.group_by else None
            self.pools[key].append(row)
        if count and not pool:
            raise UserError(f"{spec.id}: {count}-shot needs rows in split {spec.fewshot.split!r}")
        self.fixed: list[Row] | None = None
        if spec.fewshot.ids is not None:
            id_field = spec.source.id_field or ""
            by_id = {str(r.fields.get(id_field)): r for r in pool}
            missing = [i for i in spec.fewshot.ids if i not in by_id]
            if missing and count:
                raise UserError(f"{spec.id}: few-shot ids {missing} are not in the split")
            self.fixed = [by_id[i] for i in spec.fewshot.ids if i in by_id]

    def pick(self, row: Row, fields: dict[str, Any]) -> list[Row]:
        if not self.count:
            return []
        key = group_key(row.fields.get(self.group_by)) if self.group_by else None
        pool = self.fixed if self.fixed is not None else self.pools.get(key, [])
        if self.sampler == "first_n" or self.fixed is not None:
            chosen = [r for r in pool if not self._is_asked(r, row)][: self.count]
        else:
            rng = self.rngs.setdefault(key, random.Random(self.seed))
            draw = rng.sample(pool, min(len(pool), self.count + int(self.exclude)))
            chosen = [r for r in draw if not self._is_asked(r, row)][: self.count]
        if len(chosen) < self.count:
            raise UserError(
                f"{row.origin}: {self.count}-shot needs {self.count} examples"
                + (f" with {self.group_by}={key!r}" if self.group_by else "")
                + f", only {len(chosen)} available"
            )
        return chosen

    def _is_asked(self, shot: Row, row: Row) -> bool:
        if not self.exclude:
            return False
        return shot.fields == row.fields if self.by_fields else shot.index == row.index


def _is_reference_list(value: object) -> bool:
    """A non-empty list of references, each a text or a non-empty list of texts (DROP's answers
    of several spans)."""
    if not isinstance(value, list | tuple) or not value:
        return False
    return all(
        isinstance(v, str)
        or (isinstance(v, list | tuple) and v and all(isinstance(t, str) for t in v))
        for v in value
    )


def _first_text(references: Sequence[object]) -> str:
    first = references[0]
    return ", ".join(map(str, first)) if isinstance(first, list) else str(first)
