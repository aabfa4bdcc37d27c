"""Reasoning models: thinking kept apart from the answer and stored, answers read from the final
part only, generations cut at their token budget counted, `--max-tokens`, windows too small for
a request, and the chat forms of MATH-500, AIME and GPQA that reasoning-model reports use.

A scripted OpenAI-compatible server on loopback plays a reasoning model whose replies the tests
know (thinking in `reasoning_content`, or in `<think>` blocks inside the content, some cut at
their budget); the tiny local models with a chat template play the local side.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import CHAT_TEMPLATE
from gnomon_cli import ENV, gnomon, ok, summary
from loopback import chat_app, running

from gnomon.engines.answers import opens_thinking, split_thinking
from gnomon.hub import resolve
from gnomon.hub.leaderboard_hooks import SPLIT_HOOKS
from gnomon.pipeline.plan import plan_bench
from gnomon.rank.board import load_board
from gnomon.rank.web import create_app
from gnomon.rowgen import make_rows
from gnomon.store import Store
from gnomon_testing.windows import small_window_copy

KEYED = {**ENV, "OPENAI_API_KEY": "sk-test", "COLUMNS": "200"}  # a wide table, unwrapped
INSTRUCTION = "\nPlease reason step by step, and put your final answer within \\boxed{}."

# MATH-500 rows (its schema) and what the scripted reasoning model answers to each problem:
# (reasoning_content or None, content, finish_reason)
ROWS = [
    ("What is 2+3?", "5", ("Add them: \\boxed{9}, no wait.", "So it is \\boxed{5}.", "stop")),
    ("What is 4+4?", "8", (None, "<think>Maybe \\boxed{7}.</think>The answer is \\boxed{8}.",
                           "stop")),
    # the right answer only inside the thinking: it must not count
    ("What is 6+6?", "12", (None, "<think>It is \\boxed{12}.</think>I am not sure.", "stop")),
    # cut inside the thinking (an unclosed block): no answer, cut at max tokens
    ("What is 1+2?", "3", (None, "<think>Working: 1+2 is \\boxed{3}", "length")),
    # thinking apart, the budget spent before any answer
    ("What is 5+5?", "10", ("Five and five: \\boxed{10}", "", "length")),
]  # fmt: skip
REPLIES = {problem: reply for problem, _, reply in ROWS}


def math_rows() -> list[dict[str, Any]]:
    return [
        {"problem": p, "solution": f"So $\\boxed{{{a}}}$.", "answer": a, "subject": "Algebra",
         "level": 1, "unique_id": f"test/algebra/{i}.json"}
        for i, (p, a, _) in enumerate(ROWS)
    ]  # fmt: skip


def write_rows(root: Path, bench: str, split: str, rows: list[dict[str, Any]]) -> Path:
    folder = root / bench
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


class Reasoner:
    """A served reasoning model: answers from the problem in the user's message, records every
    request body it is sent."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def app(self) -> Any:
        usage = {"prompt_tokens": 30, "completion_tokens": 20, "total_tokens": 50}
        return chat_app(self.reply, ("r1",), usage=usage, bodies=self.bodies)

    def reply(self, body: dict) -> Any:
        from fastapi.responses import JSONResponse

        problem = body["messages"][-1]["content"].removesuffix(INSTRUCTION)
        if problem.startswith("Long:"):  # as vLLM refuses a prompt over its window
            message = "This model's maximum context length is 4096 tokens. However, you "
            message += f"requested {body['max_tokens'] + 5000} tokens. Please reduce it."
            error = {"message": message, "type": "BadRequestError", "code": 400}
            return JSONResponse({"object": "error", **error}, status_code=400)
        reasoning, content, finish = REPLIES[problem]
        if body["temperature"] > 0:  # sampled: right on even seeds, one more on odd ones
            answer = int(dict((p, a) for p, a, _ in ROWS)[problem]) + body["seed"] % 2
            reasoning, content, finish = "Sampling.", f"So \\boxed{{{answer}}}.", "stop"
        reply: dict[str, Any] = {"content": content, "finish_reason": finish}
        if reasoning is not None:
            reply["reasoning_content"] = reasoning
        return reply


@pytest.fixture
def served() -> Iterator[tuple[Reasoner, str]]:
    reasoner = Reasoner()
    with running(reasoner.app()) as url:
        yield reasoner, f"{url}/v1"


def served_run(url: str, data: Path, store: Path, out: Path, *extra: object) -> list[object]:
    return [
        "run", "--model", "openai:r1", "--base-url", url, "--chat-api", "--bench",
        "math_500_chat", "--data", data, "--store", store, "--out", out, "--max-retries", "0",
        *extra,
    ]  # fmt: skip


def test_served_reasoning_is_kept_apart_and_only_the_final_answer_scores(
    served: tuple[Reasoner, str], tmp_path: Path
) -> None:
    reasoner, url = served
    data = write_rows(tmp_path / "data", "math_500_chat", "test", math_rows())
    store, out = tmp_path / "s.sqlite", tmp_path / "out"
    proc = ok(gnomon(*served_run(url, data, store, out), env=KEYED))
    # what was sent: the problem and OpenCompass's instruction as the user's one message
    assert len(reasoner.bodies) == 5
    for body in reasoner.bodies:
        assert [m["role"] for m in body["messages"]] == ["user"]
        assert body["messages"][0]["content"].endswith(INSTRUCTION)
        assert body["max_tokens"] == 32768  # the spec's budget
    report = json.loads((out / "results.json").read_text())
    bench = report["benchmarks"]["math_500_chat"]
    assert bench["metrics"]["math_equiv"]["value"] == pytest.approx(2 / 5)
    assert bench["no_answer"] == 3 and bench["cut_at_max_tokens"] == 2
    assert bench["truncated"] == 0  # no prompt was cut to fit
    assert "2 cut at max tokens, 3 no answer" in proc.stdout
    samples = {s["sample_id"]: s for s in map(json.loads, (out / "samples.jsonl").open())}
    by_problem = {ROWS[int(k.split("/")[-1].split(".")[0])][0]: s for k, s in samples.items()}
    first = by_problem["What is 2+3?"]
    assert first["correct"] and first["output"] == "So it is \\boxed{5}."
    assert first["reasoning"] == "Add them: \\boxed{9}, no wait."
    second = by_problem["What is 4+4?"]
    assert second["correct"] and second["reasoning"] == "Maybe \\boxed{7}."
    assert "<think>" not in second["output"] and "7" not in second["output"]
    hidden = by_problem["What is 6+6?"]  # the right answer only in the thinking
    assert not hidden["correct"] and hidden["extractor"] == "none"
    assert hidden["output"] == "I am not sure." and "\\boxed{12}" in hidden["reasoning"]
    for problem in ("What is 1+2?", "What is 5+5?"):
        cut = by_problem[problem]
        assert cut["output"] == "" and cut["extractor"] == "none" and not cut["correct"]
        assert cut["cut_at_max_tokens"] is True and cut["reasoning"]
    assert "cut_at_max_tokens" not in first
    # the store keeps the thinking with the answer, apart from its text
    with sqlite3.connect(store) as conn:
        answers = [json.loads(a) for (a,) in conn.execute("SELECT answer FROM answers")]
    assert {a.get("reasoning") for a in answers} >= {"Add them: \\boxed{9}, no wait."}
    assert all("<think>" not in a["text"] for a in answers)
    # the sample browser shows the thinking apart, and the counts
    run_id = report["run_id"]
    with running(create_app(store)) as base, httpx.Client(base_url=base) as client:
        page = client.get(f"/run/{run_id}/math_500_chat").text
    assert 'class="output reasoning">Add them: \\boxed{9}, no wait.' in page
    assert '<span class="flag" data-flag="cut at max tokens">2 cut at max tokens</span>' in page
    assert '<span class="flag" data-flag="no answer">3 no answer</span>' in page
    # and the model's page, beside the score the run stands behind
    with running(create_app(store)) as base, httpx.Client(base_url=base) as client:
        board_page = client.get("/").text
        slug = board_page.split('href="/model/', 1)[1].split('"', 1)[0]
        model_page = client.get(f"/model/{slug}").text
    assert '<small class="flag" data-flag="cut at max tokens">2 cut at max tokens</small>' in (
        model_page
    )
    assert '<small class="flag" data-flag="no answer">3 no answer</small>' in model_page


def test_max_tokens_is_a_setting_of_its_own(served: tuple[Reasoner, str], tmp_path: Path) -> None:
    """`--max-tokens` changes what is asked: new answers (never the stored 32768-token ones),
    recorded with the run, and a leaderboard column of its own."""
    reasoner, url = served
    data = write_rows(tmp_path / "data", "math_500_chat", "test", math_rows())
    store = tmp_path / "s.sqlite"
    ok(gnomon(*served_run(url, data, store, tmp_path / "a"), env=KEYED))
    proc = ok(gnomon(*served_run(url, data, store, tmp_path / "b", "--max-tokens", 64), env=KEYED))
    assert summary(proc.stdout) == (5, 0, 5)
    assert [b["max_tokens"] for b in reasoner.bodies[5:]] == [64] * 5
    results = json.loads((tmp_path / "b" / "results.json").read_text())
    assert results["config"]["max_tokens"] == 64
    again = ok(gnomon(*served_run(url, data, store, tmp_path / "c", "--max-tokens", 64), env=KEYED))
    assert summary(again.stdout) == (5, 5, 0) and len(reasoner.bodies) == 10
    db = Store(store)
    try:
        board = load_board(db)
    finally:
        db.close()
    columns = board.benches
    assert {"math_500_chat", "math_500_chat@64tok"} <= set(columns)
    assert columns["math_500_chat@64tok"].setting.label == "max 64 tokens"
    assert not columns["math_500_chat@64tok"].standard


def test_a_served_model_refusing_a_long_prompt_fails_that_sample(
    served: tuple[Reasoner, str], tmp_path: Path
) -> None:
    _, url = served
    rows = math_rows()[:2]
    rows[1]["problem"] = "Long: " + "and then " * 50
    data = write_rows(tmp_path / "data", "math_500_chat", "test", rows)
    proc = ok(gnomon(*served_run(url, data, tmp_path / "s.sqlite", tmp_path / "o"), env=KEYED))
    assert summary(proc.stdout)[2] == 1  # the other sample was answered
    text = " ".join(proc.stdout.split())
    assert "1 samples could not be answered" in text
    assert "HTTP 400" in text and "maximum context length is 4096 tokens" in text


def test_samples_average_over_k_answers(served: tuple[Reasoner, str], tmp_path: Path) -> None:
    """`--samples k` on a chat benchmark: k answers drawn at the temperature, each from its own
    seed, and each metric their mean (avg@k)."""
    reasoner, url = served
    data = write_rows(tmp_path / "data", "math_500_chat", "test", math_rows()[:2])
    store, out = tmp_path / "s.sqlite", tmp_path / "out"
    ok(gnomon(*served_run(url, data, store, out, "--samples", 4, "--temperature", 0.6),
              env=KEYED))  # fmt: skip
    assert sorted((b["seed"], b["temperature"]) for b in reasoner.bodies) == [
        (seed, 0.6) for seed in (0, 0, 1, 1, 2, 2, 3, 3)
    ]
    bench = json.loads((out / "results.json").read_text())["benchmarks"]["math_500_chat"]
    assert bench["metrics"]["math_equiv"]["value"] == pytest.approx(0.5)
    samples = [json.loads(line) for line in (out / "samples.jsonl").open()]
    for sample in samples:
        assert sample["metrics"]["math_equiv"] == pytest.approx(0.5)
        assert [a["correct"] for a in sample["answers"]] == [True, False, True, False]
    proc = ok(gnomon(*served_run(url, data, store, tmp_path / "greedy"), env=KEYED))
    assert summary(proc.stdout) == (2, 0, 2)  # greedy is another request


def test_sampled_runs_are_a_setting_of_their_own(
    served: tuple[Reasoner, str], tmp_path: Path
) -> None:
    """avg@k at a temperature is another measurement than one greedy answer: its own leaderboard
    column (by k and temperature), never the greedy column nor its means, however new."""
    _, url = served
    data = write_rows(tmp_path / "data", "math_500_chat", "test", math_rows())
    store = tmp_path / "s.sqlite"
    ok(gnomon(*served_run(url, data, store, tmp_path / "g"), env=KEYED))  # greedy: 2/5
    for extra in (("--samples", 4, "--temperature", 0.6), ("--samples", 2)):  # sampled: 1/2
        ok(gnomon(*served_run(url, data, store, tmp_path / "s", *extra), env=KEYED))
    # said outright, greedy is greedy: the standard setting, the stored answers reused
    proc = ok(gnomon(*served_run(url, data, store, tmp_path / "g1", "--samples", 1,
                                 "--temperature", 0), env=KEYED))  # fmt: skip
    assert summary(proc.stdout) == (5, 5, 0)
    db = Store(store)
    try:
        board = load_board(db)
    finally:
        db.close()
    assert set(board.benches) == {
        "math_500_chat", "math_500_chat@avg4t0.6", "math_500_chat@avg2",
    }  # fmt: skip
    sampled = board.benches["math_500_chat@avg4t0.6"]
    assert sampled.setting.label == "avg@4 at temperature 0.6" and not sampled.standard
    assert board.benches["math_500_chat@avg2"].setting.label == "avg@2 at temperature 0.8"
    (model,) = board.models
    assert model.entries["math_500_chat"].score.value == pytest.approx(2 / 5)
    assert model.entries["math_500_chat@avg4t0.6"].score.value == pytest.approx(1 / 2)
    assert model.overall.value == pytest.approx(2 / 5)  # the greedy score alone


def test_score_reads_answers_after_their_thinking(tmp_path: Path) -> None:
    """`gnomon score` on another tool's raw outputs: `<think>` blocks are thinking, kept apart;
    a `\\boxed{}` inside them does not count."""
    rows = math_rows()[:3]
    data = write_rows(tmp_path / "data", "math_500_chat", "test", rows)
    outputs = [
        "<think>is it \\boxed{4}?</think>It is \\boxed{5}.",  # right after the thinking
        "<think>\\boxed{8}</think>No idea.",  # right only inside it
        "<think>\\boxed{12} surely",  # cut inside it
    ]
    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(
        json.dumps({"sample_id": r["unique_id"], "output": o}) + "\n"
        for r, o in zip(rows, outputs, strict=True)
    ))  # fmt: skip
    out = tmp_path / "out"
    ok(gnomon("score", "--bench", "math_500_chat", answers, "--data", data, "--store",
              tmp_path / "s.sqlite", "--out", out))  # fmt: skip
    bench = json.loads((out / "results.json").read_text())["benchmarks"]["math_500_chat"]
    assert bench["metrics"]["math_equiv"]["value"] == pytest.approx(1 / 3)
    assert bench["no_answer"] == 2
    samples = [json.loads(line) for line in (out / "samples.jsonl").open()]
    assert [s["reasoning"] for s in samples] == ["is it \\boxed{4}?", "\\boxed{8}",
                                                 "\\boxed{12} surely"]  # fmt: skip
    assert samples[0]["output"] == "It is \\boxed{5}."


def test_chat_benchmarks_need_a_chat_api_or_template(
    served: tuple[Reasoner, str], llama_dir: Path, tmp_path: Path
) -> None:
    _, url = served
    data = write_rows(tmp_path / "data", "math_500_chat", "test", math_rows())
    args = served_run(url, data, tmp_path / "s.sqlite", tmp_path / "out")
    args.remove("--chat-api")
    proc = gnomon(*args, env=KEYED)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "math_500_chat is a chat benchmark" in proc.stderr and "--chat-api" in proc.stderr
    proc = gnomon("run", "--model", f"hf:{llama_dir}", "--bench", "math_500_chat", "--data",
                  data, "--store", tmp_path / "s.sqlite", "--device", "cpu")  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: math_500_chat is a chat benchmark")
    assert "no chat template" in lines[-1]
    assert not (tmp_path / "s.sqlite").exists() or not _runs(tmp_path / "s.sqlite")


def _runs(store: Path) -> list[Any]:
    with sqlite3.connect(store) as conn:
        return conn.execute("SELECT run_id FROM runs").fetchall()


@pytest.mark.parametrize("value", ["0", "-3", "many", "1.5"])
def test_bad_max_tokens_is_one_line(value: str, llama_dir: Path, tmp_path: Path) -> None:
    proc = gnomon("run", "--model", f"hf:{llama_dir}", "--bench", "gsm8k", "--max-tokens",
                  value, "--store", tmp_path / "s.sqlite")  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "--max-tokens" in lines[0]


# ------------------------------------------------------------------------- local models


def test_max_tokens_local_run(llama_dir: Path, tmp_path: Path) -> None:
    """A base-model generation benchmark under `--max-tokens 3`: three tokens each, counted as
    cut, recorded in the run; the spec's own budget is another request and another answer."""
    data = tmp_path / "gsm"
    data.mkdir()
    rows = [{"question": f"What is {i} + 2?", "answer": f"#### {i + 2}"} for i in range(3)]
    (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    store, out = tmp_path / "s.sqlite", tmp_path / "out"
    base = ["run", "--model", f"hf:{llama_dir}", "--bench", "gsm8k", "--shots", "0", "--data",
            data, "--store", store, "--device", "cpu"]  # fmt: skip
    proc = ok(gnomon(*base, "--max-tokens", "3", "--out", out))
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["max_tokens"] == 3
    bench = results["benchmarks"]["gsm8k"]
    samples = [json.loads(line) for line in (out / "samples.jsonl").open()]
    cut = sum(bool(s.get("cut_at_max_tokens")) for s in samples)
    assert bench["cut_at_max_tokens"] == cut and cut >= 1
    assert f"{cut} cut at max tokens" in proc.stdout
    with sqlite3.connect(store) as conn:
        stored = [json.loads(a) for (a,) in conn.execute("SELECT answer FROM answers")]
    assert all(a["completion_tokens"] <= 3 for a in stored)
    proc = ok(gnomon(*base, "--max-tokens", "4"))
    assert summary(proc.stdout) == (3, 0, 3)  # another budget: asked again


def test_a_budget_that_fills_the_window_fails_each_sample(llama_dir: Path, tmp_path: Path) -> None:
    """Prompt + max tokens beyond the model's window: the sample fails with the reason, the
    run goes on (it used to end the whole run)."""
    small = small_window_copy(llama_dir, tmp_path / "small", 64)
    data = tmp_path / "gsm"
    data.mkdir()
    rows = [{"question": f"What is {i} + 2?", "answer": f"#### {i + 2}"} for i in range(2)]
    (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = ok(gnomon("run", "--model", f"hf:{small}", "--bench", "gsm8k", "--shots", "0",
                     "--data", data, "--store", tmp_path / "s.sqlite", "--device", "cpu",
                     "--max-tokens", "64"))  # fmt: skip
    assert "2 samples could not be answered" in proc.stdout
    assert "do not fit the model's 64-token window" in " ".join(proc.stdout.split())


@pytest.fixture(scope="module")
def thinking_chat_dir(llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Llama with a reasoning model's chat template: the generation prompt opens the
    `<think>` block, so the model's text starts as thinking (DeepSeek-R1's templates do)."""
    import shutil

    model = tmp_path_factory.mktemp("thinking") / "model"
    shutil.copytree(llama_dir, model)
    config_path = model / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["chat_template"] = CHAT_TEMPLATE.replace("<|assistant|>", "<|assistant|><think>\n")
    config_path.write_text(json.dumps(config))
    return model


def test_local_template_that_opens_thinking(thinking_chat_dir: Path, tmp_path: Path) -> None:
    """A local reasoning model cut before `</think>` wrote only thinking: no answer, counted
    as cut, its text kept as reasoning, never scored."""
    data = write_rows(tmp_path / "data", "math_500_chat", "test", math_rows()[:2])
    out = tmp_path / "out"
    proc = ok(gnomon("run", "--model", f"hf:{thinking_chat_dir}", "--bench", "math_500_chat",
                     "--data", data, "--store", tmp_path / "s.sqlite", "--device", "cpu",
                     "--max-tokens", "6", "--out", out, env={**ENV, "COLUMNS": "200"}))  # fmt: skip
    bench = json.loads((out / "results.json").read_text())["benchmarks"]["math_500_chat"]
    samples = [json.loads(line) for line in (out / "samples.jsonl").open()]
    assert bench["no_answer"] == bench["cut_at_max_tokens"] == 2
    for sample in samples:
        assert sample["output"] == "" and sample["reasoning"] and sample["extractor"] == "none"
    assert "2 cut at max tokens, 2 no answer" in proc.stdout
    # the same template formatting a plain benchmark's prompts (`--chat`) opens the block too
    gsm = tmp_path / "gsm"
    gsm.mkdir()
    rows = [{"question": f"What is {i} + 2?", "answer": f"#### {i + 2}"} for i in range(2)]
    (gsm / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    ok(gnomon("run", "--model", f"hf:{thinking_chat_dir}", "--bench", "gsm8k", "--shots", "0",
              "--chat", "--data", gsm, "--store", tmp_path / "s.sqlite", "--device", "cpu",
              "--max-tokens", "6", "--out", tmp_path / "gsm_out"))  # fmt: skip
    for line in (tmp_path / "gsm_out" / "samples.jsonl").open():
        sample = json.loads(line)
        assert sample["output"] == "" and sample["reasoning"] and sample["cut_at_max_tokens"]


def test_serve_gives_the_thinking_apart(thinking_chat_dir: Path) -> None:
    """`gnomon serve` over a template that opens `<think>`: the text is thinking until
    `</think>`, so a reply cut before it has an empty answer and its text as
    `reasoning_content` (as vLLM's reasoning parsers answer)."""
    from gnomon.engines.hf import HFEngine
    from gnomon.serve.app import create_app as serve_app

    engine = HFEngine(str(thinking_chat_dir), device="cpu", dtype="float32", batch_size=1)
    messages = [{"role": "user", "content": "Why does the river move?"}]
    body = {"model": "m", "messages": messages, "max_tokens": 5, "temperature": 0}
    with running(serve_app(engine, "m")) as url:
        response = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 200, response.text
    choice = response.json()["choices"][0]
    assert choice["finish_reason"] == "length"
    assert choice["message"]["content"] == ""
    prompt = engine.tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True
    )
    text = engine.generate_tokens([engine.encode(prompt)], max_tokens=5)[0].text
    assert choice["message"]["reasoning_content"] == text.strip() and text.strip()


def test_a_conversation_longer_than_the_window_fails_that_sample(
    chat_llama_dir: Path, tmp_path: Path
) -> None:
    """A chat benchmark's conversation is never cut from the left (its template's opening and
    first turns would go): a sample that does not fit fails with the reason, the others run."""
    small = small_window_copy(chat_llama_dir, tmp_path / "small", 96)
    rows = math_rows()[:2]
    rows[1]["problem"] = "What is " + " plus ".join(str(i) for i in range(60)) + "?"
    data = write_rows(tmp_path / "data", "math_500_chat", "test", rows)
    proc = ok(gnomon("run", "--model", f"hf:{small}", "--bench", "math_500_chat", "--data", data,
                     "--store", tmp_path / "s.sqlite", "--device", "cpu", "--max-tokens", "8",
                     env={**ENV, "COLUMNS": "200"}))  # fmt: skip
    assert summary(proc.stdout)[2] == 1  # the short one was answered
    assert "1 samples could not be answered" in proc.stdout
    assert "the conversation (" in proc.stdout and "96-token window" in proc.stdout


# ------------------------------------------------------------------- the chat-form specs


def test_split_thinking_and_templates_that_open_it() -> None:
    assert split_thinking("<think>a</think> b") == ("b", "a")
    assert split_thinking("<think>cut short") == ("", "cut short")
    assert split_thinking("x", "thought") == ("x", "thought")
    assert opens_thinking("<|assistant|><think>\n") and not opens_thinking("<think>a</think>")
    assert not opens_thinking("plain prompt")


@pytest.fixture(scope="module")
def oc() -> Any:
    import opencompass_ref

    return opencompass_ref.load()


def _user_messages(bench: str, rows: list[dict[str, Any]], root: Path) -> list[str]:
    spec = resolve(bench)
    write_rows(root, bench, spec.source.eval_split, rows)
    plan = plan_bench(spec, root, None, None, "t")
    messages = []
    for sample in plan.samples:
        (request,) = plan.mode.requests(sample)
        assert request.messages is not None  # a chat benchmark sends a conversation
        assert [m.role for m in request.messages] == ["user"]
        assert request.max_tokens == 32768 and request.until == ()
        messages.append(request.messages[0].content)
    return messages


@pytest.mark.parametrize(
    ("bench", "config", "variable", "column"),
    [
        ("math_500_chat", "math/math_500_gen.py", "math_datasets", "problem"),
        ("aime24_chat", "aime2024/aime2024_gen_17d799.py", "aime2024_datasets", "Problem"),
        ("aime25_chat", "aime2024/aime2024_gen_17d799.py", "aime2024_datasets", "problem"),
    ],
)
def test_math_chat_prompts_are_opencompass_prompts(
    bench: str, config: str, variable: str, column: str, oc: Any, tmp_path: Path
) -> None:
    spec = resolve(bench)
    assert spec.reference == f"opencompass:{Path(config).stem}"
    (cfg,) = oc.dataset_configs(config, variable)
    template = {k: v for k, v in cfg["infer_cfg"]["prompt_template"].items() if k != "type"}
    prompt = oc.PromptTemplate(**template)
    field = cfg["reader_cfg"]["input_columns"][0]
    rows = make_rows(bench, spec.source.eval_split)
    real = Path(__file__).parent / "data" / "real_rows" / f"{bench}.jsonl"
    rows += [json.loads(line) for line in real.read_text().splitlines() if line.strip()]
    ours = _user_messages(bench, rows, tmp_path)
    for row, message in zip(rows, ours, strict=True):
        item = prompt.generate_item({field: row[column]}, output_field=cfg["reader_cfg"][
            "output_column"])  # fmt: skip
        (human,) = [p for p in item if isinstance(p, dict) and p.get("role") == "HUMAN"]
        assert message == human["prompt"]


def _opencompass_mmlu_pro(oc: Any) -> tuple[str, Any]:
    """OpenCompass's MMLU-Pro query and its dataset's option layout (`_parse`), read out of the
    installed files: the config's QUERY_TEMPLATE (a string, stripped) and the function's source,
    run as it is (the rest of those modules needs the whole framework)."""
    import ast

    config = oc.root / "configs" / "datasets" / "mmlu_pro" / "mmlu_pro_0shot_cot_gen_08c1de.py"
    tree = ast.parse(config.read_text(encoding="utf-8"))
    value = next(
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "QUERY_TEMPLATE"
    )
    query = eval(compile(ast.Expression(value), str(config), "eval"), {})  # """...""".strip()
    module = oc.root / "datasets" / "mmlu_pro.py"
    source = module.read_text(encoding="utf-8")
    tree = ast.parse(source)
    keep = [
        node
        for node in tree.body
        if (isinstance(node, ast.FunctionDef) and node.name == "_parse")
        or (isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "CHOICES")
    ]
    namespace: dict[str, Any] = {}
    exec(compile(ast.Module(keep, []), str(module), "exec"), namespace)
    return query, namespace["_parse"]


def test_mmlu_pro_chat_is_opencompass_prompt(oc: Any, tmp_path: Path) -> None:
    spec = resolve("mmlu_pro_chat")
    assert spec.reference == "opencompass:mmlu_pro_0shot_cot_gen_08c1de"
    query, parse = _opencompass_mmlu_pro(oc)
    prompt = oc.PromptTemplate(template={"round": [{"role": "HUMAN", "prompt": query}]})
    rows = make_rows("mmlu_pro_chat", "test")
    rows[0]["options"] = [*rows[0]["options"][:3], "N/A", " padded option  "]  # skipped, kept
    real = Path(__file__).parent / "data" / "real_rows" / "mmlu_pro_chat.jsonl"
    rows += [json.loads(line) for line in real.read_text().splitlines() if line.strip()]
    ours = _user_messages("mmlu_pro_chat", rows, tmp_path)
    for row, message in zip(rows, ours, strict=True):
        item = prompt.generate_item(parse(dict(row)), output_field="answer")
        (human,) = [p for p in item if isinstance(p, dict) and p.get("role") == "HUMAN"]
        assert message == human["prompt"]


# OpenAI simple-evals' multiple-choice query (common.py), written out as the reference text
SIMPLE_EVALS_GPQA = (
    "Answer the following multiple choice question. The last line of your response should be of "
    "the following format: 'Answer: $LETTER' (without quotes) where LETTER is one of ABCD. "
    "Think step by step before answering.\n\n{Question}\n\nA) {A}\nB) {B}\nC) {C}\nD) {D}"
)


def test_gpqa_chat_is_simple_evals_prompt_and_answer(tmp_path: Path) -> None:
    from gnomon.modes import mode_for

    spec = resolve("gpqa_diamond_chat")
    rows = make_rows("gpqa_diamond_chat", "train")
    ours = _user_messages("gpqa_diamond_chat", rows, tmp_path / "a")
    plan = plan_bench(spec, tmp_path / "a", None, None, "t")
    # the options in the order the other gpqa specs shuffle them (lm-eval's seeded shuffle)
    shuffle = SPLIT_HOOKS["gpqa"]()
    for row, sample, message in zip(rows, plan.samples, ours, strict=True):
        shuffled = shuffle(row)
        options = dict(zip("ABCD", shuffled["choices"], strict=True))
        assert message == SIMPLE_EVALS_GPQA.format(Question=row["Question"], **options)
        assert sample.target in "ABCD" and len(sample.target) == 1
        assert f"({sample.target})" == shuffled["answer"]
    mode = mode_for(spec)
    sample = plan.samples[0]
    gold = sample.target
    wrong = next(letter for letter in "ABCD" if letter != gold)
    from gnomon.engines.base import GenerateResult

    def scored(text: str) -> tuple[bool, str]:
        result = mode.result(sample, [GenerateResult(text)])
        return result["correct"], result["extractor"]

    assert scored(f"Reasoning...\nAnswer: {gold}") == (True, "regex:answer")
    assert scored(f"answer:${gold}$") == (True, "regex:answer")
    assert scored(f"Answer: {wrong}\nActually, Answer: {gold}")[0] is False  # the first match
    assert scored("I cannot tell.") == (False, "none")


@pytest.mark.slow
def test_real_instruct_model_runs_the_reasoning_suite(smollm2_gguf: Path, tmp_path: Path) -> None:
    """SmolLM2-135M-Instruct (a real chat model, its own ChatML template) on the real rows of
    every benchmark of `suite:reasoning`, with a short budget: each is asked as a chat, and
    every count the report shows agrees with the samples behind it."""
    from gnomon.hub import resolve_many

    specs = resolve_many("suite:reasoning")
    data = tmp_path / "data"
    real = Path(__file__).parent / "data" / "real_rows"
    for spec in specs:
        rows = [json.loads(line) for line in (real / f"{spec.id}.jsonl").open() if line.strip()]
        write_rows(data, spec.id, spec.source.eval_split, rows[:1])
    out = tmp_path / "out"
    ok(gnomon("run", "--model", f"hf:{smollm2_gguf}", "--bench", "suite:reasoning", "--data",
              data, "--store", tmp_path / "s.sqlite", "--device", "cpu", "--max-tokens", "24",
              "--out", out, timeout=600))  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["max_tokens"] == 24
    samples = [json.loads(line) for line in (out / "samples.jsonl").open()]
    assert {s["benchmark"] for s in samples} == {s.id for s in specs}
    for bench, report in results["benchmarks"].items():
        mine = [s for s in samples if s["benchmark"] == bench]
        assert report["cut_at_max_tokens"] == sum(bool(s.get("cut_at_max_tokens")) for s in mine)
        assert report["no_answer"] == sum(s.get("extractor") == "none" for s in mine)
    with sqlite3.connect(tmp_path / "s.sqlite") as conn:
        prompts = [p for (p,) in conn.execute("SELECT prompt FROM results")]
    # asked as a conversation (LiveCodeBench's with its own system message)
    assert all(p.startswith(("[user]\n", "[system]\nYou are an expert Python")) for p in prompts)
    assert sum(p.startswith("[system]\n") for p in prompts) == 1
