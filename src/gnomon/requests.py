"""Requests and answers as stored: a request's key, and an answer's JSON form and back.

An answer is keyed by the model and the exact request sent, every field of it: the text or the
conversation, the tools, the stop sequences, the token limit, the temperature and seed. Two
requests that differ in anything an engine sees (a completions prompt and the same words sent
as a chat message, say) can never share an answer.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from typing import Any

from gnomon import text
from gnomon.engines.base import (
    GenerateRequest,
    GenerateResult,
    Message,
    RollingRequest,
    ScoreRequest,
    ScoreResult,
    ToolCall,
)

Request = ScoreRequest | GenerateRequest | RollingRequest
Answer = ScoreResult | GenerateResult

_KEY_VERSION = 1  # bump only if the canonical form below changes


def kind_of(request: Request) -> str:
    if isinstance(request, RollingRequest):
        return "rolling"
    return "score" if isinstance(request, ScoreRequest) else "generate"


def request_key(model_key: str, request: Request) -> str:
    """Every field, by name. A loglikelihood request (the bulk of most runs: one per choice)
    takes a fast path with the same canonical form as the general one: its context's part of
    the form is hashed once for all of a question's choices (`_score_head`)."""
    if isinstance(request, ScoreRequest):
        digest = _score_head(model_key, request.context).copy()
        digest.update(text.encode(json.dumps(request.continuation, ensure_ascii=False) + "}]"))
        return digest.hexdigest()
    return canonical_key(model_key, request)


def canonical_key(model_key: str, request: Request) -> str:
    """The key's definition: SHA-256 of the JSON list [version, model, kind, fields]."""
    if isinstance(request, ScoreRequest):
        fields: dict[str, Any] = {"context": request.context, "continuation": request.continuation}
    elif isinstance(request, RollingRequest):
        fields = {"text": request.text}
    else:
        fields = dataclasses.asdict(request)
        # equal requests, one key: 0 and 0.0 (and -0.0) are the same temperature, not the same JSON
        fields["temperature"] = float(request.temperature) + 0.0
    blob = json.dumps(
        [_KEY_VERSION, model_key, kind_of(request), fields], sort_keys=True, ensure_ascii=False
    )
    return hashlib.sha256(text.encode(blob)).hexdigest()


@functools.lru_cache(maxsize=64)
def _score_head(model_key: str, context: str) -> Any:
    """The hash state of a score request's canonical form up to its continuation's value (keys
    sort "context" before "continuation"), so the long context is hashed once per question."""
    form = json.dumps(
        [_KEY_VERSION, model_key, "score", {"context": context, "continuation": ""}],
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(text.encode(form[: -len('""}]')]))


def answer_json(answer: Answer) -> str:
    if isinstance(answer, ScoreResult):  # most answers: one per choice
        return json.dumps(
            {
                "logprob": answer.logprob,
                "is_greedy": answer.is_greedy,
                "truncated": answer.truncated,
            }
        )
    data = dataclasses.asdict(answer)
    if isinstance(answer, GenerateResult):  # leave out what is unset: most answers are short
        data = {k: v for k, v in data.items() if v not in (None, (), [])}
    return json.dumps(data, ensure_ascii=False)


def answer_from_json(kind: str, blob: str) -> Answer:
    data: dict[str, Any] = json.loads(blob)
    if kind in ("score", "rolling"):
        return ScoreResult(float(data["logprob"]), bool(data["is_greedy"]), bool(data["truncated"]))
    calls = tuple(ToolCall(**c) for c in data.pop("tool_calls", ()))
    return GenerateResult(**data, tool_calls=calls)


def as_chat(request: GenerateRequest, system: str | None = None) -> GenerateRequest:
    """The request a chat API is sent: the prompt as the user's message (after an optional
    system message), unless the request already is a conversation."""
    if request.messages is not None:
        return request
    turns = (Message("system", system),) if system else ()
    return dataclasses.replace(request, messages=(*turns, Message("user", request.context)))


def shown(request: Request) -> str:
    """The request as a person reads it in a sample browser: the prompt, or the conversation
    with each turn under its role."""
    if isinstance(request, ScoreRequest):
        return request.context
    if isinstance(request, RollingRequest):
        return request.text
    if request.messages is None:
        return request.context
    parts = []
    for m in request.messages:
        calls = "".join(f"\n[tool call] {c.name}({c.arguments})" for c in m.tool_calls)
        parts.append(f"[{m.role}]\n{m.content}{calls}")
    return "\n\n".join(parts)
