"""Reading tool calls out of a model's generated text, for engines that see only text.

An API server parses calls itself and hands them over as structured fields; a local model just
writes text, in whatever format its chat template taught it. Two formats cover most open models:

- Hermes/Qwen style: `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` blocks, any number,
  with prose around them (the prose stays the answer's text);
- a bare JSON object `{"name": ..., "arguments"/"parameters": ...}` (or a list of them, or one
  in a Markdown code fence) that is the whole answer (Llama 3.x, Mistral-like templates).

A block that does not parse as such an object is not a call: it stays in the text, where a
benchmark can see what the model wrote. The arguments keep the model's own spelling (spacing,
key order, escapes), since `ToolCall.arguments` is the text as written.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from gnomon.engines.base import ToolCall

_BLOCK = re.compile(r"<tool_call>(.*?)(?:</tool_call>|\Z)", re.DOTALL)
_FENCE = re.compile(r"\A```[a-zA-Z]*\s*\n(.*?)\n?```\Z", re.DOTALL)
_ARG_KEYS = ("arguments", "parameters")
_DECODER = json.JSONDecoder()


def parse_tool_calls(text: str) -> tuple[str, tuple[ToolCall, ...]]:
    """(the text left once calls are taken out, the calls in the order written).

    Text without a recognised call comes back unchanged with no calls."""
    if "<tool_call>" in text:
        calls: list[ToolCall] = []

        def take(match: re.Match[str]) -> str:
            call = _call(match.group(1).strip(), len(calls))
            if call is None:
                return match.group(0)
            calls.append(call)
            return ""

        rest = _BLOCK.sub(take, text)
        if calls:
            return rest.strip(), tuple(calls)
        return text, ()
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    if body.startswith("["):
        items = _raw_items(body)
        if items:
            found = [_call(item, i) for i, item in enumerate(items)]
            if all(c is not None for c in found):
                return "", tuple(c for c in found if c is not None)
        return text, ()
    call = _call(body, 0) if body.startswith("{") else None
    return ("", (call,)) if call is not None else (text, ())


def _call(raw: str, index: int) -> ToolCall | None:
    """One call from the JSON text of one object, or None if it is not a call."""
    try:
        value, end = _DECODER.raw_decode(raw)
    except (ValueError, RecursionError):  # RecursionError: nested past the reader's depth
        return None
    if raw[end:].strip() or not isinstance(value, dict):
        return None
    name = value.get("name")
    key = next((k for k in _ARG_KEYS if k in value), None)
    if not isinstance(name, str) or not name or key is None:
        return None
    arguments = _as_written(raw, key, value[key])
    digest = hashlib.sha256(f"{index}\0{name}\0{arguments}".encode("utf-8", "surrogatepass"))
    return ToolCall(name, arguments, f"call_{digest.hexdigest()[:16]}")


def _as_written(raw: str, key: str, value: Any) -> str:
    """The arguments' own JSON text in `raw`; a string value (some models write the arguments as
    an encoded JSON string) is that string. Re-encoded only if the span cannot be found."""
    if isinstance(value, str):
        return value
    for match in re.finditer(rf'"{key}"\s*:\s*', raw):
        try:
            found, end = _DECODER.raw_decode(raw, match.end())
        except (ValueError, RecursionError):
            continue
        if found == value:
            return raw[match.end() : end]
    return json.dumps(value, ensure_ascii=False)


def _raw_items(body: str) -> list[str] | None:
    """The JSON texts of a top-level array's items, each as written; None if not an array."""
    items: list[str] = []
    at = _skip(body, 1)
    if at < len(body) and body[at] == "]":
        return None if body[at + 1 :].strip() else items
    while at < len(body):
        try:
            _, end = _DECODER.raw_decode(body, at)
        except (ValueError, RecursionError):
            return None
        items.append(body[at:end])
        at = _skip(body, end)
        if at < len(body) and body[at] == ",":
            at = _skip(body, at + 1)
            continue
        if at < len(body) and body[at] == "]" and not body[at + 1 :].strip():
            return items
        return None
    return None


def _skip(text: str, at: int) -> int:
    while at < len(text) and text[at].isspace():
        at += 1
    return at
