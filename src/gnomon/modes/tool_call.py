"""Tool calling (`mode: tool_call`): the model answers a conversation given OpenAI `tools`, and
its calls are checked as the Berkeley Function Calling Leaderboard checks them.

With `tools.interface: prompt` the functions go into BFCL's system prompt instead, and the
calls are read from the text as Python, as BFCL runs models without function calling.

The functions, the conversation and the possible answers come from the row through
`prompt.solution` (JSON text), so they are part of the sample's content hash. The request is a
conversation with tools: a served model gets them through its chat API (`--chat-api`), a local
one through its chat template's tool format, whose calls the engine reads back from the text
(`engines/tool_calls.py`). The checker is BFCL's (`gnomon.scoring.bfcl`); a call whose
arguments are not JSON is wrong (right for irrelevance: no call was made), and every result
keeps the raw calls as the model wrote them.
"""

from __future__ import annotations

import json
from typing import Any

from gnomon.engines.base import GenerateRequest, GenerateResult, Message
from gnomon.errors import UserError
from gnomon.hub.spec import BenchmarkSpec, ToolCalling
from gnomon.modes.base import Mode
from gnomon.prompts import Sample
from gnomon.scoring.bfcl import decode_calls, judge_decoded, tools_json
from gnomon.scoring.bfcl.prompting import decode_python_calls, with_system_prompt


class ToolCallMode(Mode):
    verb = "generate"
    scorer_version = 1

    def __init__(self, spec: BenchmarkSpec) -> None:
        super().__init__(spec)
        assert spec.generation is not None and spec.tools is not None  # spec validation
        self.generation = spec.generation
        self.tools: ToolCalling = spec.tools

    def requests(self, sample: Sample) -> list[GenerateRequest]:
        payload = _payload(sample)
        if self.tools.checker == "ast" and not isinstance(payload.get("answers"), list):
            raise UserError(f"{sample.origin}: the ast checker needs the possible `answers`")
        if not payload["messages"]:
            raise UserError(f"{sample.origin}: the row's conversation is empty")
        for item in payload["messages"]:
            _message(sample, item)  # each checked before anything is sent
        functions = payload["functions"]
        turns = payload["messages"]
        tools = None
        if self.tools.interface == "prompt":
            turns = with_system_prompt(turns, functions, self.tools.language)
        elif functions:  # a row may give no functions at all (BFCL then sends no `tools`)
            tools = tools_json(functions, self.tools.language)
        messages = tuple(_message(sample, m) for m in turns)
        flat = "\n\n".join(m.content for m in messages)  # for engines that read plain text
        g = self.generation
        return [GenerateRequest(flat, tuple(g.until), g.max_tokens, messages=messages, tools=tools)]

    def result(self, sample: Sample, answers: list[Any]) -> dict[str, Any]:
        answer: GenerateResult = answers[-1]
        payload = _payload(sample)
        prompted = self.tools.interface == "prompt"
        decoded = decode_python_calls(answer.text) if prompted else decode_calls(answer.tool_calls)
        verdict = judge_decoded(
            self.tools.checker,
            decoded,
            functions=payload["functions"],
            answers=payload.get("answers") or (),
            category=self.tools.category or "",
            underscored=not prompted,
        )
        if decoded.error:
            source = "undecodable" if prompted else "invalid_arguments"
        elif decoded.calls:
            source = "tool_calls"
        else:  # no call: the right answer to an irrelevant question, else no answer
            source = "no_call" if self.tools.checker == "irrelevance" else "none"
        prediction = (
            json.dumps(decoded.as_bfcl(), ensure_ascii=False, default=repr)
            if decoded.calls
            else answer.text
        )
        return {
            "prediction": prediction,
            "target": sample.target,
            "correct": verdict.valid,
            "metrics": {"accuracy": float(verdict.valid)},
            "output": answer.text,
            "tool_calls": [{"name": c.name, "arguments": c.arguments} for c in answer.tool_calls],
            "error": verdict.reason,
            "extractor": source,
            "truncated": answer.truncated,
        }

    def settings(self) -> dict[str, Any]:
        return {"greedy": True, **self.generation.model_dump()}

    def scorer_config(self) -> dict[str, Any]:
        return super().scorer_config() | {"tools": self.tools.model_dump()}

    def scored_by(self) -> str:
        return "answered by tool calls"


def _payload(sample: Sample) -> dict[str, Any]:
    try:
        payload = json.loads(sample.solution or "")
    except ValueError:
        payload = None
    if (
        not isinstance(payload, dict)
        or not isinstance(payload.get("functions"), list)
        or not isinstance(payload.get("messages"), list)
    ):
        raise UserError(
            f"{sample.origin}: `prompt.solution` must give a JSON object with `functions` and "
            "`messages` lists (and `answers` for the ast checker)"
        )
    return payload


def _message(sample: Sample, item: Any) -> Message:
    if (
        not isinstance(item, dict)
        or not isinstance(item.get("role"), str)
        or not isinstance(item.get("content"), str)
    ):
        raise UserError(f"{sample.origin}: a message must have a `role` and a text `content`")
    return Message(item["role"], item["content"])
