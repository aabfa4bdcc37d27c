"""Conversations, tools and tool calls through both engines, and seeds that ignore batching.

The OpenAI engine talks to a scripted server on loopback that checks the exact payload it was
sent; the HF engine runs a tiny Llama taught (a second of training, here) to call a tool and to
answer from the conversation, rendered by a tool-aware chat template written below.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from loopback import chat_app, running
from test_openai_engine import FAST, collect

from gnomon.engines.base import (
    FailedResult,
    GenerateRequest,
    GenerateResult,
    Message,
    ToolCall,
)
from gnomon.engines.hf import HFEngine
from gnomon.engines.openai import OpenAIEngine
from gnomon.engines.openai_wire import read_generation
from gnomon.engines.tool_calls import parse_tool_calls
from gnomon.errors import UserError

_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
TOOLS_JSON = json.dumps(_TOOLS, sort_keys=True, separators=(",", ":"))  # as a request holds it
TOOLS = json.loads(TOOLS_JSON)  # in the order the template sees

# Hermes-style: tool definitions as JSON lines, calls in <tool_call> blocks with their arguments
# written by `tojson` (so they must reach the template as an object, not as a string)
TOOL_TEMPLATE = (
    "{%- if tools %}<|system|>Tools:{% for t in tools %}{{ '\\n' + (t | tojson) }}{% endfor %}"
    "{{ '\\n' }}{% endif %}"
    "{%- for m in messages %}"
    "{%- if m.role == 'assistant' and m.tool_calls %}<|assistant|>{{ m.content }}"
    "{%- for c in m.tool_calls %}<tool_call>{{ '\\n' }}"
    '{"name": "{{ c.function.name }}", "arguments": {{ c.function.arguments | tojson }}}'
    "{{ '\\n' }}</tool_call>{% endfor %}{{ '\\n' }}"
    "{%- elif m.role == 'tool' %}<|tool|>{{ m.content }}{{ '\\n' }}"
    "{%- else %}<|{{ m.role }}|>{{ m.content }}{{ '\\n' }}{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}<|assistant|>{% endif %}"
)
ASK = Message("user", "What is the weather in Paris?")
CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
COLOUR, AGAIN = Message("user", "Name a colour."), Message("user", "Again?")


def _with_template(src: Path, dst: Path, template: str) -> Path:
    shutil.copytree(src, dst)
    path = dst / "tokenizer_config.json"
    config = json.loads(path.read_text())
    config["chat_template"] = template
    path.write_text(json.dumps(config))
    return dst


def _teach(model_dir: Path, lessons: list[tuple[list[dict], list[dict] | None, str]]) -> None:
    """Train the tiny model until it has learnt each (conversation, tools) -> answer by heart.
    The conversations are rendered by transformers' own `apply_chat_template`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    rows = []
    for messages, tools, answer in lessons:
        prompt = tokenizer.apply_chat_template(
            messages, tools=tools, add_generation_prompt=True, tokenize=False
        )
        ids = tokenizer.encode(prompt)
        target = tokenizer.encode(answer + tokenizer.eos_token, add_special_tokens=False)
        rows.append((torch.tensor([ids + target]), torch.tensor([[-100] * len(ids) + target])))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
        model.train()
        for _ in range(400):
            losses = []
            for ids, labels in rows:
                loss = model(input_ids=ids, labels=labels).loss
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                losses.append(loss.item())
            if max(losses) < 0.005:
                break
    assert max(losses) < 0.05, losses
    model.save_pretrained(model_dir)


def _turn(message: Message) -> dict[str, Any]:
    return {"role": message.role, "content": message.content}


@pytest.fixture(scope="module")
def taught(llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Llama with `TOOL_TEMPLATE`, taught to call get_weather and to answer from the
    tool's result, and to repeat whichever colour it named in its previous turn."""
    model = _with_template(llama_dir, tmp_path_factory.mktemp("taught") / "m", TOOL_TEMPLATE)
    call = {"type": "function", "function": {"name": "get_weather"}}
    call["function"]["arguments"] = {"city": "Paris"}
    called = {"role": "assistant", "content": "", "tool_calls": [call]}
    _teach(
        model,
        [
            ([_turn(ASK)], TOOLS, CALL),
            ([_turn(ASK), called, {"role": "tool", "content": "sunny"}], TOOLS, "It is sunny."),
            ([_turn(COLOUR)], None, "Blue."),
            ([_turn(COLOUR), {"role": "assistant", "content": "Blue."}, _turn(AGAIN)], None,
             "Blue again."),
            ([_turn(COLOUR), {"role": "assistant", "content": "Red."}, _turn(AGAIN)], None,
             "Red again."),
        ],
    )  # fmt: skip
    return model


@pytest.fixture(scope="module")
def engine(taught: Path) -> HFEngine:
    return HFEngine(str(taught), device="cpu", dtype="float32", batch_size=4)


def _one(engine: Any, request: GenerateRequest) -> Any:
    return collect(engine.generate([request]), 1)[0]


def _chat(messages: list[Message], max_tokens: int = 40, tools: str | None = None) -> Any:
    return GenerateRequest("", (), max_tokens, messages=tuple(messages), tools=tools)


# ----------------------------------------------------------------------------- parsing calls
def test_tool_calls_are_read_from_text() -> None:
    text, calls = parse_tool_calls(
        'Let me check.\n<tool_call>\n{"name": "f", "arguments": {"b": 1,  "a": [2]}}\n</tool_call>'
        '<tool_call>{"name": "g", "parameters": {}}</tool_call>'
    )
    assert text == "Let me check."
    assert [(c.name, c.arguments) for c in calls] == [("f", '{"b": 1,  "a": [2]}'), ("g", "{}")]
    assert len({c.id for c in calls}) == 2 and all(c.id for c in calls)
    assert parse_tool_calls('{"name": "f", "parameters": {"x": "y"}}')[1][0].arguments == (
        '{"x": "y"}'
    )
    assert (
        parse_tool_calls('```json\n{"name": "f", "arguments": "{\\"x\\": 1}"}\n```')[1]
        == (parse_tool_calls('{"name": "f", "arguments": "{\\"x\\": 1}"}')[1])
    )
    assert parse_tool_calls('{"name": "f", "arguments": "{\\"x\\": 1}"}')[1][0].arguments == (
        '{"x": 1}'
    )
    listed = parse_tool_calls('[{"name": "f", "arguments": {}}, {"name": "g", "arguments": {}}]')
    assert listed[0] == "" and [c.name for c in listed[1]] == ["f", "g"]
    # an unclosed block at the end (stopped at </tool_call>, or out of tokens) is still a call
    assert parse_tool_calls('<tool_call>{"name": "f", "arguments": {}}')[1][0].name == "f"
    for not_a_call in (
        '{"answer": 4}',
        '{"name": "f"}',
        "<tool_call>{not json}</tool_call>",
        '{"name": "f", "arguments": {}} and more',
        "[]",
        '[{"name": "f", "arguments": {}}, 3]',
        "The answer is 4.",
    ):
        assert parse_tool_calls(not_a_call) == (not_a_call, ()), not_a_call


def test_openai_answers_read_calls_in_every_shape() -> None:
    data = {
        "choices": [
            {
                "message": {
                    "content": None,
                    "tool_calls": [
                        {"id": "c1", "type": "function",
                         "function": {"name": "f", "arguments": {"x": 1}}},
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16},
    }  # fmt: skip
    assert read_generation(data, (), chat=True) == GenerateResult(
        "",
        finish_reason="tool_calls",
        prompt_tokens=11,
        completion_tokens=5,
        tool_calls=(ToolCall("f", '{"x":1}', "c1"),),
    )
    legacy = {"choices": [{"message": {"function_call": {"name": "g", "arguments": "{}"}}}]}
    assert read_generation(legacy, (), chat=True).tool_calls == (ToolCall("g", "{}"),)
    for broken in ({"tool_calls": {"name": "f"}}, {"tool_calls": [{"function": {"name": 3}}]}):
        with pytest.raises((KeyError, TypeError)):
            read_generation({"choices": [{"message": broken}]}, (), chat=True)


# ----------------------------------------------------------------------------- OpenAI wire
class ScriptedChat:
    """A chat server that keeps every body it is sent and answers from the conversation: a
    question gets a tool call (content null), a tool result gets an answer naming the city of
    the earlier call, and an earlier assistant text is quoted back."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.broken = 0  # answers to send with malformed tool calls first

    def app(self) -> Any:
        return chat_app(
            lambda body: self.answer(body["messages"]), ("scripted",), bodies=self.bodies
        )

    def answer(self, messages: list[dict]) -> dict:
        last = messages[-1]
        finish, message = "stop", {"role": "assistant"}
        if last["role"] == "tool":
            call = messages[-2]["tool_calls"][0]
            city = json.loads(call["function"]["arguments"])["city"]
            message["content"] = f"{last['content']} in {city} ({last['tool_call_id']})"
        elif any(m["role"] == "assistant" for m in messages):
            said = [m["content"] for m in messages if m["role"] == "assistant"][-1]
            message["content"] = f"you said {said}"
        else:
            arguments = '{"city": "Paris"}'
            function = {"name": "get_weather", "arguments": arguments}
            if self.broken:
                self.broken -= 1
                function = {"arguments": arguments}  # no name: malformed
            finish, message["content"] = "tool_calls", None
            message["tool_calls"] = [{"id": "call_9", "type": "function", "function": function}]
        usage = {"prompt_tokens": 20 + len(messages), "completion_tokens": 7}
        return {**message, "finish_reason": finish, "usage": usage}


def test_openai_sends_conversation_and_tools_and_reads_calls() -> None:
    server = ScriptedChat()
    server.broken = 1
    with running(server.app()) as url:
        engine = OpenAIEngine("scripted", url, mode="chat", **FAST)
        first = _one(engine, _chat([Message("system", "Be brief."), ASK], 30, TOOLS_JSON))
        assert first == GenerateResult(
            "",
            finish_reason="tool_calls",
            prompt_tokens=22,
            completion_tokens=7,
            tool_calls=(ToolCall("get_weather", '{"city": "Paris"}', "call_9"),),
        )
        assert len(server.bodies) == 2  # the malformed answer was retried, not kept
        turn2 = [
            Message("system", "Be brief."),
            ASK,
            Message("assistant", first.text, tool_calls=first.tool_calls),
            Message("tool", "sunny", tool_call_id=first.tool_calls[0].id, name="get_weather"),
        ]
        second = _one(engine, _chat(turn2, 30, TOOLS_JSON))
    assert second.text == "sunny in Paris (call_9)" and second.finish_reason == "stop"
    assert second.tool_calls == ()
    assert server.bodies[-1] == {
        "model": "scripted",
        "max_tokens": 30,
        "temperature": 0.0,
        "seed": 0,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is the weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"type": "function", "id": "call_9",
                 "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
            ]},
            {"role": "tool", "content": "sunny", "tool_call_id": "call_9", "name": "get_weather"},
        ],
        "tools": TOOLS,
    }  # fmt: skip
    assert server.bodies[0]["messages"][:2] == server.bodies[-1]["messages"][:2]


def test_openai_second_turn_carries_the_first_answer() -> None:
    server = ScriptedChat()
    with running(server.app()) as url:
        engine = OpenAIEngine("scripted", url, mode="chat", **FAST)
        history = [Message("user", "hi"), Message("assistant", "Blue."), AGAIN]
        got = _one(engine, _chat(history, 5))
    assert got.text == "you said Blue." and got.tool_calls == ()
    assert server.bodies[0]["messages"] == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "Again?"},
    ]
    assert "tools" not in server.bodies[0]


def test_completions_mode_refuses_a_conversation_without_sending_it() -> None:
    server = ScriptedChat()
    with running(server.app()) as url:
        engine = OpenAIEngine("scripted", url, **FAST)
        got = collect(
            engine.generate([_chat([ASK]), GenerateRequest("x", (), 3, tools=TOOLS_JSON)]), 2
        )
    for result in got:
        assert isinstance(result, FailedResult) and "chat endpoint" in result.reason
    assert server.bodies == []


# ----------------------------------------------------------------------------- local model
def test_hf_renders_conversation_and_tools_through_the_template(engine: HFEngine) -> None:
    call = ToolCall("get_weather", '{"city":"Paris"}', "call_1")
    messages = [ASK, Message("assistant", "", tool_calls=(call,)), Message("tool", "rain")]
    tool_line = json.dumps(TOOLS[0], ensure_ascii=False)
    written = (
        f"<|system|>Tools:\n{tool_line}\n<|user|>What is the weather in Paris?\n"
        '<|assistant|><tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n'
        "</tool_call>\n<|tool|>rain\n<|assistant|>"
    )
    by_template, by_hand = collect(
        engine.generate([_chat(messages, 6, TOOLS_JSON), GenerateRequest(written, (), 6)]), 2
    )
    assert by_template.prompt_tokens == by_hand.prompt_tokens == len(engine.encode(written))
    assert by_template.text == by_hand.text


def test_hf_calls_a_tool_then_answers_from_its_result(engine: HFEngine) -> None:
    first = _one(engine, _chat([ASK], 60, TOOLS_JSON))
    assert first.finish_reason == "tool_calls" and first.text == ""
    assert [(c.name, c.arguments) for c in first.tool_calls] == [
        ("get_weather", '{"city": "Paris"}')
    ]
    assert first.completion_tokens == len(engine.encode(CALL)) - 1 + 1  # minus BOS, plus EOS
    assert first.prompt_tokens is not None and first.prompt_tokens > 20
    reply = Message("tool", "sunny", tool_call_id=first.tool_calls[0].id)
    turn2 = [ASK, Message("assistant", first.text, tool_calls=first.tool_calls), reply]
    second = _one(engine, _chat(turn2, 60, TOOLS_JSON))
    assert second.text == "It is sunny." and second.finish_reason == "stop"
    assert second.tool_calls == ()
    # the same text without tools asked for is text, not a call
    rendered = engine.tokenizer.apply_chat_template(
        [_turn(ASK)], tools=TOOLS, add_generation_prompt=True, tokenize=False
    )
    plain = _one(engine, GenerateRequest(rendered, (), 60))
    assert plain.text == CALL and plain.tool_calls == ()


def test_hf_second_turn_follows_the_models_first_answer(engine: HFEngine) -> None:
    first = _one(engine, _chat([COLOUR], 20))
    assert (first.text, first.finish_reason) == ("Blue.", "stop")
    second = _one(engine, _chat([COLOUR, Message("assistant", first.text), AGAIN], 20))
    assert second.text == "Blue again."
    other = _one(engine, _chat([COLOUR, Message("assistant", "Red."), AGAIN], 20))
    assert other.text == "Red again."


def test_openai_engine_two_turns_against_the_served_model(engine: HFEngine) -> None:
    from gnomon.serve.app import create_app

    with running(create_app(engine, "taught")) as url:
        client = OpenAIEngine("taught", url, mode="chat", **FAST)
        first = _one(client, _chat([COLOUR], 20))
        second = _one(client, _chat([COLOUR, Message("assistant", first.text), AGAIN], 20))
    assert (first.text, second.text) == ("Blue.", "Blue again.")


def test_hf_finish_reasons_and_counts(engine: HFEngine) -> None:
    prompt = "The small river moves slowly near the ancient garden"
    free = _one(engine, GenerateRequest(prompt, (), 5))
    assert free.finish_reason == "length" and free.completion_tokens == 5
    assert free.prompt_tokens == len(engine.encode(prompt))
    stop = free.text[2:4]
    cut = _one(engine, GenerateRequest(prompt, (stop,), 5))
    assert cut.finish_reason == "stop" and cut.text == free.text[: free.text.index(stop)]
    assert cut.completion_tokens is not None and 1 <= cut.completion_tokens < 5
    ended = _one(engine, _chat([COLOUR], 20))
    assert ended.finish_reason == "stop"
    assert ended.completion_tokens == len(
        engine.tokenizer.encode("Blue.</s>", add_special_tokens=False)
    )


def test_conversations_a_template_cannot_take_fail_clearly(
    llama_dir: Path, chat_llama_dir: Path, tmp_path: Path
) -> None:
    plain = HFEngine(str(llama_dir), device="cpu", dtype="float32")
    with pytest.raises(UserError, match="no chat template"):
        list(plain.generate([_chat([COLOUR])]))
    no_tools = HFEngine(str(chat_llama_dir), device="cpu", dtype="float32")
    requests = [_chat([COLOUR], 3, TOOLS_JSON), _chat([COLOUR], 3), _chat([COLOUR], 3, "{no")]
    ignored, fine, bad = collect(no_tools.generate(requests), 3)
    assert isinstance(ignored, FailedResult) and "ignores tools" in ignored.reason
    assert isinstance(fine, GenerateResult) and fine.completion_tokens == 3
    assert isinstance(bad, FailedResult) and "not JSON" in bad.reason
    strict = "{{ raise_exception('only one turn') if messages | length > 1 }}" + TOOL_TEMPLATE
    refusing = HFEngine(
        str(_with_template(llama_dir, tmp_path / "strict", strict)), device="cpu", dtype="float32"
    )
    two, one = collect(refusing.generate([_chat([COLOUR, AGAIN], 3), _chat([COLOUR], 3)]), 2)
    assert isinstance(two, FailedResult) and "only one turn" in two.reason
    assert isinstance(one, GenerateResult)
    tools_alone = _one(refusing, GenerateRequest("a prompt", (), 3, tools=TOOLS_JSON))
    assert isinstance(tools_alone, FailedResult) and "conversation" in tools_alone.reason


# ----------------------------------------------------------------------------- seeds
PROMPTS = [
    "The small river moves", "The doctor said", "Numbers: 1 2", "The garden",
    "A quiet planet", "Maria carries", "The old bridge", "Omar explains the",
]  # fmt: skip


def test_a_seeded_sample_does_not_depend_on_its_batch(llama_dir: Path) -> None:
    engine = HFEngine(str(llama_dir), device="cpu", dtype="float32", batch_size=8)
    requests = [GenerateRequest(p, (), 10, temperature=1.0, seed=i) for i, p in enumerate(PROMPTS)]
    alone = [_one(engine, r).text for r in requests]
    batched = [r.text for r in collect(engine.generate(requests), 8)]
    backwards = [r.text for r in collect(engine.generate(requests[::-1]), 8)][::-1]
    small = HFEngine(str(llama_dir), device="cpu", dtype="float32", batch_size=3)
    in_threes = [r.text for r in collect(small.generate(requests[3:] + requests[:3]), 8)]
    assert batched == alone
    assert backwards == alone
    assert in_threes[5:] + in_threes[:5] == alone
    # it is sampling: other seeds give other texts, and the same seed the same one
    reseeded = [GenerateRequest(PROMPTS[0], (), 10, temperature=1.0, seed=s) for s in range(4)]
    texts = [r.text for r in collect(engine.generate(reseeded), 4)]
    assert len(set(texts)) >= 3 and texts[0] == alone[0]
    greedy = _one(engine, GenerateRequest(PROMPTS[0], (), 10))
    assert greedy.text != alone[0] or greedy.text != texts[1]


def test_special_tool_call_markers_survive_decoding(llama_dir: Path) -> None:
    """Some tokenizers make `<tool_call>` a special token: a plain decode would drop it and
    with it every call the model made."""
    from transformers import AutoTokenizer

    from gnomon.engines.hf_answers import RowReader

    tokenizer = AutoTokenizer.from_pretrained(llama_dir)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<tool_call>", "</tool_call>"]})
    ids = tokenizer.encode(CALL + "</s><pad>", add_special_tokens=False)
    assert "<tool_call>" not in tokenizer.decode(ids, skip_special_tokens=True)
    reader = RowReader.of(tokenizer, None)
    assert reader.decode(ids) == CALL
    request = _chat([ASK], len(ids), TOOLS_JSON)
    result = reader.read(ids, request, False, 9)
    assert result.tool_calls[0].name == "get_weather" and result.finish_reason == "tool_calls"
    assert result.completion_tokens == len(ids) - 1  # up to and with the end token
