"""Requests and answers in the OpenAI wire format: pure functions, no I/O.

Kept apart from the engine (which owns sending, retrying and pacing) so that what is sent for a
request, and what an answer means, can be read and tested on their own.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gnomon.engines.answers import NoLogprobs, cut, read_score, split_thinking
from gnomon.engines.base import (
    GenerateRequest,
    GenerateResult,
    Message,
    ScoreRequest,
    ScoreResult,
    ToolCall,
    chat_turn,
)
from gnomon.engines.identity import Mismatch

MAX_STOP = 4  # OpenAI's limit on `stop`; further stop strings are applied client-side


class NotSendable(ValueError):
    """A request this endpoint cannot take as it stands; the request's fault, not the server's."""


class NotAList(Exception):
    """The server answered a list of prompts, but not with one choice per prompt."""


# ----------------------------------------------------------------------------- scoring
@dataclass(frozen=True)
class ScorePrompt:
    """What is sent for a score request, and where in it the continuation starts."""

    prompt: str
    split: int

    @staticmethod
    def of(request: ScoreRequest) -> ScorePrompt:
        context = request.context
        split = len(context.rstrip()) if context.strip() else 0
        return ScorePrompt(context + request.continuation, split)


def score_body(model: str, prompts: Sequence[str], max_tokens: int) -> dict[str, Any]:
    """Echoed prompt log-probabilities: a plain string for one prompt, a list for several."""
    return {
        "model": model,
        "prompt": prompts[0] if len(prompts) == 1 else list(prompts),
        "echo": True,
        "max_tokens": max_tokens,
        "logprobs": 1,
        "temperature": 0,
    }


def read_scores(data: dict[str, Any], group: Sequence[ScorePrompt]) -> list[ScoreResult]:
    """The scores in an answer to `score_body`, in the order of `group` (see `read_score`)."""
    choices = data["choices"]
    if len(group) > 1:
        choices = choices_in_order(choices, [s.prompt for s in group])
    return [
        read_score({"choices": [choice]}, s.prompt, s.split)
        for choice, s in zip(choices[: len(group)], group, strict=True)
    ]


def choices_in_order(choices: Any, prompts: list[str]) -> list[Any]:
    """A list request's choices in the order of its prompts: by `index`, or as given where no
    choice has one. An answer with not one choice per prompt that echoes our prompts comes from
    a server that does not take lists (`NotAList`); one that echoes none belongs to another
    request (`Mismatch`, retried), unless it has no log-probabilities at all (`NoLogprobs`)."""
    if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
        raise TypeError("choices is not a list of objects")
    indices = [c.get("index") for c in choices]
    if all(isinstance(i, int) and not isinstance(i, bool) for i in indices):
        if sorted(indices) == list(range(len(prompts))):
            return [c for _, c in sorted(zip(indices, choices, strict=True), key=lambda x: x[0])]
    elif len(choices) == len(prompts) and all(i is None for i in indices):
        return choices
    if not any((c.get("logprobs") or {}).get("token_logprobs") for c in choices):
        raise NoLogprobs("an answer without prompt logprobs")
    texts = [c.get("text") for c in choices]
    if any(isinstance(t, str) and any(t.startswith(p) for p in prompts) for t in texts):
        raise NotAList(f"{len(choices)} choices for a list of {len(prompts)} prompts")
    raise Mismatch("the answer's choices are not this request's prompts")


# ----------------------------------------------------------------------------- generation


def wire_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """A conversation as `messages`: an assistant turn's calls in `tool_calls` (arguments as JSON
    text, content null when the turn only calls tools), a tool turn with its `tool_call_id`."""
    return [
        chat_turn(m, (m.content or None) if m.tool_calls else m.content, _wire_call)
        for m in messages
    ]


def _wire_call(call: ToolCall) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "function"}
    if call.id is not None:
        item["id"] = call.id
    item["function"] = {"name": call.name, "arguments": call.arguments}
    return item


def generation_body(request: GenerateRequest, model: str, chat: bool) -> tuple[str, dict[str, Any]]:
    """(path, body) for one generation. Chat sends the conversation (or the context as one user
    turn) and every stop string is cut client-side, after thinking is taken out; completions
    sends the first `MAX_STOP` stop strings and takes only plain text."""
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "seed": request.seed,
    }
    if not chat:
        if request.messages is not None or request.tools is not None:
            raise NotSendable(
                "the completions endpoint cannot take a conversation or tools; "
                "use the chat endpoint (--chat-api)"
            )
        body["prompt"] = request.context
        until = [s for s in request.until if s]
        if until:
            body["stop"] = until[:MAX_STOP]
        return "/completions", body
    if request.messages is not None:
        body["messages"] = wire_messages(request.messages)
    else:
        body["messages"] = [{"role": "user", "content": request.context}]
    if request.tools is not None:
        try:
            tools = json.loads(request.tools)
        except ValueError as exc:
            raise NotSendable(f"the request's tools are not JSON: {exc}") from None
        if not isinstance(tools, list):
            raise NotSendable("the request's tools are not a JSON list")
        body["tools"] = tools
    return "/chat/completions", body


def request_text(request: GenerateRequest) -> str:
    """Everything the prompt is made of, for estimating its tokens."""
    if request.messages is None:
        return request.context
    parts = [m.content for m in request.messages]
    parts += [c.name + c.arguments for m in request.messages for c in m.tool_calls]
    return "".join(parts) + (request.tools or "")


def read_generation(data: dict[str, Any], until: Sequence[str], chat: bool) -> GenerateResult:
    """The answer in a response body. A body that does not read (a missing field, a wrong type)
    raises KeyError/TypeError/ValueError, which the engine treats as malformed and retries.

    A chat answer that only calls tools (content null or empty) is a full answer."""
    choice = data["choices"][0]
    calls: tuple[ToolCall, ...] = ()
    if chat:
        message = choice["message"]
        text = message.get("content") or ""
        reasoning = message.get("reasoning_content") or message.get("reasoning")
        calls = read_tool_calls(message)
    else:
        text, reasoning = choice["text"], None
    if not isinstance(text, str):
        raise TypeError("text is not a string")
    if reasoning is not None and not isinstance(reasoning, str):
        raise TypeError("reasoning is not a string")
    answer, thought = split_thinking(text, reasoning)
    usage = data.get("usage") or {}
    finish = choice.get("finish_reason")
    return GenerateResult(
        cut(answer, until),
        reasoning=thought,
        finish_reason=finish if isinstance(finish, str) else None,
        prompt_tokens=_count(usage.get("prompt_tokens")),
        completion_tokens=_count(usage.get("completion_tokens")),
        tool_calls=calls,
    )


def read_tool_calls(message: dict[str, Any]) -> tuple[ToolCall, ...]:
    """`tool_calls` (or the older single `function_call`). Arguments are kept as the text sent;
    a server that sends them as an object gets them back as compact JSON text."""
    raw = message.get("tool_calls")
    if raw is None and message.get("function_call") is not None:
        raw = [{"function": message["function_call"]}]
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise TypeError("tool_calls is not a list")
    calls = []
    for item in raw:
        function = item["function"]
        name, arguments = function["name"], function.get("arguments", "")
        if not isinstance(name, str):
            raise TypeError("a tool call's name is not a string")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))
        call_id = item.get("id")
        calls.append(ToolCall(name, arguments, call_id if isinstance(call_id, str) else None))
    return tuple(calls)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
