"""A store written by real runs against a scripted OpenAI-compatible server on loopback that
plays a model, its judge and a tool-calling model, for the sample browser's tests
(tests/test_rank_judged_samples.py, tests/test_rank_browser.py).

The judge follows rules the tests know: on a conversation's first turn it writes a `<script>`
beside its rating, its first reply about the second turn is unreadable (asked again, then read),
it never gives a readable verdict about 2+2 (that judgment fails), and in the pairwise benchmark
it always prefers answer A, so the two orders disagree.
"""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import Any

from gnomon_cli import ENV, gnomon, ok
from loopback import running

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
SCRIPT_REPLY = "Fine. <script>window.__gnomon_pwned = 1</script> Rating: [[8]]"
UNREADABLE_ONCE = "Hmm, I wonder about turn two."
REFUSED = "I will not rate <b>this</b> one."
PAIRWISE_REPLY = "A reads better \ud800. [[A>B]]"  # a lone surrogate: shown as U+FFFD
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
        from fastapi import FastAPI, Response

        app = FastAPI()

        @app.post("/v1/chat/completions")
        def chat(body: dict) -> Response:
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
            reply = {
                "id": f"chatcmpl-{uuid.uuid4().hex}",
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
            }
            # ASCII JSON: a lone surrogate travels as its \u escape, as a real server sends it
            return Response(json.dumps(reply), media_type="application/json")

        return app


KEYED = {**ENV, "OPENAI_API_KEY": "sk-test", "COLUMNS": "200"}


def build_judged_store(root: Path) -> dict[str, Any]:
    """Two runs in `root/store.sqlite`: `subject` on the conversation and pairwise benchmarks
    (judged by `judge`), `caller` on one real BFCL row answered with arguments that are no JSON.
    Skips without BFCL's package, as tests/test_hub_bfcl.py does."""
    from bfcl_ref import real_rows

    (root / "data").mkdir(parents=True)
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
    return {"path": store, "judged": judged, "tools": tools, "function": name, "row": rows[0]}
