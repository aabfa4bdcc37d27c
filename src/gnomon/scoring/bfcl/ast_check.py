"""BFCL's AST check of decoded function calls against the possible answers (Python categories).

The Berkeley Function Calling Leaderboard does not run the calls a model makes: it compares them,
parameter by parameter, with lists of acceptable values. This module is gnomon's own
implementation of that comparison, written to give BFCL's `ast_checker` verdict on every call
(`tests/test_hub_bfcl.py` holds the two side by side over the real rows), so the rules below,
including the lenient ones, are BFCL's:

- a value is compared with the possible answers after BFCL's string normalisation (case, spaces
  and `,./-_*^` ignored, single quotes as double) for strings, lists' string items and dicts'
  string values; a possible answer of `""` marks a parameter that may be left out;
- types are Python's exact types (`True` is no integer), an integer is taken where a float is
  expected, and list items are checked one level deep; a value of the possible answers' type
  where the schema says otherwise is a "variable" and compared as given;
- parallel calls are matched in any order, each expected call taking the first unmatched call
  that passes (BFCL's greedy matching, not the best assignment);
- the function names a model sees have their dots replaced by underscores (the OpenAI tools
  interface forbids dots), so an expected name is compared in that form.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# BFCL's Python types of a function doc's parameter types; "tuple" arrives as a JSON list
PYTHON_TYPES: dict[str, type] = {
    "string": str,
    "integer": int,
    "float": float,
    "boolean": bool,
    "array": list,
    "tuple": list,
    "dict": dict,
    "any": str,
}
_ITEM_CHECKED = ("array", "tuple")  # types whose items are type-checked too
_IGNORED = re.compile(r"[ ,./\-_*^]")

Call = tuple[str, dict[str, Any]]  # a decoded call: the function's name and its arguments


@dataclass(frozen=True)
class Verdict:
    valid: bool
    reason: str = ""


PASS = Verdict(True)


def normalise(value: str) -> str:
    """BFCL's lenient string form: "April 1, 2024" and "april 1 2024" compare equal."""
    return _IGNORED.sub("", value).lower().replace("'", '"')


def tool_name(name: str) -> str:
    """A function's name as the tools interface shows it (and a model calls it)."""
    return name.replace(".", "_")


def check_calls(
    functions: Sequence[Mapping[str, Any]],
    calls: Sequence[Call],
    answers: Sequence[Mapping[str, Any]],
    category: str,
    underscored: bool = True,
) -> Verdict:
    """The verdict on a model's decoded calls. `category` is BFCL's test category (its name
    decides the rule, as in BFCL: "parallel" in it, else "multiple" in it, else simple).

    `underscored`: the model saw the functions through the tools interface, under names with
    dots as underscores (BFCL's function-calling models); else under their own names (models
    prompted with the docs). Possible answers of a shape BFCL's own checker would fail on (it
    raises) give a wrong verdict with the reason, never an exception."""
    try:
        return _check(functions, calls, answers, category, underscored)
    except (KeyError, TypeError, AttributeError, ValueError, IndexError) as exc:
        return Verdict(False, f"cannot check against the possible answers: {exc!r}")


def _check(
    functions: Sequence[Mapping[str, Any]],
    calls: Sequence[Call],
    answers: Sequence[Mapping[str, Any]],
    category: str,
    underscored: bool,
) -> Verdict:
    if "parallel" in category:
        return _parallel(functions, calls, answers, underscored)
    wanted = len(answers) if "multiple" in category else 1  # simple: one call, whatever else
    if len(calls) != wanted:
        return Verdict(False, f"{len(calls)} calls where {wanted} expected")
    if "multiple" in category:
        expected = _only_key(answers[0])
        return _check_one(_doc_named(functions, expected), calls[0], answers[0], underscored)
    return _check_one(functions[0], calls[0], answers[0], underscored)


def _only_key(answer: Mapping[str, Any]) -> str:
    return next(iter(answer))


def _doc_named(functions: Sequence[Mapping[str, Any]], name: str) -> Mapping[str, Any]:
    for doc in functions:
        if doc["name"] == name:
            return doc
    raise ValueError(f"the possible answer names {name!r}, which no function doc defines")


def _parallel(
    functions: Sequence[Mapping[str, Any]],
    calls: Sequence[Call],
    answers: Sequence[Mapping[str, Any]],
    underscored: bool,
) -> Verdict:
    if len(calls) != len(answers):
        return Verdict(False, f"{len(calls)} calls where {len(answers)} expected")
    taken: set[int] = set()
    for i, answer in enumerate(answers):
        doc = _doc_named(functions, _only_key(answer))
        found = None
        last = Verdict(False)
        for at, call in enumerate(calls):
            if at in taken:
                continue
            last = _check_one(doc, call, answer, underscored)
            if last.valid:
                found = at
                break
        if found is None:
            return Verdict(False, f"no call matches expected call {i + 1}: {last.reason}")
        taken.add(found)
    return PASS


def _check_one(
    doc: Mapping[str, Any], call: Call, answer: Mapping[str, Any], underscored: bool
) -> Verdict:
    """One call against one expected call (a mapping of the function's name to, per parameter,
    the list of acceptable values)."""
    possible: Mapping[str, list[Any]] = next(iter(answer.values()))
    name, params = call
    expected_name = tool_name(doc["name"]) if underscored else doc["name"]
    if name != expected_name:
        return Verdict(False, f"called {name!r}, expected {expected_name!r}")
    schema = doc["parameters"]
    for required in schema["required"]:
        if required not in params:
            return Verdict(False, f"missing required parameter {required!r}")
    properties = schema["properties"]
    for param, value in params.items():
        if param not in properties or param not in possible:
            return Verdict(False, f"unexpected parameter {param!r}")
        found = _check_value(param, value, properties[param], possible[param])
        if not found.valid:
            return found
    for param, values in possible.items():
        if param not in params and "" not in values:
            return Verdict(False, f"parameter {param!r} left out, and it is not optional")
    return PASS


def _check_value(param: str, value: Any, schema: Mapping[str, Any], possible: list[Any]) -> Verdict:
    declared = schema["type"]
    expected = PYTHON_TYPES.get(declared)
    item_type = PYTHON_TYPES.get(schema["items"]["type"]) if declared in _ITEM_CHECKED else None
    if declared == "float" and type(value) is int:  # Python would take an int here
        value = float(value)
    if declared == "tuple" and type(value) is tuple:  # a prompted model may write one
        value = list(value)
    typed, variable = _type_ok(value, possible, expected, item_type)
    if not typed:
        return Verdict(False, f"{param!r}: {type(value).__name__} is not {declared}")
    if not variable:
        if expected is dict:
            matched = _dict_matches(value, possible)
        elif expected is list and item_type is dict:
            matched = _dict_list_matches(value, possible)
        elif expected is str:
            matched = normalise(value) in [normalise(p) for p in possible if type(p) is str]
        elif expected is list:
            matched = _normalised(value) in [_normalised(p) for p in possible]
        else:
            matched = value in possible
        if not matched:
            return Verdict(False, f"{param!r}: {value!r} is none of {possible!r}")
        return PASS
    if value not in possible:
        return Verdict(False, f"{param!r}: {value!r} is none of {possible!r}")
    return PASS


def _answers_type(possible: Sequence[Any]) -> type | None:
    """The type of the first possible answer that is not the "may be left out" mark."""
    return next((type(p) for p in possible if p != ""), None)


def _type_ok(
    value: Any, possible: list[Any], expected: type | None, item_type: type | None
) -> tuple[bool, bool]:
    """(whether the value's type passes, whether it stands for a variable). A value whose type
    is the possible answers' rather than the schema's is a variable and passes, unless it is a
    list whose items failed their check."""
    answers_type = _answers_type(possible)
    variable = answers_type is not None and answers_type is not expected
    items_failed = False
    if type(value) is expected:
        if item_type is None or _items_ok(value, possible, item_type):
            return True, variable
        items_failed = True
    if answers_type is not None and type(value) is answers_type:
        return not items_failed, True
    return False, False


def _items_ok(value: list[Any], possible: list[Any], item_type: type) -> bool:
    """A list's items, one level deep: each of some possible answer's type, or each of the item
    type; a possible answer that is no list (the optional mark) lets any items pass."""
    for answer in possible:
        if type(answer) is not list:
            return True
        answer_type = _answers_type(answer)
        if all(type(v) is item_type or type(v) is answer_type for v in value):
            return True
    return False


def _normalised(value: Any) -> list[Any]:
    """A list (or a possible answer, taken item by item) with its strings normalised."""
    return [normalise(v) if type(v) is str else v for v in value]


def _dict_matches(value: Mapping[str, Any], possible: list[Any]) -> bool:
    """A dict value against possible dicts, each key's value among that key's possible values
    (normalised where they are strings); keys whose values include "" may be left out."""
    for answer in possible:
        if answer == "":
            continue
        matched = True
        for key, item in value.items():
            wanted = _normalised(answer[key]) if key in answer else None
            if wanted is None or (normalise(item) if type(item) is str else item) not in wanted:
                matched = False
                break
        if matched and all(key in value or "" in v for key, v in answer.items()):
            return True
    return False


def _dict_list_matches(value: list[Any], possible: list[Any]) -> bool:
    """A list of dicts against possible lists of dicts, position by position."""
    for answer in possible:
        if len(value) != len(answer):
            continue
        if all(
            isinstance(item, dict) and _dict_matches(item, [wanted])
            for item, wanted in zip(value, answer, strict=True)
        ):
            return True
    return False
