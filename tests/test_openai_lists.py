"""`OpenAIEngine` sends a context's continuations as one list of prompts, against `gnomon serve`
on a loopback port (behind a fault-injecting proxy where a server must misbehave).

A list must give the scores one prompt per request gives; a server that does not take lists
must still get the run done (one prompt per request from then on); and a prompt that fails in a
list must fail alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_openai_engine import FAST, NAME, collect, prompts_of, proxied

from gnomon.engines.base import FailedResult, ScoreRequest, ScoreResult
from gnomon.engines.hf import HFEngine
from gnomon.engines.openai import OpenAIEngine

QUESTIONS = [
    "Question: Which river moves most slowly?\nA. The small river\nB. The old river\nAnswer:",
    "Question: Where does the doctor walk?\nA. Near the garden\nB. Near the river\nAnswer:",
    "Question: What does Maria carry?\nA. A heavy lantern\nB. A small garden\nAnswer:",
]
REQUESTS = [
    *(ScoreRequest(q, f" {letter}") for q in QUESTIONS for letter in "AB"),
    ScoreRequest(QUESTIONS[0], " The small river moves slowly"),  # longer than the others
    ScoreRequest("The doctor said ", "hello to the river"),  # a context of its own
    ScoreRequest("Lone \ud800 surrogate:", " A\udcff"),  # kept exactly, sent as escapes
    ScoreRequest("Lone \ud800 surrogate:", " B"),
]
CONTEXTS = len({r.context for r in REQUESTS})


@pytest.fixture(scope="module")
def expected(local: tuple[HFEngine, str]) -> list[ScoreResult]:
    return collect(local[0].score(REQUESTS), len(REQUESTS))


def assert_same(got: list, want: list[ScoreResult], skip: int | None = None) -> None:
    for i, (request, g, w) in enumerate(zip(REQUESTS, got, want, strict=True)):
        if i == skip:
            continue
        assert isinstance(g, ScoreResult), (request, g)
        assert g.logprob == pytest.approx(w.logprob, abs=1e-4), request
        assert g.is_greedy == w.is_greedy, request


def test_one_request_per_context(local, expected) -> None:
    with proxied(local[1], lambda n, body: None) as (url, proxy):
        engine = OpenAIEngine(NAME, url, concurrency=3, **FAST)
        got = collect(engine.score(REQUESTS), len(REQUESTS))
    assert_same(got, expected)
    assert len(proxy.posts) == CONTEXTS
    sent = sorted(prompts_of(body) for body in proxy.posts)
    want = {}
    for r in REQUESTS:
        want.setdefault(r.context, []).append(r.context + r.continuation)
    assert sent == sorted(want.values())  # each context's prompts together, in request order
    assert engine.score_lists


def test_lists_are_capped(local, monkeypatch) -> None:
    import gnomon.engines.openai as openai_module

    monkeypatch.setattr(openai_module, "MAX_PROMPTS", 2)
    requests = [ScoreRequest(QUESTIONS[0], f" {word}") for word in ("A", "B", "C", "river", "x")]
    want = collect(local[0].score(requests), len(requests))
    with proxied(local[1], lambda n, body: None) as (url, proxy):
        got = collect(OpenAIEngine(NAME, url, **FAST).score(requests), len(requests))
    # the three requests go out concurrently: the order they reach the proxy varies
    assert sorted(len(prompts_of(b)) for b in proxy.posts) == [1, 2, 2]
    assert [g.logprob for g in got] == pytest.approx([w.logprob for w in want], abs=1e-4)


@pytest.mark.parametrize("fault", ["400", "first-only"])
def test_a_server_that_does_not_take_lists_gets_one_prompt_per_request(
    local, expected, fault: str
) -> None:
    """Refused (400) or answered for the first prompt only: the same scores, and from then on
    no list is sent."""
    plan = lambda n, body: fault if isinstance(body["prompt"], list) else None  # noqa: E731
    with proxied(local[1], plan) as (url, proxy):
        engine = OpenAIEngine(NAME, url, concurrency=1, **FAST)
        got = collect(engine.score(REQUESTS), len(REQUESTS))
        assert_same(got, expected)
        assert not engine.score_lists
        lists = [b for b in proxy.posts if isinstance(b["prompt"], list)]
        assert len(lists) == 1  # the one that showed it; the rest went one by one
        assert len(proxy.posts) == 1 + len(REQUESTS)
        # remembered for the run: the next call sends no list at all
        proxy.posts.clear()
        assert_same(collect(engine.score(REQUESTS), len(REQUESTS)), expected)
        assert not any(isinstance(b["prompt"], list) for b in proxy.posts)


def test_lists_refused_while_others_wait_are_withdrawn(local, expected) -> None:
    """Requests already queued when the server turned out to refuse lists are not sent as
    lists: with 4 in flight at most one round of lists is refused."""
    plan = lambda n, body: "400" if isinstance(body["prompt"], list) else None  # noqa: E731
    requests = [ScoreRequest(f"Question {i}: which river?\nAnswer:", f" {c}")
                for i in range(12) for c in "AB"]  # fmt: skip
    want = collect(local[0].score(requests), len(requests))
    with proxied(local[1], plan) as (url, proxy):
        engine = OpenAIEngine(NAME, url, concurrency=4, **FAST)
        got = collect(engine.score(requests), len(requests))
    assert [g.logprob for g in got] == pytest.approx([w.logprob for w in want], abs=1e-4)
    assert 1 <= sum(isinstance(b["prompt"], list) for b in proxy.posts) <= 4


def test_a_prompt_too_long_fails_alone(local, expected, llama_dir: Path) -> None:
    """The server refuses the whole list (400, context length); asked one by one, only the long
    prompt fails, and the run goes on sending lists and `max_tokens: 0`."""
    engine_hf, url = local
    too_long = ScoreRequest(QUESTIONS[0], " river" * (engine_hf.max_length + 5))
    requests = [*REQUESTS[:2], too_long, *REQUESTS[2:]]
    with proxied(url, lambda n, body: None) as (proxy_url, proxy):
        engine = OpenAIEngine(NAME, proxy_url, concurrency=2, **FAST)
        got = collect(engine.score(requests), len(requests))
    failed = got.pop(2)
    assert isinstance(failed, FailedResult) and "maximum context length" in failed.reason
    assert_same(got, expected)
    assert engine.score_lists and engine._score_max_tokens == 0
    # only the long prompt was also tried with max_tokens 1 (a server may refuse 0)
    assert all(b["max_tokens"] == 0 for b in proxy.posts if too_long.continuation not in str(b))


def test_max_tokens_zero_refused_for_lists_too(local, expected) -> None:
    """A server that takes lists but not `max_tokens: 0`: lists go on, with 1."""
    plan = lambda n, body: "400" if body["max_tokens"] == 0 else None  # noqa: E731
    with proxied(local[1], plan) as (url, proxy):
        engine = OpenAIEngine(NAME, url, concurrency=1, **FAST)
        got = collect(engine.score(REQUESTS), len(REQUESTS))
        assert_same(got, expected)
        assert engine.score_lists and engine._score_max_tokens == 1
        proxy.posts.clear()
        assert_same(collect(engine.score(REQUESTS), len(REQUESTS)), expected)
        assert len(proxy.posts) == CONTEXTS


def test_a_failed_list_fails_its_requests_only(local, expected) -> None:
    poisoned = {i for i, r in enumerate(REQUESTS) if r.context == QUESTIONS[1]}
    plan = lambda n, body: "503" if QUESTIONS[1] in prompts_of(body)[0] else None  # noqa: E731
    with proxied(local[1], plan) as (url, _):
        engine = OpenAIEngine(NAME, url, concurrency=2, max_retries=1, **FAST)
        got = collect(engine.score(REQUESTS), len(REQUESTS))
    for i in poisoned:
        assert isinstance(got[i], FailedResult) and "503" in got[i].reason
    rest = [i for i in range(len(REQUESTS)) if i not in poisoned]
    assert [got[i].logprob for i in rest] == pytest.approx(
        [expected[i].logprob for i in rest], abs=1e-4
    )
    assert engine.score_lists  # a server failure says nothing about lists


def test_choices_are_read_by_index() -> None:
    """Pure: an answer's choices in prompt order, whatever order they come in; an answer that is
    not one choice per prompt says why."""
    from gnomon.engines.answers import NoLogprobs
    from gnomon.engines.identity import Mismatch
    from gnomon.engines.openai_wire import NotAList, choices_in_order

    prompts = ["Q: a", "Q: b", "Q: c"]
    lp = {"token_logprobs": [None, -1.0], "text_offset": [0, 2], "tokens": ["Q:", " a"]}
    made = [{"index": i, "text": p, "logprobs": lp} for i, p in enumerate(prompts)]
    assert choices_in_order([made[2], made[0], made[1]], prompts) == made
    plain = [{k: v for k, v in c.items() if k != "index"} for c in made]
    assert choices_in_order(plain, prompts) == plain
    with pytest.raises(NotAList):
        choices_in_order(made[:1], prompts)  # answered the first prompt only
    with pytest.raises(NotAList):
        choices_in_order([{**c, "index": 0} for c in made], prompts)
    with pytest.raises(Mismatch):
        choices_in_order([{**c, "text": "other"} for c in made[:2]], prompts)
    with pytest.raises(NoLogprobs):
        choices_in_order([{"index": 0, "text": "Q: a", "logprobs": None}], prompts)
