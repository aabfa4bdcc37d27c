"""Reading what an OpenAI-compatible API answers: pure functions, no I/O.

Kept apart from the engine so that what a response *means* (a score, an answer and its
reasoning, a wait) can be read and tested without a server.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Sequence
from typing import Any

from gnomon.engines.base import ScoreResult
from gnomon.engines.identity import Mismatch

_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


class NoLogprobs(Exception):
    """An answer without prompt log-probabilities: one is a fault, several in a row a verdict."""


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds from now: a number of seconds or an HTTP date; None if absent or
    unreadable (then the backoff applies)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def split_thinking(text: str, reasoning: str | None = None) -> tuple[str, str | None]:
    """(answer, reasoning): `<think>` blocks move to the reasoning. An unclosed `<think>` (the
    model ran out of tokens while thinking) leaves no answer at all."""
    parts = [reasoning] if reasoning else []
    parts += [m.strip() for m in _THINK.findall(text)]
    answer = _THINK.sub("", text)
    if "<think>" in answer:
        answer, _, rest = answer.partition("<think>")
        parts.append(rest.strip())
    elif "</think>" in answer:  # templates that open the block in the prompt
        before, _, answer = answer.rpartition("</think>")
        parts.append(before.strip())
    joined = "\n".join(p for p in parts if p)
    return answer.strip() if joined else answer, joined or None


def opens_thinking(prompt: str) -> bool:
    """Whether a rendered prompt leaves the model inside a `<think>` block: reasoning models'
    chat templates end the generation prompt with it (DeepSeek-R1's, QwQ's). The answer then
    begins as thinking, and one cut before `</think>` holds no answer. Only a prompt that ends
    so counts: a `<think>` earlier in a row's text opens nothing."""
    return prompt.rstrip().endswith(THINK_OPEN)


def answer_part(text: str) -> str:
    """The answer `split_thinking` finds in a text still being generated, before its
    stripping: what follows the thinking, where a stop string would end it."""
    answer = _THINK.sub("", text)
    if "<think>" in answer:
        return answer.partition("<think>")[0]
    return answer.rpartition("</think>")[2]


def cut(text: str, until: Sequence[str]) -> str:
    """Cut at the earliest occurrence of any stop string."""
    at = min((text.index(s) for s in until if s and s in text), default=len(text))
    return text[:at]


def read_score(data: dict[str, Any], prompt: str, split: int) -> ScoreResult:
    """Sum the log-probabilities of tokens with `split <= text_offset < len(prompt)` (the end
    excludes a token generated when the server needed max_tokens >= 1). An empty context is
    conditioned on what the server puts first (BOS for most tokenizers), as lm-evaluation-harness
    does. The echoed text must be this prompt: the offsets are positions in it, and an answer
    that echoes another prompt belongs to another request."""
    choice = data["choices"][0]
    logprobs = choice.get("logprobs")
    if not logprobs or not logprobs.get("token_logprobs") or not logprobs.get("text_offset"):
        raise NoLogprobs("an answer without prompt logprobs")
    echoed = choice.get("text")
    if not isinstance(echoed, str) or not echoed.startswith(prompt):
        raise Mismatch("the echoed text is not this request's prompt")
    end = len(prompt)
    tokens = logprobs["tokens"]
    values = logprobs["token_logprobs"]
    tops = logprobs.get("top_logprobs") or [None] * len(tokens)
    offsets = logprobs["text_offset"]
    total, greedy, count = 0.0, True, 0
    rows = zip(tokens, values, tops, offsets, strict=True)
    for i, (token, value, top, offset) in enumerate(rows):
        if offset < split or offset >= end:
            continue
        if value is None and i == 0:  # the first prompt token (BOS) has none: an empty context
            continue
        if value is None:
            raise ValueError("a continuation token has no logprob")
        total += float(value)
        count += 1
        if not top or max(top.items(), key=lambda kv: kv[1])[0] != token:
            greedy = False
    if not count:
        raise ValueError("no continuation tokens in the echoed prompt")
    return ScoreResult(total, greedy)
