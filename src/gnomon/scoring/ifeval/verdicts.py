"""A prompt's instructions applied to one response, strictly and loosely.

Loose scoring forgives the wrappers chat models add: it accepts an instruction when any of
eight variants of the response follows it (as is, asterisks removed, first line dropped, last
line dropped, both dropped, and each of those three with asterisks removed), as the IFEval
reference does. An empty (all-whitespace) variant never follows anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gnomon.scoring.ifeval.checkers import CHECKERS


@dataclass(frozen=True)
class Verdicts:
    """One verdict per instruction, in the row's order."""

    strict: tuple[bool, ...]
    loose: tuple[bool, ...]


def loose_variants(response: str) -> list[str]:
    lines = response.split("\n")
    no_first = "\n".join(lines[1:]).strip()
    no_last = "\n".join(lines[:-1]).strip()
    no_both = "\n".join(lines[1:-1]).strip()
    trimmed = [no_first, no_last, no_both]
    return [
        response,
        response.replace("*", ""),
        *trimmed,
        *(t.replace("*", "") for t in trimmed),
    ]


def _args(kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    # the reference drops every falsy value (None, 0, ""), not only missing ones
    return {k: v for k, v in (kwargs or {}).items() if v}


def _follows(instruction_id: str, response: str, args: Mapping[str, Any]) -> bool:
    return bool(response.strip()) and CHECKERS[instruction_id](response, args)


def judge(
    response: str,
    instruction_ids: Sequence[str],
    kwargs: Sequence[Mapping[str, Any] | None],
) -> Verdicts:
    """Verdicts for `response` on a row's `instruction_id_list` and `kwargs` (parallel lists).

    Raises KeyError for an instruction kind IFEval does not define."""
    unknown = [i for i in instruction_ids if i not in CHECKERS]
    if unknown:
        raise KeyError(f"unknown IFEval instruction {unknown[0]!r}")
    if len(kwargs) != len(instruction_ids):
        raise ValueError(f"{len(instruction_ids)} instructions but {len(kwargs)} kwargs entries")
    variants = loose_variants(response)
    strict, loose = [], []
    for instruction_id, raw in zip(instruction_ids, kwargs, strict=True):
        args = _args(raw)
        strict.append(_follows(instruction_id, response, args))
        loose.append(any(_follows(instruction_id, v, args) for v in variants))
    return Verdicts(tuple(strict), tuple(loose))
