"""`gnomon serve` over real HTTP: uvicorn on a loopback port, httpx as the client.

The served numbers must be the ones a local run computes: greedy text equal to
`HFEngine.generate`, echoed prompt log-probabilities equal to a full forward pass and, summed over
a continuation, to `HFEngine.score`. Otherwise scoring over HTTP would disagree with scoring here.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch
from loopback import running

from gnomon.engines.base import GenerateRequest, ScoreRequest
from gnomon.engines.hf import HFEngine
from gnomon.serve.app import create_app

NAME = "tiny"
PROMPT = "The small river moves slowly near the ancient garden, and the doctor"
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)


def _engine(path: Path) -> HFEngine:
    return HFEngine(str(path), device="cpu", dtype="float32", batch_size=4)


@pytest.fixture(scope="module")
def llama(llama_dir: Path) -> Iterator[tuple[HFEngine, httpx.Client]]:
    engine = _engine(llama_dir)
    with running(create_app(engine, NAME)) as url, httpx.Client(base_url=url, timeout=60) as c:
        yield engine, c


@pytest.fixture(scope="module")
def qwen2(qwen2_dir: Path) -> Iterator[tuple[HFEngine, httpx.Client]]:
    engine = _engine(qwen2_dir)
    with running(create_app(engine, NAME)) as url, httpx.Client(base_url=url, timeout=60) as c:
        yield engine, c


def _generate(engine: HFEngine, prompt: str, max_tokens: int, until: tuple[str, ...] = ()) -> str:
    request = GenerateRequest(prompt, until, max_tokens)
    return next(r for batch in engine.generate([request]) for _, r in batch).text


def _complete(client: httpx.Client, **body) -> dict:
    response = client.post("/v1/completions", json={"model": NAME, **body})
    assert response.status_code == 200, response.text
    return response.json()


def _error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"] and error["type"]
    return error


def test_models(llama) -> None:
    _, client = llama
    assert client.get("/v1/models").json() == {
        "object": "list",
        "data": [{"id": NAME, "object": "model", "created": 0, "owned_by": "gnomon"}],
    }


def test_greedy_text_matches_engine_and_stops(llama) -> None:
    engine, client = llama
    full = _complete(client, prompt=PROMPT, max_tokens=12, temperature=0)
    choice = full["choices"][0]
    assert full["object"] == "text_completion" and full["model"] == NAME
    assert choice["text"] == _generate(engine, PROMPT, 12)
    assert choice["finish_reason"] == "length" and choice["logprobs"] is None
    usage = full["usage"]
    assert usage["prompt_tokens"] == len(engine.encode(PROMPT))
    assert usage["completion_tokens"] == 12
    assert usage["total_tokens"] == usage["prompt_tokens"] + 12

    text = choice["text"]
    assert len(text.strip()) >= 4, "the tiny model should say something"
    stop = text.strip()[2:4]
    cut = _complete(client, prompt=PROMPT, max_tokens=12, temperature=0, stop=[stop, "@@"])
    assert cut["choices"][0]["text"] == text[: text.index(stop)]
    assert cut["choices"][0]["text"] == _generate(engine, PROMPT, 12, (stop, "@@"))
    assert cut["choices"][0]["finish_reason"] == "stop"
    as_string = _complete(client, prompt=PROMPT, max_tokens=12, temperature=0, stop=stop)
    assert as_string["choices"][0]["text"] == cut["choices"][0]["text"]


def test_list_prompts_and_generated_logprobs(llama) -> None:
    engine, client = llama
    prompts = [PROMPT, "Maria carries the heavy lantern", "Question: why?"]
    out = _complete(client, prompt=prompts, max_tokens=5, temperature=0, logprobs=2)
    assert [c["index"] for c in out["choices"]] == [0, 1, 2]
    for prompt, choice in zip(prompts, out["choices"], strict=True):
        assert choice["text"] == _generate(engine, prompt, 5)
        lp = choice["logprobs"]
        # without echo the log-probabilities cover the completion only, and spell it out
        assert "".join(lp["tokens"]) == choice["text"]
        assert lp["text_offset"][0] == 0
        assert all(v is not None and v <= 0 for v in lp["token_logprobs"])
        assert all(2 <= len(top) <= 3 for top in lp["top_logprobs"])
    # greedy: each chosen token is the most likely one
    first = out["choices"][0]["logprobs"]
    for value, top in zip(first["token_logprobs"], first["top_logprobs"], strict=True):
        assert value == pytest.approx(max(top.values()), abs=1e-5)


@pytest.mark.parametrize("which", ["llama", "qwen2"])
def test_echo_logprobs_match_forward_pass_and_score(which: str, request) -> None:
    engine, client = request.getfixturevalue(which)
    ids = engine.encode(PROMPT)
    out = _complete(client, prompt=PROMPT, max_tokens=0, echo=True, logprobs=1)
    choice = out["choices"][0]
    assert choice["text"] == PROMPT and choice["finish_reason"] == "length"
    assert out["usage"] == {
        "prompt_tokens": len(ids),
        "completion_tokens": 0,
        "total_tokens": len(ids),
    }
    lp = choice["logprobs"]
    tokens, values, offsets = lp["tokens"], lp["token_logprobs"], lp["text_offset"]
    assert len(tokens) == len(values) == len(offsets) == len(ids)
    assert values[0] is None and lp["top_logprobs"][0] is None and offsets[0] == 0

    with torch.inference_mode():
        logits = engine.model(input_ids=torch.tensor([ids])).logits[0].float()
    expected = torch.log_softmax(logits, -1)[torch.arange(len(ids) - 1), ids[1:]].tolist()
    assert values[1:] == pytest.approx(expected, abs=1e-4)

    has_bos = engine.tokenizer.bos_token_id is not None
    assert (ids[0] == engine.tokenizer.bos_token_id) == has_bos
    if has_bos:
        assert tokens[0] == engine.tokenizer.bos_token
    ends = [*offsets[1:], len(PROMPT)]
    for i in range(int(has_bos), len(ids)):
        assert PROMPT[offsets[i] : ends[i]] == tokens[i]

    # a split on a token boundary: the continuation's summed log-probability is HFEngine.score's
    middle = [k for k in range(2, len(ids) - 2) if engine.encode(PROMPT[: offsets[k]]) == ids[:k]]
    assert middle, "no clean token boundary in the prompt"
    k = middle[len(middle) // 2]
    context, continuation = PROMPT[: offsets[k]], PROMPT[offsets[k] :]
    score = next(r for b in engine.score([ScoreRequest(context, continuation)]) for _, r in b)
    assert sum(values[k:]) == pytest.approx(score.logprob, abs=1e-4)


def test_echo_with_generation(qwen2) -> None:
    engine, client = qwen2
    n = len(engine.encode(PROMPT))
    choice = _complete(client, prompt=PROMPT, max_tokens=4, temperature=0, echo=True, logprobs=0)[
        "choices"
    ][0]
    assert choice["text"] == PROMPT + _generate(engine, PROMPT, 4)
    lp = choice["logprobs"]
    assert len(lp["tokens"]) == n + 4
    assert lp["text_offset"][n] == len(PROMPT)
    assert "".join(lp["tokens"]) == choice["text"]


def test_sampling_is_seeded(qwen2) -> None:
    _, client = qwen2
    body = {"prompt": PROMPT, "max_tokens": 8, "temperature": 1.5, "seed": 7}
    assert _complete(client, **body)["choices"] == _complete(client, **body)["choices"]


def test_chat(llama_dir: Path, tmp_path: Path) -> None:
    plain = _engine(llama_dir)
    messages = [{"role": "user", "content": "Why does the river move?"}]
    with running(create_app(plain, NAME)) as url:
        body = {"model": NAME, "messages": messages}
        error = _error(httpx.post(f"{url}/v1/chat/completions", json=body), 400)
        assert "chat template" in error["message"]

    chat_dir = tmp_path / "chat"
    shutil.copytree(llama_dir, chat_dir)
    config_path = chat_dir / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["chat_template"] = CHAT_TEMPLATE
    config_path.write_text(json.dumps(config))
    engine = _engine(chat_dir)
    with running(create_app(engine, NAME)) as url:
        body = {"model": NAME, "messages": messages, "max_tokens": 6, "temperature": 0}
        response = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["object"] == "chat.completion"
    prompt = "<s>user: Why does the river move?\nassistant:"
    assert (
        engine.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        == prompt
    )
    choice = out["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": _generate(engine, prompt, 6)}
    assert choice["finish_reason"] in ("stop", "length")
    assert out["usage"]["prompt_tokens"] == len(engine.encode(prompt))  # one BOS, not two


def test_api_key(llama) -> None:
    engine, _ = llama
    with running(create_app(engine, NAME, api_key="sekret")) as url:
        error = _error(httpx.get(f"{url}/v1/models"), 401)
        assert error["code"] == "invalid_api_key"
        wrong = {"Authorization": "Bearer nope"}
        _error(httpx.get(f"{url}/v1/models", headers=wrong), 401)
        right = {"Authorization": "Bearer sekret"}
        assert httpx.get(f"{url}/v1/models", headers=right).status_code == 200
        body = {"model": NAME, "prompt": "hi", "max_tokens": 1}
        _error(httpx.post(f"{url}/v1/completions", json=body), 401)
        assert httpx.post(f"{url}/v1/completions", json=body, headers=right).status_code == 200


def test_errors(llama) -> None:
    engine, client = llama
    error = _error(client.post("/v1/completions", json={"model": "gpt-9", "prompt": "hi"}), 404)
    assert error["code"] == "model_not_found"
    bad_json = client.post(
        "/v1/completions", content=b"{not json", headers={"content-type": "application/json"}
    )
    _error(bad_json, 400)
    _error(client.post("/v1/completions", json={"model": NAME}), 400)  # no prompt
    _error(client.post("/v1/completions", json={"model": NAME, "prompt": [1, 2]}), 400)
    for field, value in [("logprobs", 6), ("max_tokens", -1), ("temperature", -1)]:
        _error(
            client.post("/v1/completions", json={"model": NAME, "prompt": "a", field: value}), 400
        )
    _error(client.post("/v1/chat/completions", json={"model": NAME, "messages": []}), 400)
    long_prompt = "river " * (engine.max_length + 10)
    error = _error(client.post("/v1/completions", json={"model": NAME, "prompt": long_prompt}), 400)
    assert error["code"] == "context_length_exceeded"
    fits = "river " * 5
    too_much = {"model": NAME, "prompt": fits, "max_tokens": engine.max_length}
    _error(client.post("/v1/completions", json=too_much), 400)
    _error(client.get("/v1/nothing"), 404)


def test_request_id_is_echoed(llama) -> None:
    """The API client checks that an answer is its own by the id it sent."""
    _, client = llama
    body = {"model": "tiny", "prompt": "a b", "max_tokens": 2, "temperature": 0}
    response = client.post("/v1/completions", json=body, headers={"X-Request-Id": "abc-123"})
    assert response.status_code == 200 and response.headers["X-Request-Id"] == "abc-123"
    assert "X-Request-Id" not in client.post("/v1/completions", json=body).headers


TOOL_TEMPLATE = (  # a newline after a block tag is trimmed in chat templates: print it instead
    "{{ bos_token }}{% if tools %}tools:{% for t in tools %} {{ t['function']['name'] }}"
    "{% endfor %}{{ '\\n' }}{% endif %}{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}"
    "{% for c in m.get('tool_calls') or [] %}[call {{ c['function']['name'] }} "
    "{{ c['function']['arguments']['city'] }}]{% endfor %}"
    "{% if m.get('tool_call_id') %} (for {{ m['tool_call_id'] }}){% endif %}{{ '\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}"
)


def test_chat_with_turns_and_tools_is_the_engines_conversation(
    llama_dir: Path, tmp_path: Path
) -> None:
    """A multi-turn body with tools reaches the engine as a conversation: the prompt the model
    sees is the template over every turn, each tool call and answer, and the tools."""
    chat_dir = tmp_path / "tools"
    shutil.copytree(llama_dir, chat_dir)
    config_path = chat_dir / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["chat_template"] = TOOL_TEMPLATE
    config_path.write_text(json.dumps(config))
    engine = _engine(chat_dir)
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {}}}]
    call = {"id": "c1", "type": "function",
            "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}  # fmt: skip
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "rain"},
    ]
    body = {"model": NAME, "messages": messages, "tools": tools, "max_tokens": 5, "temperature": 0}
    with running(create_app(engine, NAME)) as url:
        response = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60)
        bad = {**body, "messages": [{"role": "assistant", "tool_calls": [{"id": "x"}]}]}
        error = _error(httpx.post(f"{url}/v1/chat/completions", json=bad, timeout=60), 400)
    assert "function.name" in error["message"]
    assert response.status_code == 200, response.text
    prompt = (
        "<s>tools: weather\nsystem: Be brief.\nuser: Weather in Oslo?\n"
        "assistant: [call weather Oslo]\ntool: rain (for c1)\nassistant:"
    )
    out = response.json()
    assert out["usage"]["prompt_tokens"] == len(engine.encode(prompt))
    assert out["choices"][0]["message"]["content"] == _generate(engine, prompt, 5)
