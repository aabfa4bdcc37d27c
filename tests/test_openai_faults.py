"""Faults a fault-injecting proxy found between `OpenAIEngine` and `gnomon serve`: each must cost
retries (or, where a server keeps saying the same thing, stop with one line), never a sample and
never a wrong answer stored as a right one."""

from __future__ import annotations

import time

import pytest
from test_openai_engine import (
    FAST,
    NAME,
    POSTS,
    PROMPT,
    SCORE_REQUESTS,
    assert_scores,
    collect,
    proxied,
)

from gnomon.engines.base import FailedResult, GenerateRequest, ScoreResult
from gnomon.engines.hf import HFEngine
from gnomon.engines.openai import OpenAIEngine
from gnomon.errors import UserError

WORDS = PROMPT.lower().replace(",", "").split(" ")
PROMPTS = [" ".join(WORDS[i : i + 3]) for i in range(0, len(WORDS) - 2, 2)]
GENERATE = [GenerateRequest(p, (), 4) for p in PROMPTS]


@pytest.fixture(scope="module")
def expected(local: tuple[HFEngine, str]) -> list[ScoreResult]:
    return collect(local[0].score(SCORE_REQUESTS), len(SCORE_REQUESTS))


@pytest.fixture(scope="module")
def texts(local: tuple[HFEngine, str]) -> list[str]:
    got = [g.text for g in collect(local[0].generate(GENERATE), len(GENERATE))]
    assert len(set(got)) > len(got) // 2, "a replayed answer must be told from the right one"
    return got


def scores_through(url: str, plan, **options) -> tuple[list, float, object]:  # type: ignore[no-untyped-def]
    engine_options = {"concurrency": 2, **FAST, **options.pop("engine", {})}
    with proxied(url, plan, **options) as (proxy_url, proxy):
        engine = OpenAIEngine(NAME, proxy_url, **engine_options)
        start = time.monotonic()
        got = collect(engine.score(SCORE_REQUESTS), len(SCORE_REQUESTS))
        return got, time.monotonic() - start, proxy


def test_a_body_that_does_not_decode_is_retried(local, expected) -> None:
    got, _, proxy = scores_through(local[1], lambda n, body: "badgzip" if n in (0, 3) else None)
    assert_scores(got, expected)
    assert len(proxy.posts) == POSTS + 2


def test_a_trickling_server_meets_the_deadline(local, expected) -> None:
    """One byte every 0.3 s never trips a per-read timeout of 1 s; the per-request one does."""
    plan = lambda n, body: "trickle" if n == 0 else None  # noqa: E731
    got, elapsed, _ = scores_through(local[1], plan, engine={"timeout": 1.0})
    assert_scores(got, expected)
    assert elapsed < 8


def test_one_answer_without_logprobs_is_a_fault_not_a_verdict(local, expected) -> None:
    plan = lambda n, body: "nolp" if n % 2 == 0 else None  # noqa: E731
    got, _, proxy = scores_through(local[1], plan, engine={"concurrency": 1})
    assert_scores(got, expected)
    assert len(proxy.posts) == 2 * POSTS


def test_an_endpoint_that_keeps_answering_without_logprobs_stops(local) -> None:
    with proxied(local[1], lambda n, body: "nolp") as (proxy_url, proxy):
        engine = OpenAIEngine(NAME, proxy_url, concurrency=1, **FAST)
        with pytest.raises(UserError, match="does not return prompt logprobs"):
            list(engine.score(SCORE_REQUESTS))
        assert len(proxy.posts) == 3


def test_a_replayed_score_is_not_stored(local, expected) -> None:
    got, _, proxy = scores_through(local[1], lambda n, body: "replay" if n % 2 else None)
    assert_scores(got, expected)
    assert len(proxy.posts) > POSTS


def test_a_replayed_generation_is_not_stored(local, texts) -> None:
    with proxied(local[1], lambda n, body: "replay" if n % 2 else None) as (proxy_url, proxy):
        engine = OpenAIEngine(NAME, proxy_url, concurrency=1, **FAST)
        got = collect(engine.generate(GENERATE), len(GENERATE))
    assert [g.text for g in got] == texts
    assert len(proxy.posts) >= 2 * len(GENERATE) - 1


def test_a_swapped_generation_is_caught_by_the_echoed_request_id(local, texts) -> None:
    """The forged answer has a fresh `id`; only the server's echo of X-Request-Id gives it away."""
    plan = lambda n, body: "swap" if n % 2 else None  # noqa: E731
    with proxied(local[1], plan, echo_ids=True) as (proxy_url, _):
        engine = OpenAIEngine(NAME, proxy_url, concurrency=1, **FAST)
        got = collect(engine.generate(GENERATE), len(GENERATE))
    assert [g.text for g in got] == texts


def test_a_saturated_server_is_waited_for_without_spending_retries(local, expected) -> None:
    plan = lambda n, body: "busy" if n < 12 else None  # noqa: E731
    got, _, proxy = scores_through(local[1], plan, engine={"max_retries": 1})
    assert_scores(got, expected)
    assert proxy.most_in_flight <= 2  # polling holds the request's slot: no more than concurrency


def test_saturation_is_not_waited_for_forever(local) -> None:
    options = {"max_retries": 1, "saturation_patience": 0.5}
    got, elapsed, _ = scores_through(local[1], lambda n, body: "busy", engine=options)
    assert all(isinstance(g, FailedResult) and "503" in g.reason for g in got)
    assert elapsed < 10


def test_waiting_for_a_slot_is_not_part_of_the_deadline(local, expected) -> None:
    """Each answer takes 0.6 s of a 1 s deadline; queued behind each other, one at a time."""
    options = {"slow_s": 0.6, "engine": {"concurrency": 1, "timeout": 1.0, "max_retries": 0}}
    got, elapsed, _ = scores_through(local[1], lambda n, body: "slow", **options)
    assert_scores(got, expected)
    assert elapsed > 0.6 * POSTS


@pytest.mark.parametrize("bad", [{"timeout": 0}, {"timeout": float("nan")}, {"max_retries": -1}])
def test_bad_settings_are_user_errors(local, bad) -> None:
    with pytest.raises(UserError):
        OpenAIEngine(NAME, local[1], **bad)
