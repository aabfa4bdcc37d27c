"""`OpenAIEngine` over real HTTP: `gnomon serve`'s app on a loopback port, and a fault-injecting
proxy in front of it.

Scoring through the API must equal scoring locally (else remote and local runs disagree), and a
flaky server must cost retries, never samples: every request is answered exactly once, with the
numbers a clean run gives, or as a `FailedResult` the runner records as a failure.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from loopback import chat_app, running

from gnomon.engines.base import GenerateRequest, GenerateResult, ScoreRequest, ScoreResult
from gnomon.engines.hf import HFEngine
from gnomon.engines.openai import (
    FailedResult,
    OpenAIEngine,
    parse_retry_after,
    split_thinking,
)
from gnomon.engines.ratelimit import TokenBucket
from gnomon.errors import UserError
from gnomon.serve.app import create_app

NAME = "tiny"
QUESTION = (
    "Question: Which river moves most slowly?\nA. The small river\nB. The old river\n"
    "C. The garden river\nD. The doctor's river\nAnswer:"
)
SCORE_REQUESTS = [ScoreRequest(QUESTION, f" {letter}") for letter in "ABCD"] + [
    ScoreRequest("The small river moves slowly near the", " ancient garden, and the doctor"),
    ScoreRequest("The doctor said ", "hello to the river"),
    ScoreRequest("Numbers:  ", "1 2 3 and the garden"),
    ScoreRequest("The garden\n", "is near the river."),
    ScoreRequest(QUESTION + " ", "B"),
]
# one request per distinct context: a context's continuations are sent as one list of prompts
POSTS = len({r.context for r in SCORE_REQUESTS})
PROMPT = "The small river moves slowly near the ancient garden, and the doctor"
GENERATE_REQUESTS = [
    GenerateRequest(PROMPT, (), 8),
    GenerateRequest("The doctor said", ("\n",), 10),
    GenerateRequest(PROMPT, ("q", "x", "z", "@@", "##", " the"), 12),  # > 4 stops: cut here
]
FAST = {"backoff_base": 0.01, "backoff_max": 0.05}


class FaultProxy:
    """An ASGI app forwarding to `target`, except where `plan(n, body)` names a fault for the
    n-th POST: "429", "429-after", "400", "401", "500", "502", "503", "malformed", "close" (a
    response cut off mid-body), "slow" (no answer within the client's timeout), "busy" (503 with
    `Retry-After: 0`), "badgzip" (`Content-Encoding: gzip` on a body that is not gzip), "trickle"
    (one byte every `trickle_s` seconds, for up to 20 s), "nolp" (the real answer with
    `token_logprobs: null`), "replay" (the previous POST's response again, byte for byte) or
    "swap" (the previous response with a fresh `id`, and the previous request's `X-Request-Id`)
    or "first-only" (a list of prompts answered for its first prompt alone, as a server that
    does not take lists may do).
    With `echo_ids` the proxy echoes each request's `X-Request-Id`, as some servers do."""

    def __init__(
        self,
        target: str,
        plan: Callable[[int, dict], str | None],
        slow_s: float = 1.5,
        trickle_s: float = 0.3,
        echo_ids: bool = False,
    ) -> None:
        self.target, self.plan, self.slow_s = target, plan, slow_s
        self.trickle_s, self.echo_ids = trickle_s, echo_ids
        self.seen: list[tuple[str, str]] = []
        self.posts: list[dict] = []
        self.last: tuple[bytes, str] | None = None  # the previous POST's body and request id
        self.in_flight = self.most_in_flight = 0

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self._handle(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _handle(self, scope: dict, receive: Callable, send: Callable) -> None:
        import asyncio

        import httpx

        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        method, path = scope["method"], scope["path"]
        request_id = dict(scope["headers"]).get(b"x-request-id", b"").decode()
        self.seen.append((method, path))
        fault = None
        if method == "POST":
            payload = json.loads(body)
            self.posts.append(payload)
            fault = self.plan(len(self.posts) - 1, payload)
        error = b'{"error": {"message": "injected", "type": "server_error"}}'
        echo = [(b"x-request-id", request_id.encode())] if self.echo_ids and request_id else []
        if fault in ("400", "401", "429", "500", "502", "503"):
            return await _respond(send, int(fault), error, echo)
        if fault == "429-after":
            return await _respond(send, 429, error, [(b"retry-after", b"1")])
        if fault == "busy":
            return await _respond(send, 503, error, [(b"retry-after", b"0")])
        if fault == "malformed":
            return await _respond(send, 200, b'{"choices": [{"text": "trunc')
        if fault == "badgzip":
            return await _respond(send, 200, b'{"choices": []}', [(b"content-encoding", b"gzip")])
        if fault in ("replay", "swap") and self.last is not None:
            previous, previous_id = self.last
            if fault == "replay":
                return await _respond(send, 200, previous, echo)
            data = json.loads(previous)
            data["id"] = f"cmpl-fresh-{len(self.posts)}"
            forged = [(b"x-request-id", previous_id.encode())] if previous_id else []
            return await _respond(send, 200, json.dumps(data).encode(), forged)
        if fault == "close":
            headers = [(b"content-type", b"application/json"), (b"content-length", b"1000")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b'{"choi', "more_body": True})
            raise RuntimeError("injected: connection dropped mid-body")
        if fault == "trickle":
            headers = [(b"content-type", b"application/json"), (b"content-length", b"1000")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            for _ in range(int(20 / self.trickle_s)):
                await send({"type": "http.response.body", "body": b" ", "more_body": True})
                await asyncio.sleep(self.trickle_s)
            raise RuntimeError("injected: trickled for 20 s")
        if fault == "slow":
            await asyncio.sleep(self.slow_s)
        if fault == "first-only" and isinstance(payload.get("prompt"), list):
            body = json.dumps({**payload, "prompt": payload["prompt"][0]}).encode()
        headers = {k.decode(): v.decode() for k, v in scope["headers"] if k == b"authorization"}
        headers["content-type"] = "application/json"
        async with httpx.AsyncClient(timeout=60) as client:
            response = await client.request(
                method, self.target + path, content=body, headers=headers
            )
        content = response.content
        if fault == "nolp":
            data = json.loads(content)
            data["choices"][0]["logprobs"]["token_logprobs"] = None
            content = json.dumps(data).encode()
        if method == "POST" and response.status_code == 200:
            self.last = (content, request_id)
        await _respond(send, response.status_code, content, echo)


async def _respond(
    send: Callable, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [(b"content-type", b"application/json"), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@contextmanager
def proxied(
    url: str, plan: Callable[[int, dict], str | None], **options: Any
) -> Iterator[tuple[str, FaultProxy]]:
    proxy = FaultProxy(url, plan, **options)
    with running(proxy) as proxy_url:
        yield proxy_url, proxy


def collect(batches: Iterator[list[tuple[int, Any]]], n: int) -> list[Any]:
    """All results by index, checking that every index comes exactly once."""
    out: dict[int, Any] = {}
    for batch in batches:
        assert batch
        for index, result in batch:
            assert index not in out, f"index {index} answered twice"
            out[index] = result
    assert sorted(out) == list(range(n))
    return [out[i] for i in range(n)]


@pytest.fixture(scope="module")
def expected(local: tuple[HFEngine, str]) -> list[ScoreResult]:
    engine, _ = local
    return collect(engine.score(SCORE_REQUESTS), len(SCORE_REQUESTS))


def assert_scores(got: list[Any], want: list[ScoreResult]) -> None:
    for request, g, w in zip(SCORE_REQUESTS, got, want, strict=True):
        assert isinstance(g, ScoreResult), (request, g)
        assert g.logprob == pytest.approx(w.logprob, abs=1e-4), request
        assert g.is_greedy == w.is_greedy, request


# ----------------------------------------------------------------------------- agreement
def test_scores_match_local_engine(local, expected) -> None:
    _, url = local
    engine = OpenAIEngine(NAME, url, concurrency=3)
    assert_scores(collect(engine.score(SCORE_REQUESTS), len(SCORE_REQUESTS)), expected)
    assert engine.tokens_computed > 0


def test_greedy_continuation_is_greedy_over_http(local) -> None:
    hf, url = local
    words = PROMPT.lower().replace(",", "").split(" ")
    prompts = [" ".join(words[i : i + 4]) for i in range(len(words) - 3)]
    texts = collect(hf.generate([GenerateRequest(p, (), 1) for p in prompts]), len(prompts))
    requests = [ScoreRequest(p, t.text) for p, t in zip(prompts, texts, strict=True) if t.text]
    want = collect(hf.score(requests), len(requests))
    got = collect(OpenAIEngine(NAME, url).score(requests), len(requests))
    assert sum(w.is_greedy for w in want) >= 3, "the model's own next tokens are mostly greedy"
    assert [g.is_greedy for g in got] == [w.is_greedy for w in want]
    assert [g.logprob for g in got] == pytest.approx([w.logprob for w in want], abs=1e-4)


def test_greedy_generation_matches_local_engine(local) -> None:
    hf, url = local
    want = collect(hf.generate(GENERATE_REQUESTS), len(GENERATE_REQUESTS))
    engine = OpenAIEngine(NAME, url + "/v1/", concurrency=2)
    got = collect(engine.generate(GENERATE_REQUESTS), len(GENERATE_REQUESTS))
    assert [g.text for g in got] == [w.text for w in want]
    assert any(w.text for w in want)


def test_describe_never_shows_the_key(local) -> None:
    hf, _ = local
    with running(create_app(hf, NAME, api_key="sk-secret-123")) as url:
        engine = OpenAIEngine(NAME, url, api_key="sk-secret-123")
        assert engine.describe() == {
            "engine": "openai",
            "base_url": url + "/v1",
            "model": NAME,
            "mode": "completions",
        }
        assert "sk-secret" not in repr(engine.describe())


# ----------------------------------------------------------------------------- faults
def test_transient_faults_cost_retries_not_samples(local, expected) -> None:
    _, url = local
    faults = ["429", "500", "malformed", "502", "close", "503", "slow", "429-after"]
    plan = lambda n, body: faults[n] if n < len(faults) else None  # noqa: E731
    with proxied(url, plan) as (proxy_url, proxy):
        engine = OpenAIEngine(NAME, proxy_url, concurrency=4, timeout=1.0, **FAST)
        delays: list[float | None] = []
        backoff = engine._delay
        engine._delay = lambda attempt, after: delays.append(after) or backoff(attempt, after)
        got = collect(engine.score(SCORE_REQUESTS), len(SCORE_REQUESTS))
    assert_scores(got, expected)
    assert len(delays) == len(faults) and delays.count(1.0) == 1  # Retry-After: 1 honoured
    assert len(proxy.posts) >= POSTS + len(faults)


def prompts_of(body: dict) -> list[str]:
    """The prompts a completions body sends: one string, or a list of them."""
    prompt = body["prompt"]
    return [prompt] if isinstance(prompt, str) else list(prompt)


def poisons(body: dict) -> bool:
    return any(p.startswith("The doctor said") for p in prompts_of(body))


def test_a_request_that_always_fails_becomes_failed_result(local, expected) -> None:
    _, url = local
    poisoned = 5
    plan = lambda n, body: "503" if poisons(body) else None  # noqa: E731
    with proxied(url, plan) as (proxy_url, proxy):
        engine = OpenAIEngine(NAME, proxy_url, concurrency=4, max_retries=3, **FAST)
        got = collect(engine.score(SCORE_REQUESTS), len(SCORE_REQUESTS))
    assert isinstance(got[poisoned], FailedResult)
    assert "503" in got[poisoned].reason
    tries = [p for p in proxy.posts if poisons(p)]
    assert len(tries) == 4  # the first attempt and max_retries more
    for i, (g, w) in enumerate(zip(got, expected, strict=True)):
        if i != poisoned:
            assert g.logprob == pytest.approx(w.logprob, abs=1e-4)


def test_max_tokens_zero_refused_falls_back_to_one(local, expected) -> None:
    _, url = local
    plan = lambda n, body: "400" if body.get("max_tokens") == 0 else None  # noqa: E731
    with proxied(url, plan) as (proxy_url, _):
        engine = OpenAIEngine(NAME, proxy_url, concurrency=2, **FAST)
        got = collect(engine.score(SCORE_REQUESTS), len(SCORE_REQUESTS))
    assert_scores(got, expected)


def test_rejected_key_stops_at_once(local) -> None:
    hf, _ = local
    with (
        running(create_app(hf, NAME, api_key="right-key")) as url,
        proxied(url, lambda n, body: None) as (proxy_url, proxy),
    ):
        with pytest.raises(UserError, match="rejected the API key") as info:
            OpenAIEngine(NAME, proxy_url, api_key="wrong-key-456", **FAST)
        assert "wrong-key-456" not in str(info.value)
        assert len(proxy.seen) == 1


def test_401_during_a_run_stops_without_retrying(local) -> None:
    _, url = local
    with proxied(url, lambda n, body: "401") as (proxy_url, proxy):
        engine = OpenAIEngine(NAME, proxy_url, api_key="k-789", concurrency=1, **FAST)
        with pytest.raises(UserError, match="HTTP 401") as info:
            list(engine.score(SCORE_REQUESTS))
        assert "k-789" not in str(info.value)
        assert len(proxy.posts) == 1


def test_wrong_url_fails_quickly() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    start = time.monotonic()
    with pytest.raises(UserError, match=f"127.0.0.1:{port}"):
        OpenAIEngine(NAME, url)
    assert time.monotonic() - start < 5


def test_unknown_model_lists_the_served_ones(local) -> None:
    _, url = local
    with pytest.raises(UserError, match="'nope'.*tiny"):
        OpenAIEngine("nope", url)


def test_requests_per_minute_is_honoured(local) -> None:
    _, url = local
    engine = OpenAIEngine(NAME, url, concurrency=6, requests_per_minute=120)
    requests = [GenerateRequest(f"The river {i}", (), 1) for i in range(6)]
    start = time.monotonic()
    collect(engine.generate(requests), len(requests))
    assert time.monotonic() - start >= 1.8  # a burst of 2, then one every 0.5 s


def test_closing_early_cancels_the_rest(local) -> None:
    _, url = local
    engine = OpenAIEngine(NAME, url, concurrency=1)
    batches = engine.score(SCORE_REQUESTS)
    first = next(batches)
    batches.close()
    assert len(first) == 4  # one request: the first question's four choices


# ----------------------------------------------------------------------------- chat & thinking
def _fake_chat_app() -> Any:
    def reply(body: dict) -> dict:
        if body["messages"][0]["content"] == "native":
            message = {"content": "Paris. STOP more", "reasoning_content": "France's capital"}
        else:
            message = {"content": "<think>2+2 is 4. STOP</think>\nThe answer is 4. STOP junk"}
        return {**message, "finish_reason": None}  # a server that gives no finish reason

    usage = {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    app = chat_app(reply, ("chatty",), usage=usage)

    @app.post("/v1/completions")
    def completions(body: dict) -> dict:
        return {"choices": [{"index": 0, "text": "x", "logprobs": None}]}

    return app


def test_chat_mode_keeps_thinking_apart() -> None:
    with running(_fake_chat_app()) as url:
        engine = OpenAIEngine("chatty", url, mode="chat", **FAST)
        stop = ("STOP",)
        requests = [GenerateRequest("think", stop, 50), GenerateRequest("native", stop, 9)]
        got = collect(engine.generate(requests), 2)
        counts = {"prompt_tokens": 3, "completion_tokens": 4}
        assert got[0] == GenerateResult("The answer is 4. ", reasoning="2+2 is 4. STOP", **counts)
        assert got[1] == GenerateResult("Paris. ", reasoning="France's capital", **counts)
        assert engine.tokens_computed == 14
        with pytest.raises(UserError, match="--choice-by generation"):
            list(engine.score(SCORE_REQUESTS[:1]))
        completions = OpenAIEngine("chatty", url, **FAST)
        with pytest.raises(UserError, match="does not return prompt logprobs"):
            list(completions.score(SCORE_REQUESTS[:2]))


def test_helpers() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    now = 1_700_000_000.0
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now + 7))
    assert parse_retry_after(date, now=now) == pytest.approx(7)
    assert split_thinking("plain") == ("plain", None)
    assert split_thinking("<think>long") == ("", "long")
    assert split_thinking("a</think>b") == ("b", "a")
    bucket = TokenBucket(60)  # one a second, burst of one
    assert bucket.reserve(1) == 0
    assert bucket.reserve(1) == pytest.approx(1, abs=0.05)
