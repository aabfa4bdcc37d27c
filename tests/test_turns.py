"""Conversations (`prompt.turns`) through the real `gnomon` command: turn 2 is asked with the
model's own turn-1 answer, each turn is stored as it comes, a resumed run re-asks only the turn
that failed, and a changed scorer asks nothing.

A scripted OpenAI-compatible chat server on loopback answers from the conversation it is sent:
turn 1 ("Say the word W.") gets W back; turn 2 gets the assistant message it sees in capitals.
So turn 2's answer is right only when the conversation carried turn 1's answer.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from gnomon_cli import ENV, gnomon, ok, rescored, summary
from loopback import chat_app, running

WORDS = ["alpha", "beta", "gamma"]
KEYED = {**ENV, "OPENAI_API_KEY": "sk-test", "COLUMNS": "200"}
JUDGE_TEMPLATE = (
    "{% for q in questions %}[Q{{ loop.index }}] {{ q }}\n[A{{ loop.index }}] "
    "{{ answers[loop.index0] }}\n{% endfor %}[Last] {{ answer }}\nRate the conversation."
)


def spec(bench: str, mode: str = "generate", **extra: Any) -> dict[str, Any]:
    return {
        "id": bench,
        "title": bench,
        "dimension": "instruction-following",
        "version": 1,
        "source": {"files": "data", "eval_split": "test", "id_field": "id"},
        "prompt": {
            "template": "Say the word {{ word }}.",
            "turns": ["Now say it again in capitals."],
            "target": "word | upper",
        },
        "mode": mode,
        "metrics": ["exact_match"],
        "generation": {"until": [], "max_tokens": 16},
        **extra,
    }


def write_spec(root: Path, name: str, body: dict[str, Any]) -> Path:
    path = root / f"{name}.yaml"
    path.write_text(json.dumps(body))  # JSON is YAML
    return path


@pytest.fixture
def bench_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    rows = [{"id": f"r{i}", "word": w} for i, w in enumerate(WORDS)]
    (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    write_spec(tmp_path, "talk", spec("talk"))
    return tmp_path


class Scripted:
    """Answers each turn from the messages it receives, records every body, and can fail turn 2
    for chosen words (HTTP 500)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.fail_turn2: set[str] = set()

    def turns(self, model: str = "subject") -> Counter[tuple[int, str]]:
        """How often each (turn, word) was asked."""
        out: Counter[tuple[int, str]] = Counter()
        for body in self.bodies:
            if body["model"] == model:
                users = [m for m in body["messages"] if m["role"] == "user"]
                word = users[0]["content"].removeprefix("Say the word ").rstrip(".")
                out[len(users), word] += 1
        return out

    def reply(self, body: dict[str, Any]) -> str | None:
        messages = body["messages"]
        if body["model"] == "judge":
            text = messages[-1]["content"]
            said = [line.split("] ", 1)[1] for line in text.splitlines() if line.startswith("[A")]
            return "[[9]]" if len(said) == 2 and said[1] == said[0].upper() else "[[2]]"
        users = [m["content"] for m in messages if m["role"] == "user"]
        if len(users) == 1:
            return users[0].removeprefix("Say the word ").rstrip(".")
        assistant = [m["content"] for m in messages if m["role"] == "assistant"]
        if assistant[0] in self.fail_turn2:
            return None
        return assistant[0].upper()

    def app(self) -> Any:
        return chat_app(self.reply, ("subject", "judge"), usage=None, bodies=self.bodies)


@pytest.fixture
def server() -> Iterator[tuple[Scripted, str]]:
    scripted = Scripted()
    with running(scripted.app()) as url:
        yield scripted, f"{url}/v1"


def run_args(bench_dir: Path, url: str, name: str = "talk", *more: object) -> list[object]:
    return [
        "run", "--model", "openai:subject", "--base-url", url, "--chat-api", "--bench",
        bench_dir / f"{name}.yaml", "--store", bench_dir / "store.sqlite", "--out",
        bench_dir / "out", "--max-retries", "0", *more,
    ]  # fmt: skip


def gn(*args: object) -> Any:
    return gnomon(*args, env=KEYED)


def out_samples(bench_dir: Path) -> dict[str, dict[str, Any]]:
    lines = (bench_dir / "out" / "samples.jsonl").read_text().splitlines()
    return {s["sample_id"]: s for s in map(json.loads, lines)}


def failures(bench_dir: Path) -> dict[str, str]:
    run_id = json.loads((bench_dir / "out" / "results.json").read_text())["run_id"]
    with closing(sqlite3.connect(bench_dir / "store.sqlite")) as db:
        rows = db.execute("SELECT sample_id, reason FROM run_failures WHERE run_id = ?", (run_id,))
        return dict(rows.fetchall())


def test_turn_two_carries_the_models_own_answer_and_is_stored(
    bench_dir: Path, server: tuple[Scripted, str]
) -> None:
    scripted, url = server
    first = ok(gn(*run_args(bench_dir, url)))
    assert summary(first.stdout) == (3, 0, 3)
    assert scripted.turns() == {(t, w): 1 for t in (1, 2) for w in WORDS}
    # turn 2: the first question, the model's own answer to it, then the follow-up
    second = [b for b in scripted.bodies if len(b["messages"]) == 3]
    assert [m["role"] for m in second[0]["messages"]] == ["user", "assistant", "user"]
    by_word = {b["messages"][1]["content"]: b["messages"] for b in second}
    assert set(by_word) == set(WORDS)
    assert by_word["beta"][0]["content"] == "Say the word beta."
    assert by_word["beta"][2]["content"] == "Now say it again in capitals."
    samples = out_samples(bench_dir)
    assert all(s["correct"] for s in samples.values())  # the last turn is the one scored
    assert samples["r1"]["turn_outputs"] == ["beta", "BETA"]
    assert samples["r1"]["turn_questions"] == [
        by_word["beta"][0]["content"],
        by_word["beta"][2]["content"],
    ]
    assert samples["r1"]["prediction"] == "BETA"

    asked = len(scripted.bodies)
    again = ok(gn(*run_args(bench_dir, url)))
    assert summary(again.stdout) == (3, 3, 0) and len(scripted.bodies) == asked

    # a changed metric re-scores the stored conversations without asking anything
    write_spec(bench_dir, "talk2", spec("talk", metrics=["exact_match", "contains"]))
    changed = ok(gn(*run_args(bench_dir, url, "talk2")))
    assert summary(changed.stdout) == (3, 0, 0) and rescored(changed.stdout) == 3
    assert len(scripted.bodies) == asked


def test_failed_turn_two_is_resumed_without_asking_turn_one_again(
    bench_dir: Path, server: tuple[Scripted, str]
) -> None:
    scripted, url = server
    scripted.fail_turn2 = {"beta"}
    first = ok(gn(*run_args(bench_dir, url)))
    assert summary(first.stdout) == (3, 0, 2)
    assert set(failures(bench_dir)) == {"r1"}
    assert scripted.turns() == {(t, w): 1 for t in (1, 2) for w in WORDS}

    scripted.fail_turn2 = set()
    scripted.bodies.clear()
    resumed = ok(gn(*run_args(bench_dir, url)))
    assert summary(resumed.stdout) == (3, 2, 1)
    assert scripted.turns() == {(2, "beta"): 1}  # turn 1 came from the store
    assert scripted.bodies[0]["messages"][1] == {"role": "assistant", "content": "beta"}
    assert failures(bench_dir) == {}
    assert out_samples(bench_dir)["r1"]["turn_outputs"] == ["beta", "BETA"]


def test_judged_conversation_shows_the_judge_every_turn(
    bench_dir: Path, server: tuple[Scripted, str]
) -> None:
    scripted, url = server
    judge = {"template": JUDGE_TEMPLATE, "max_tokens": 8}
    write_spec(bench_dir, "rated", spec("rated", "judged", metrics=["rating"], judge=judge))
    judged = ["--judge", "openai:judge", "--judge-base-url", url]
    first = ok(gn(*run_args(bench_dir, url, "rated", *judged)))
    assert summary(first.stdout) == (3, 0, 3)
    asked = [b["messages"][-1]["content"] for b in scripted.bodies if b["model"] == "judge"]
    assert len(asked) == 3
    beta = next(t for t in asked if "[A1] beta" in t)
    # the questions are the turns' user texts, the answers the model's, `answer` the last
    assert "[Q1] Say the word beta.\n" in beta and "[Q2] Now say it again in capitals.\n" in beta
    assert "[A2] BETA\n[Last] BETA\n" in beta
    samples = out_samples(bench_dir)
    assert all(s["metrics"]["rating"] == 9 for s in samples.values())
    assert samples["r2"]["turn_outputs"] == ["gamma", "GAMMA"]
    again = ok(gn(*run_args(bench_dir, url, "rated", *judged)))
    assert summary(again.stdout) == (3, 3, 0) and len(scripted.bodies) == 9


def test_conversations_refused_where_they_cannot_run(bench_dir: Path) -> None:
    choice = spec("picked", "choice", metrics=["acc"])
    choice["prompt"] = {**choice["prompt"], "choices": "[word]", "target": "0"}
    bad_turn = spec("talk")
    bad_turn["prompt"] = {**bad_turn["prompt"], "turns": ["Again, {{ colour }}."]}
    cases = {
        "choice": (choice, [], "`prompt.turns` (a conversation) is for generate and judged"),
        "bad_turn": (
            bad_turn,
            ["--chat-api"],
            "test.jsonl:1: the row has no field `colour`, which the benchmark's turns[0] uses",
        ),
        "talk": (None, [], "talk is a conversation (prompt.turns)"),  # no --chat-api
    }
    for name, (body, flags, message) in cases.items():
        if body is not None:
            write_spec(bench_dir, name, body)
        proc = gn("run", "--model", "openai:subject", "--base-url", "http://127.0.0.1:9/v1",
                  *flags, "--bench", bench_dir / f"{name}.yaml", "--store",
                  bench_dir / "s.sqlite")  # fmt: skip
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert message in proc.stderr, proc.stderr
    answers = bench_dir / "answers.jsonl"
    answers.write_text('{"sample_id": "r0", "output": "ALPHA"}\n')
    proc = gn("score", "--bench", bench_dir / "talk.yaml", answers, "--store", bench_dir / "s")
    assert proc.returncode == 2 and "builds each turn on the model's last answer" in proc.stderr


@pytest.mark.slow
def test_local_chat_model_answers_a_conversation_and_resumes(
    bench_dir: Path, chat_llama_dir: Path, llama_dir: Path
) -> None:
    """A local model takes the conversation through its chat template (no --chat needed); one
    without a template cannot take it, and says so."""
    common = ["--bench", bench_dir / "talk.yaml", "--store", bench_dir / "store.sqlite",
              "--device", "cpu", "--dtype", "float32", "--out", bench_dir / "out"]  # fmt: skip
    first = ok(gnomon("run", "--model", f"hf:{chat_llama_dir}", *common))
    assert summary(first.stdout) == (3, 0, 3) and not failures(bench_dir)
    samples = out_samples(bench_dir)
    assert all(len(s["turn_outputs"]) == 2 for s in samples.values())
    assert all(s["output"] == s["turn_outputs"][1] for s in samples.values())
    with closing(sqlite3.connect(bench_dir / "store.sqlite")) as db:
        (answers,) = db.execute("SELECT COUNT(*) FROM answers").fetchone()
    assert answers == 6  # both turns of every sample
    again = ok(gnomon("run", "--model", f"hf:{chat_llama_dir}", *common))
    assert summary(again.stdout) == (3, 3, 0) and "loading" not in again.stderr

    # --chat: the same conversation after a system message, a new set of requests
    chat = ok(gnomon("run", "--model", f"hf:{chat_llama_dir}", "--chat", "--system-prompt",
                     "Be brief.", *common))  # fmt: skip
    assert summary(chat.stdout) == (3, 0, 3)
    with closing(sqlite3.connect(bench_dir / "store.sqlite")) as db:
        prompts = [r[0] for r in db.execute("SELECT prompt FROM results")]
    assert sum(p.startswith("[system]\nBe brief.\n\n[user]\nSay the word") for p in prompts) == 3

    plain = gnomon("run", "--model", f"hf:{llama_dir}", *common)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    assert "no chat template" in plain.stderr
