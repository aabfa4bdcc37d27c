"""One answer's verdict: its tool calls decoded as BFCL decodes a function-calling model's
answer, then checked by the benchmark's checker.

A call's arguments must be a JSON object. Arguments that are not JSON make the answer fail to
decode: no call was made as far as BFCL is concerned (wrong for the AST and relevance checks,
right for irrelevance), and the raw text stays in the result for inspection. Arguments that are
JSON but no object decode, yet are no call format: BFCL counts that answer as wrong for the AST
check and as empty (no call) for relevance and irrelevance.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gnomon.engines.base import ToolCall
from gnomon.scoring.bfcl.ast_check import Call, Verdict, check_calls


@dataclass(frozen=True)
class Decoded:
    """The calls as (name, arguments) pairs; `error` says why they did not decode (then
    `calls` is empty), `shaped` whether every call's arguments are an object."""

    calls: tuple[tuple[str, Any], ...] = ()
    error: str = ""

    @property
    def shaped(self) -> bool:
        return not self.error and all(isinstance(args, dict) for _, args in self.calls)

    @property
    def makes_a_call(self) -> bool:
        """What BFCL's relevance checks count as a function call."""
        return self.shaped and bool(self.calls)

    def as_bfcl(self) -> list[dict[str, Any]]:
        """BFCL's form of decoded calls: one `{name: arguments}` per call."""
        return [{name: args} for name, args in self.calls]


def decode_calls(tool_calls: Sequence[ToolCall]) -> Decoded:
    calls = []
    for i, call in enumerate(tool_calls, start=1):
        try:
            arguments = json.loads(call.arguments)
        # JSONDecodeError, a lone surrogate's UnicodeError, and nesting past the reader's depth
        except (ValueError, RecursionError) as exc:
            return Decoded((), f"call {i} ({call.name}): its arguments are not JSON ({exc})")
        calls.append((call.name, arguments))
    return Decoded(tuple(calls))


def judge_answer(
    checker: str,
    tool_calls: Sequence[ToolCall],
    *,
    functions: Sequence[Mapping[str, Any]] = (),
    answers: Sequence[Mapping[str, Any]] = (),
    category: str = "",
) -> tuple[Decoded, Verdict]:
    """The decoded tool calls and the verdict of `checker` ("ast", "irrelevance", "relevance"),
    for a model that called through the tools interface (names with dots as underscores)."""
    decoded = decode_calls(tool_calls)
    return decoded, judge_decoded(
        checker, decoded, functions=functions, answers=answers, category=category
    )


def judge_decoded(
    checker: str,
    decoded: Decoded,
    *,
    functions: Sequence[Mapping[str, Any]] = (),
    answers: Sequence[Mapping[str, Any]] = (),
    category: str = "",
    underscored: bool = True,
) -> Verdict:
    """The verdict of `checker` on calls however they were decoded (tool calls, or the Python
    calls a prompted model wrote: `underscored=False`, the docs' own names)."""
    if checker == "irrelevance":
        if decoded.makes_a_call:
            return Verdict(False, "made a function call where none was relevant")
        return Verdict(True, decoded.error)
    if checker == "relevance":
        if decoded.makes_a_call:
            return Verdict(True)
        return Verdict(False, decoded.error or "made no function call")
    if decoded.error:
        return Verdict(False, decoded.error)
    if not decoded.shaped:
        return Verdict(False, "a call's arguments are not a JSON object")
    calls: list[Call] = [(name, args) for name, args in decoded.calls]
    return check_calls(functions, calls, answers, category, underscored)
