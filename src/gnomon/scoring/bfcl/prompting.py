"""BFCL for models without function calling: the functions go into a system prompt and the
model writes its calls as Python, `[f(a=1), g(b="x")]`, which BFCL reads with Python's parser.

The system prompt is BFCL's own (shipped as data: `hub/fewshot/bfcl_system_prompt.json`,
written by `scripts/bfcl_prompt.py` from the bfcl-eval package), the function docs in it as BFCL
gives them (JSON, four-space indent, names as written, dots kept). Reading the answer follows
BFCL's decoder: code fences and brackets trimmed, the text parsed as a Python list of calls,
keyword arguments only, each value read from its syntax tree. Where BFCL `eval`s what the model
wrote (an arithmetic expression as an argument), gnomon computes only arithmetic on literal
numbers, strings and lists, within bounds, and treats anything else as an answer that does not
decode: it never runs model output.
"""

from __future__ import annotations

import ast
import json
import operator
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any

from gnomon.hub.spec_parts import FEWSHOT_DIR
from gnomon.scoring.bfcl.tools import LANGUAGE_NOTES
from gnomon.scoring.bfcl.verdict import Decoded

PROMPT_FILE = FEWSHOT_DIR / "bfcl_system_prompt.json"


@cache
def _template() -> str:
    return str(json.loads(PROMPT_FILE.read_text(encoding="utf-8"))["template"])


def system_prompt(functions: Sequence[Mapping[str, Any]], language: str = "python") -> str:
    """BFCL's system prompt for these docs (each description with BFCL's note on the language)."""
    docs = [dict(doc) for doc in functions]
    for doc in docs:
        doc["description"] = doc.get("description", "") + LANGUAGE_NOTES[language]
    return _template().replace("{functions}", json.dumps(docs, indent=4), 1)


def with_system_prompt(
    messages: Sequence[Mapping[str, Any]], functions: Sequence[Mapping[str, Any]], language: str
) -> list[dict[str, Any]]:
    """The conversation as BFCL sends it to a prompted model: its system prompt first, or, when
    the row opens with a system message of its own, that message after BFCL's prompt."""
    prompt = system_prompt(functions, language)
    turns = [dict(m) for m in messages]
    if turns and turns[0].get("role") == "system":
        turns[0]["content"] = prompt + "\n\n" + str(turns[0].get("content"))
        return turns
    return [{"role": "system", "content": prompt}, *turns]


def decode_python_calls(text: str) -> Decoded:
    """The calls a prompted model wrote, as BFCL reads them; `error` when they do not decode."""
    body = text.strip("`\n ")
    if not body.startswith("["):
        body = "[" + body
    if not body.endswith("]"):
        body = body + "]"
    try:
        tree = ast.parse(body.strip().strip("'"), mode="eval").body
        items = [tree] if isinstance(tree, ast.Call) else list(getattr(tree, "elts", None) or [])
        if not isinstance(tree, ast.Call) and not hasattr(tree, "elts"):
            raise _Undecodable("not a list of calls")
        calls = []
        for item in items:
            if not isinstance(item, ast.Call):
                raise _Undecodable(f"not a call: {ast.unparse(item)[:80]}")
            name, args = _call(item)
            calls.append((name, args))
    except (SyntaxError, ValueError, TypeError, AttributeError, RecursionError, MemoryError) as exc:
        return Decoded((), f"the answer is not a list of Python calls ({exc})")
    except _Undecodable as exc:
        return Decoded((), f"the answer is not a list of Python calls ({exc})")
    return Decoded(tuple(calls))


class _Undecodable(Exception):
    pass


def _call(node: ast.Call) -> tuple[str, dict[Any, Any]]:
    """`a.b.c(x=1)` as ("a.b.c", {"x": 1}); positional arguments are not read (as in BFCL)."""
    parts = []
    func: ast.expr = node.func
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    args = {keyword.arg: _value(keyword.value) for keyword in node.keywords}
    return ".".join(reversed(parts)), args


def _value(node: ast.expr | None) -> Any:
    if isinstance(node, ast.Constant):
        return "..." if node.value is Ellipsis else node.value
    if isinstance(node, ast.UnaryOp):  # BFCL negates whatever the operator (`+5` reads as -5)
        if not isinstance(node.operand, ast.Constant):
            raise _Undecodable(f"unsupported operand {ast.unparse(node.operand)[:40]}")
        return -node.operand.value
    if isinstance(node, ast.List):
        return [_value(v) for v in node.elts]
    if isinstance(node, ast.Dict):
        return {_value(k): _value(v) for k, v in zip(node.keys, node.values, strict=True)}
    if isinstance(node, ast.BinOp):
        return _arithmetic(node, 0)
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Call):
        if not node.keywords:
            return ast.unparse(node)
        name, args = _call(node)
        return {name: args}
    if isinstance(node, ast.Tuple):
        return tuple(_value(v) for v in node.elts)
    if isinstance(node, ast.Subscript):
        return ast.unparse(node.value) + "[" + ast.unparse(node.slice) + "]"
    kind = type(node).__name__
    raise _Undecodable(f"unsupported syntax ({kind})")


_OPERATORS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.LShift: operator.lshift,
    ast.RShift: operator.rshift,
    ast.BitOr: operator.or_,
    ast.BitAnd: operator.and_,
    ast.BitXor: operator.xor,
}
_UNARY: dict[type, Callable[[Any], Any]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
    ast.Invert: operator.invert,
    ast.Not: operator.not_,
}
_LIMIT = 10_000  # the largest exponent, repeat count or result length computed
_NUMBERS = (int, float, complex)


def _arithmetic(node: ast.expr, depth: int) -> Any:
    """What Python makes of an expression of literals (BFCL `eval`s it), or _Undecodable."""
    if depth > 50:
        raise _Undecodable("expression too deep")
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_arithmetic(node.operand, depth + 1))
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        items = [_arithmetic(v, depth + 1) for v in node.elts]
        if isinstance(node, ast.Set):
            return set(items)
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.Dict) and all(k is not None for k in node.keys):
        keys = [_arithmetic(k, depth + 1) for k in node.keys if k is not None]
        return dict(zip(keys, (_arithmetic(v, depth + 1) for v in node.values), strict=True))
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _arithmetic(node.left, depth + 1), _arithmetic(node.right, depth + 1)
        if isinstance(node.op, ast.Pow | ast.LShift) and abs(_size(right)) > _LIMIT:
            raise _Undecodable("exponent too large")
        numbers = isinstance(left, _NUMBERS) and isinstance(right, _NUMBERS)
        if (
            isinstance(node.op, ast.Mult)
            and not numbers
            and abs(_size(left) * _size(right)) > _LIMIT
        ):
            raise _Undecodable("repetition too long")
        try:
            result = _OPERATORS[type(node.op)](left, right)
        except (ArithmeticError, TypeError, ValueError) as exc:
            raise _Undecodable(f"cannot compute ({exc})") from None
        if isinstance(result, int) and result.bit_length() > 4 * _LIMIT:
            raise _Undecodable("number too large")
        return result
    raise _Undecodable(f"not arithmetic on literals: {ast.unparse(node)[:60]}")


def _size(value: Any) -> float:
    """A number's magnitude, a sequence's length: what bounds the work of `**` and `*`."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    if isinstance(value, complex):
        return abs(value)
    if isinstance(value, str | bytes | list | tuple):
        return len(value)
    return _LIMIT + 1
