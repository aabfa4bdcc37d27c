"""Conversations for a local model: rendered by the model's own chat template.

The template decides how turns, tool definitions and earlier tool calls become text; gnomon only
hands it the conversation in the shape transformers documents for templates (an assistant turn's
calls under `tool_calls` with their arguments as an object, a tool turn with its call's id).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from gnomon.engines.base import Message, ToolCall, chat_turn
from gnomon.errors import UserError
from gnomon.text import shown


class NotRendered(ValueError):
    """This conversation cannot be rendered (a template that refuses it, tools it ignores)."""


def template_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    return [chat_turn(m, shown(m.content), _template_call) for m in messages]


def _template_call(call: ToolCall) -> dict[str, Any]:
    """Templates write `arguments | tojson`: arguments that are JSON go in as the value they
    spell (else a template would print them as a quoted string); others as the text itself."""
    try:
        arguments: Any = json.loads(call.arguments)
    except ValueError:
        arguments = call.arguments
    item: dict[str, Any] = {"type": "function", "function": {"name": call.name}}
    item["function"]["arguments"] = arguments
    if call.id is not None:
        item["id"] = call.id
    return item


def render(tokenizer: Any, name: str, messages: Sequence[Message], tools: str | None) -> str:
    """The prompt text for `messages`, ending where the assistant's answer starts.

    A model without a chat template is the user's error for the whole run (`UserError`); a
    conversation or tool list this template cannot take fails that request alone (`NotRendered`),
    and so do tools the template silently drops, since the model would never see them."""
    if not getattr(tokenizer, "chat_template", None):
        raise UserError(
            f"{name}: the tokenizer has no chat template, so it cannot take a conversation; "
            "use a chat model or give prompts as plain text"
        )
    tool_list = None
    if tools is not None:
        try:
            tool_list = json.loads(tools)
        except ValueError as exc:
            raise NotRendered(f"the request's tools are not JSON: {exc}") from None
        if not isinstance(tool_list, list):
            raise NotRendered("the request's tools are not a JSON list")
    turns = template_messages(messages)
    prompt = _apply(tokenizer, turns, tool_list)
    if tool_list and prompt == _apply(tokenizer, turns, None):
        raise NotRendered("the model's chat template ignores tools; the model would not see them")
    return prompt


def _apply(tokenizer: Any, turns: list[dict[str, Any]], tools: list[Any] | None) -> str:
    try:
        prompt = tokenizer.apply_chat_template(
            turns, tools=tools, add_generation_prompt=True, tokenize=False
        )
    except Exception as exc:  # jinja errors, raise_exception() in templates, bad shapes
        message = str(exc).strip().splitlines()
        detail = f": {message[0][:200]}" if message else ""
        raise NotRendered(
            f"the chat template cannot render this conversation ({type(exc).__name__}{detail})"
        ) from None
    if not isinstance(prompt, str):
        raise NotRendered("the chat template did not render text")
    return prompt
