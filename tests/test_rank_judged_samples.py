"""What a judged or tool-use score rests on, as a reader of the sample browser meets it: a store
written by real runs (`gnomon run` against a scripted OpenAI-compatible server on loopback that
plays the model, the judge and a tool-calling model), read through the web app over HTTP, the
static export on disk and `gnomon runs show`.

The judge follows rules the test knows: on a conversation's first turn it writes a `<script>`
beside its rating, its first reply about the second turn is unreadable (asked again, then read),
it never gives a readable verdict about 2+2 (that judgment fails), and in the pairwise benchmark it
always prefers answer A, so the two orders disagree.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gnomon_cli import ENV, gnomon, ok
from loopback import running
from markupsafe import escape

from gnomon.rank.export import export_site
from gnomon.rank.web import create_app
from gnomon.store import Store

ROWS = [
    {"id": "q1", "question": "What is 2+1?", "reference": "3", "baseline": "Maybe 4."},
    {"id": "q2", "question": "What is 2+2?", "reference": "4", "baseline": "Maybe 5."},
]
FOLLOW_UP = "Are you sure about {{ question }}"
SUBJECT = {
    "What is 2+1?": "The answer is 3.",
    "What is 2+2?": "The answer is 4.",
    "Are you sure about What is 2+1?": "Yes: 3 <i>surely</i>.",
    "Are you sure about What is 2+2?": "Yes: 4.",
}
SCRIPT_REPLY = "Fine. <script>alert('judge')</script> Rating: [[8]]"
UNREADABLE_ONCE = "Hmm, I wonder about turn two."
REFUSED = "I will not rate <b>this</b> one."
PAIRWISE_REPLY = "A reads better. [[A>B]]"
BROKEN_ARGUMENTS = '{"base": 10, "height": '  # no JSON: the checker refuses it as written


def _spec(bench: str, extra: dict[str, Any], prompt: dict[str, Any] | None = None) -> str:
    return json.dumps({
        "id": bench, "title": bench, "dimension": "instruction-following", "version": 1,
        "source": {"files": "data", "eval_split": "test", "id_field": "id"},
        "prompt": {"template": "{{ question }}", "target": "reference", **(prompt or {})},
        "mode": "judged", "generation": {"until": [], "max_tokens": 32}, **extra,
    })  # fmt: skip


class Scripted:
    """The subject (from SUBJECT), the judge (by the rules above) and, for requests with
    `tools`, a model that calls them with the arguments the test chose."""

    def __init__(self, tool_script: dict[str, list[tuple[str, str]]]) -> None:
        self.tool_script = tool_script
        self.lock = threading.Lock()
        self.asked_turn_two: set[str] = set()

    def judge(self, text: str) -> str:
        if "<<A>>" in text:
            return PAIRWISE_REPLY
        if "2+2" in text:
            return REFUSED
        if "TURN 2" in text:
            with self.lock:
                first = text not in self.asked_turn_two
                self.asked_turn_two.add(text)
            return UNREADABLE_ONCE if first else "Second turn: Rating: [[6]]"
        return SCRIPT_REPLY

    def app(self) -> Any:
        from fastapi import FastAPI

        app = FastAPI()

        @app.post("/v1/chat/completions")
        def chat(body: dict) -> dict:
            message: dict[str, Any] = {"role": "assistant", "content": None}
            last = [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
            if body.get("tools"):
                message["tool_calls"] = [
                    {"id": f"call_{uuid.uuid4().hex[:8]}", "type": "function",
                     "function": {"name": n, "arguments": a}}
                    for n, a in self.tool_script[last]
                ]  # fmt: skip
            elif body["model"] == "judge":
                message["content"] = self.judge("\n\n".join(m["content"] for m in body["messages"]))
            else:
                message["content"] = SUBJECT[last]
            return {
                "id": f"chatcmpl-{uuid.uuid4().hex}",
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
            }

        return app


KEYED = {**ENV, "OPENAI_API_KEY": "sk-test", "COLUMNS": "200"}


@pytest.fixture(scope="module")
def judged_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from bfcl_ref import real_rows  # skips without BFCL's package, as test_hub_bfcl does

    root = tmp_path_factory.mktemp("judged")
    (root / "data").mkdir()
    (root / "data" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    rating = {"template": "[Q]{{ questions | join(' / ') }} [A]{{ answer }} TURN {{ turn }} "
              "Rate 1-10 as [[rating]].", "per_turn": True, "max_tokens": 16}  # fmt: skip
    (root / "chat.yaml").write_text(
        _spec("chat", {"metrics": ["rating"], "judge": rating}, {"turns": [FOLLOW_UP]})
    )
    pairwise = {"template": "{{ question }} <<A>>{{ answer_a }}<</A>> <<B>>{{ answer_b }}<</B>>",
                "verdict": "pairwise", "baseline": "baseline"}  # fmt: skip
    (root / "paired.yaml").write_text(_spec("paired", {"metrics": ["win_rate"], "judge": pairwise}))
    rows = real_rows("simple_python")[:1]
    (root / "tools" / "bfcl_simple").mkdir(parents=True)
    (root / "tools" / "bfcl_simple" / "test.jsonl").write_text(json.dumps(rows[0]) + "\n")
    name = rows[0]["function"][0]["name"]
    question = rows[0]["question"][0][-1]["content"]
    scripted = Scripted({question: [(name, BROKEN_ARGUMENTS)]})
    store = root / "store.sqlite"
    with running(scripted.app()) as url:
        common = ["--base-url", f"{url}/v1", "--chat-api", "--store", store, "--max-retries", "0"]
        ok(gnomon(
            "run", "--model", "openai:subject", "--bench", f"{root / 'chat.yaml'},"
            f"{root / 'paired.yaml'}", "--judge", "openai:judge", "--judge-base-url",
            f"{url}/v1", "--out", root / "out1", *common, env=KEYED,
        ))  # fmt: skip
        ok(gnomon(
            "run", "--model", "openai:caller", "--bench", "bfcl_simple", "--data",
            root / "tools", "--out", root / "out2", *common, env=KEYED,
        ))  # fmt: skip
    judged = json.loads((root / "out1" / "results.json").read_text())["run_id"]
    tools = json.loads((root / "out2" / "results.json").read_text())["run_id"]
    yield {"path": store, "judged": judged, "tools": tools, "function": name, "row": rows[0]}


def _expected_texts() -> list[str]:
    """What the judged sample pages must show (as escaped HTML text)."""
    return [
        "What is 2+1?", "The answer is 3.",
        "Yes: 3 <i>surely</i>.", SCRIPT_REPLY, UNREADABLE_ONCE, "Second turn: Rating: [[6]]",
    ]  # fmt: skip


def _assert_judged_pages(chat: str, paired: str) -> None:
    for text in _expected_texts():
        assert escape(text) in chat, text
    assert "<script>alert" not in chat and "&lt;script&gt;alert(" in chat
    assert "<i>surely</i>" not in chat
    # each turn's answer; a follow-up question the result does not keep is marked, not invented
    assert '<pre class="output turn-answer">The answer is 3.</pre>' in chat
    assert re.search(r'data-turn="2"><small>turn 2: question</small><small class="note">', chat)
    # each reply with the verdict read from it, and the turn it judged
    assert re.search(r"reply 1 \(turn 1\): <code class=\"verdict\">8</code>", chat)
    assert re.search(r"reply 2 \(turn 2\): <code class=\"verdict\">6</code>", chat)
    assert "after 1 unreadable" in chat
    # the failed judgment: not scored, its raw replies shown (escaped), 3 attempts
    failed = re.search(r'<details class="failures".*?</details>', chat, re.S)
    assert failed is not None and 'data-sample="q2"' in failed.group(0)
    # every attempt's raw reply, for both turns: 2 x 3, as JSON strings
    assert failed.group(0).count("&#34;I will not rate &lt;b&gt;this&lt;/b&gt; one.&#34;") == 6
    assert "<b>this</b>" not in chat
    # pairwise: both orders, each labelled, each verdict
    assert 'reply 1 (model as A, baseline as B): <code class="verdict">A&gt;B</code>' in paired
    assert 'reply 2 (baseline as A, model as B): <code class="verdict">A&gt;B</code>' in paired
    assert paired.count(escape(PAIRWISE_REPLY)) == 4  # 2 samples x 2 orders


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
