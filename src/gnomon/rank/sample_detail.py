"""What a judged or tool-use sample's score rests on, laid out for a reader: each turn's question
and answer, each judge reply beside the verdict read from it (and the order the answers were
shown in), the tool calls as the model wrote them. Shared by the sample pages and
`gnomon runs show`, so both show the same account of a score."""

from __future__ import annotations

import json
from typing import Any

ORDERS = ("model as A, baseline as B", "baseline as A, model as B")
RAW_REPLIES = "; raw replies: "  # how a failed judgment's reason lists its replies (JSON strings)


def turns(prompt: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """A conversation's turns (question, answer); [] for a one-turn sample. The first question
    is the prompt the model was sent; a later one is shown where the result kept it."""
    outputs = payload.get("turn_outputs")
    if not isinstance(outputs, list) or not outputs:
        return []
    asked = payload.get("turn_questions")
    questions = list(asked) if isinstance(asked, list) else [prompt]
    return [
        {
            "turn": i,
            "question": _text(questions[i - 1]) if i <= len(questions) else None,
            "answer": _text(answer),
        }
        for i, answer in enumerate(outputs, 1)
    ]


def judgments(payload: dict[str, Any], judge: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One entry per judge request, in the order judged mode asks them (each judged turn, each
    repeat, for pairwise both orders): the raw reply, the verdict read from it, the unreadable
    replies that were asked again before it, and which turn and order it judged."""
    replies = payload.get("judge_replies")
    if not isinstance(replies, list):
        return []
    verdicts = payload.get("verdicts")
    verdicts = verdicts if isinstance(verdicts, list) else []
    retries = payload.get("judge_retries")
    retries = retries if isinstance(retries, dict) else {}
    judge = judge or {}
    pairwise = judge.get("verdict") == "pairwise"
    per_order = 2 if pairwise else 1
    per_turn = max(1, int(judge.get("samples") or 1)) * per_order
    out = []
    for i, reply in enumerate(replies):
        where = []
        if judge.get("per_turn"):
            where.append(f"turn {i // per_turn + 1}")
        if per_turn > per_order:
            where.append(f"repeat {i % per_turn // per_order + 1}")
        if pairwise:
            where.append(ORDERS[i % 2])
        earlier = retries.get(str(i)) or []
        out.append(
            {
                "index": i + 1,
                "where": ", ".join(where),
                "reply": _text(reply),
                "verdict": _text(verdicts[i]) if i < len(verdicts) else None,
                "retries": [_text(t) for t in earlier],
            }
        )
    return out


def tool_calls(payload: dict[str, Any]) -> list[dict[str, str]] | None:
    """The calls as the model wrote them (arguments as their raw text, unparsed: a call whose
    arguments are no JSON is shown as sent); None where the benchmark asks for no calls."""
    calls = payload.get("tool_calls")
    if not isinstance(calls, list):
        return None
    return [
        {"name": _text(c.get("name")), "arguments": _text(c.get("arguments"))}
        for c in calls
        if isinstance(c, dict)
    ]


def failure(reason: str) -> dict[str, Any]:
    """A failed sample's reason, with a failed judgment's raw replies taken out of their JSON
    quoting (each shown as the judge wrote it, newlines and all); a reason in another form is
    shown whole."""
    head, sep, tail = reason.partition(RAW_REPLIES)
    if not sep:
        return {"reason": reason, "replies": []}
    decoder, replies, at = json.JSONDecoder(), [], 0
    try:
        while at < len(tail):
            reply, at = decoder.raw_decode(tail, at)
            if not isinstance(reply, str):
                raise ValueError("not a reply")
            replies.append(reply)
            if tail.startswith(" | ", at):
                at += 3
            elif at < len(tail):
                raise ValueError("not a list of replies")
    except ValueError:
        return {"reason": reason, "replies": []}
    return {"reason": head, "replies": replies}


def _text(value: Any) -> str:
    """Stored text as text; anything else (a rating, a label) in its plain form, a whole rating
    stored as a float (8.0) as the judge wrote it (8)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value if isinstance(value, str) else str(value)
