"""BFCL's function docs as OpenAI `tools`, the way BFCL's own OpenAI function-calling handler
sends them, so a model here is asked exactly what the leaderboard asks it.

BFCL writes its docs in its own dialect ("dict", "float", "tuple", "any" as types; dotted names)
and, before sending, adds a note on the language to each description and maps the types to JSON
Schema's. A float parameter also gets `format: float` and a sentence saying so; a dotted name
becomes underscored, since the tools interface forbids dots (and the checker compares names in
that form, `ast_check.tool_name`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any

from gnomon.scoring.bfcl.ast_check import tool_name

# BFCL's type names (Python's, Java's and JavaScript's) in JSON Schema's terms; others: string
SCHEMA_TYPES: dict[str, str] = {
    "integer": "integer",
    "number": "number",
    "float": "number",
    "string": "string",
    "boolean": "boolean",
    "bool": "boolean",
    "array": "array",
    "list": "array",
    "dict": "object",
    "object": "object",
    "tuple": "array",
    "any": "string",
    "byte": "integer",
    "short": "integer",
    "long": "integer",
    "double": "number",
    "char": "string",
    "ArrayList": "array",
    "Array": "array",
    "HashMap": "object",
    "Hashtable": "object",
    "Queue": "array",
    "Stack": "array",
    "Any": "string",
    "String": "string",
    "Bigint": "integer",
}

LANGUAGE_NOTES = {"python": " Note that the provided function is in Python 3 syntax."}
_FLOAT_NOTE = " This is a float type value."


def openai_tools(functions: Sequence[Mapping[str, Any]], language: str = "python") -> list[dict]:
    """The `tools` list of a chat request for these function docs (a deep copy: the row keeps
    BFCL's own docs, which the checker reads)."""
    tools = []
    docs: list[dict[str, Any]] = copy.deepcopy([dict(doc) for doc in functions])
    for doc in docs:
        doc["description"] = doc.get("description", "") + LANGUAGE_NOTES[language]
        doc["name"] = tool_name(doc["name"])
        doc["parameters"]["type"] = "object"
        _to_schema(doc["parameters"]["properties"])
        tools.append({"type": "function", "function": doc})
    return tools


def tools_json(functions: Sequence[Mapping[str, Any]], language: str = "python") -> str:
    """`openai_tools` as the JSON text a request carries (and is keyed by), in the docs' own
    key order, as BFCL sends them."""
    return json.dumps(openai_tools(functions, language), ensure_ascii=False)


def _schema_type(name: Any) -> str:
    return SCHEMA_TYPES.get(name, "string") if isinstance(name, str) else "string"


def _to_schema(properties: dict[str, Any]) -> None:
    """Parameter types in place, into nested objects' properties and list items (two levels of
    lists, and objects inside lists), as far as BFCL converts them."""
    for value in properties.values():
        declared = value.get("type")
        if declared == "float":
            value["format"] = "float"
            value["description"] = value.get("description", "") + _FLOAT_NOTE
        value["type"] = _schema_type(declared) if "type" in value else "string"
        if value["type"] not in ("array", "object"):
            continue
        if "properties" in value:
            _to_schema(value["properties"])
        elif "items" in value:
            items = value["items"]
            items["type"] = _schema_type(items.get("type"))
            if items["type"] == "array" and "items" in items:
                items["items"]["type"] = _schema_type(items["items"].get("type"))
            elif items["type"] == "object" and "properties" in items:
                _to_schema(items["properties"])
