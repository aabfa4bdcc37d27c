"""What a judged or tool-use score rests on, as a reader of the sample browser meets it: a store
written by real runs (tests/judged_store.py: `gnomon run` against a scripted OpenAI-compatible
server on loopback playing the model, its judge and a tool-calling model), read through the web
app over HTTP, the static export on disk and `gnomon runs show`.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from gnomon_cli import gnomon, ok
from judged_store import (
    BROKEN_ARGUMENTS,
    KEYED,
    PAIRWISE_REPLY,
    SCRIPT_REPLY,
    UNREADABLE_ONCE,
    build_judged_store,
)
from loopback import running
from markupsafe import escape

from gnomon.modes.verdicts import VerdictError
from gnomon.pipeline.scoring import _unreadable
from gnomon.rank.export import export_site
from gnomon.rank.sample_detail import failure
from gnomon.rank.web import create_app
from gnomon.store import Store


@pytest.fixture(scope="module")
def judged_store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build_judged_store(tmp_path_factory.mktemp("judged"))


def _expected_texts() -> list[str]:
    """What the judged sample pages must show (as escaped HTML text)."""
    return [
        "What is 2+1?", "The answer is 3.",
        "Yes: 3 <i>surely</i>.", SCRIPT_REPLY, UNREADABLE_ONCE, "Second turn: Rating: [[6]]",
    ]  # fmt: skip


def _assert_judged_pages(chat: str, paired: str) -> None:
    for text in _expected_texts():
        assert escape(text) in chat, text
    assert "<script>window" not in chat and "&lt;script&gt;window.__gnomon_pwned" in chat
    assert "<i>surely</i>" not in chat
    # each turn's question and answer, the follow-up as the result keeps it
    assert '<pre class="output turn-answer">The answer is 3.</pre>' in chat
    assert '<pre class="prompt turn-question">Are you sure about ' in chat  # FOLLOW_UP, rendered
    assert "(not stored)" not in chat
    # each reply with the verdict read from it, and the turn it judged
    assert re.search(r"reply 1 \(turn 1\): <code class=\"verdict\">8</code>", chat)
    assert re.search(r"reply 2 \(turn 2\): <code class=\"verdict\">6</code>", chat)
    assert "after 1 unreadable" in chat
    # the failed judgment: not scored, its raw replies shown (escaped), 3 attempts
    failed = re.search(r'<details class="failures".*?</details>', chat, re.S)
    assert failed is not None and 'data-sample="q2"' in failed.group(0)
    # every attempt's raw reply, for both turns (2 x 3), each as the judge wrote it
    raw = '<pre class="output judge-reply raw">I will not rate &lt;b&gt;this&lt;/b&gt; one.</pre>'
    assert failed.group(0).count(raw) == 6
    assert "judgment failed after 3 attempts: no rating" in failed.group(0)
    assert "<b>this</b>" not in chat
    # pairwise: both orders, each labelled, each verdict
    assert 'reply 1 (model as A, baseline as B): <code class="verdict">A&gt;B</code>' in paired
    assert 'reply 2 (baseline as A, model as B): <code class="verdict">A&gt;B</code>' in paired
    shown = escape(PAIRWISE_REPLY.replace("\ud800", "\ufffd"))
    assert paired.count(shown) == 4  # 2 samples x 2 orders


def _assert_tool_page(page: str, function: str) -> None:
    assert f'<code class="call-name">{function}</code>' in page
    assert escape(BROKEN_ARGUMENTS) in page
    assert "invalid_arguments" in page
    assert re.search(r'<div class="checker-error">.*?not JSON', page, re.S)


def test_web_sample_pages_show_judges_turns_failures_and_calls(judged_store: dict) -> None:
    run, tools = judged_store["judged"], judged_store["tools"]
    with running(create_app(judged_store["path"])) as base, httpx.Client(base_url=base) as client:
        chat, paired = client.get(f"/run/{run}/chat"), client.get(f"/run/{run}/paired")
        assert chat.status_code == 200 and paired.status_code == 200
        _assert_judged_pages(chat.text, paired.text)
        # the search covers what the page shows: a judge's replies, the turns, the calls
        searches = [
            ("wonder about turn", f"{run}/chat", "q1"),
            ("surely", f"{run}/chat", "q1"),
            ("Expecting value", f"{tools}/bfcl_simple", "simple_python_0"),
        ]
        for word, where, found in searches:
            page = client.get(f"/run/{where}", params={"q": word})
            assert re.findall(r'<tr data-sample="([^"]+)"', page.text) == [found], word
        calls = client.get(f"/run/{tools}/bfcl_simple")
        assert calls.status_code == 200
        _assert_tool_page(calls.text, judged_store["function"])
        # the expected answers (BFCL's possible answers), as stored
        target = next(Store(judged_store["path"], create=False).samples(tools))["target"]
        assert "calculate_triangle_area" in target
        assert f'<pre class="output target">{escape(target)}</pre>' in calls.text


def test_static_export_shows_the_same(judged_store: dict, tmp_path: Path) -> None:
    out = tmp_path / "site"
    export_site(Store(judged_store["path"], create=False), out, compare_top=0)
    run, tools = judged_store["judged"], judged_store["tools"]
    chat = (out / "run" / run / "chat" / "all-1.html").read_text()
    paired = (out / "run" / run / "paired" / "all-1.html").read_text()
    _assert_judged_pages(chat, paired)
    _assert_tool_page(
        (out / "run" / tools / "bfcl_simple" / "all-1.html").read_text(), judged_store["function"]
    )


def test_runs_show_prints_judge_replies_turns_and_calls(judged_store: dict) -> None:
    path = judged_store["path"]
    shown = ok(gnomon("runs", "show", judged_store["judged"], "--store", path, "--samples", "9",
                      env=KEYED)).stdout  # fmt: skip
    assert f"turn 2 answer: {'Yes: 3 <i>surely</i>.'!r}" in shown
    assert f"judge reply 1 (turn 1): verdict 8 from {SCRIPT_REPLY!r}" in shown
    assert f"judge reply 2 (turn 2), unreadable attempt 1: {UNREADABLE_ONCE!r}" in shown
    assert f"(model as A, baseline as B): verdict A>B from {PAIRWISE_REPLY!r}" in shown
    assert "failed: chat q2: judgment failed after 3 attempts" in shown
    calls = ok(gnomon("runs", "show", judged_store["tools"], "--store", path, "--samples", "1",
                      env=KEYED)).stdout  # fmt: skip
    assert f"call {judged_store['function']!r} arguments {BROKEN_ARGUMENTS!r}" in calls
    assert "checker: " in calls and "not JSON" in calls


def test_failed_judgment_reasons_give_back_each_raw_reply() -> None:
    """The replies come out of the reason exactly as the judge wrote them, whatever they hold
    (the separator, quotes, newlines, JSON); a reason of another form is shown whole."""
    replies = ['a " | "b', "line\nnext <b>x</b>", '{"json": 1}', "", '; raw replies: "z"']
    reason = _unreadable(VerdictError("no rating"), {0: replies[:2], 1: replies[2:]})
    parsed = failure(reason)
    assert parsed["replies"] == replies
    assert parsed["reason"] == "judgment failed after 3 attempts: no rating"
    for other in (
        "the judge could not answer: timeout",
        'x; raw replies: "open',
        "x; raw replies: 1",
    ):
        assert failure(other) == {"reason": other, "replies": []}


def test_many_failures_are_capped_on_the_page(judged_store: dict, tmp_path: Path) -> None:
    """A run where most judgments failed: the page lists the first ones and says how many."""
    path = tmp_path / "store.sqlite"
    shutil.copy(judged_store["path"], path)
    run = judged_store["judged"]
    store = Store(path)
    store.add_failures(
        run, "chat", [(f"x{i}", f"the judge could not answer: {i}") for i in range(60)]
    )
    store.close()
    with running(create_app(path)) as base, httpx.Client(base_url=base) as client:
        page = client.get(f"/run/{run}/chat").text
    assert "61 samples not scored" in page and "the first 50;" in page
    assert page.count('<div class="failure"') == 50
