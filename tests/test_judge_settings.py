"""A served judge's request settings and a judged run's sampling options, over real HTTP.

One scripted OpenAI-compatible server on loopback plays the model under test (`subject`) and the
judge (`judge`); the judge can be made to fail (HTTP 503, a retryable fault) or to answer slowly,
and every request is counted, so the tests see how often the judge was asked and how long a run
waited on it.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gnomon_cli import ENV, gnomon, ok
from loopback import running

from gnomon.rank.board import load_board
from gnomon.rank.serialize import board_json
from gnomon.store import Store

ROWS = [{"id": f"q{i}", "question": f"What is 2+{i}?", "reference": str(2 + i)} for i in (1, 2)]
KEYED = {**ENV, "OPENAI_API_KEY": "sk-test", "COLUMNS": "200"}


def spec(bench: str, mode: str, extra: dict[str, Any]) -> str:
    return json.dumps({
        "id": bench, "title": bench, "dimension": "instruction-following", "version": 1,
        "source": {"files": "data", "eval_split": "test", "id_field": "id"},
        "prompt": {"template": "{{ question }}", "target": "reference"},
        "mode": mode, "generation": {"until": [], "max_tokens": 16}, **extra,
    })  # fmt: skip


@pytest.fixture
def bench_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    judge = {"template": "{{ question }} {{ answer }} Rate the answer, [[rating]].",
             "max_tokens": 8}  # fmt: skip
    (tmp_path / "rated.yaml").write_text(spec("rated", "judged", {"metrics": ["rating"],
                                                                  "judge": judge}))  # fmt: skip
    return tmp_path


class Scripted:
    """`subject` answers at once; `judge` rates 9, fails with 503 while `failing`, and waits
    `delay` seconds before answering (without blocking the server)."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.lock = threading.Lock()
        self.failing = False
        self.delay = 0.0

    def app(self) -> Any:
        from fastapi import FastAPI
        from fastapi.responses import JSONResponse

        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def chat(body: dict) -> Any:
            model = body["model"]
            with self.lock:
                self.requests.append(model)
            if model == "judge":
                if self.failing:
                    return JSONResponse({"error": {"message": "busy"}}, status_code=503)
                await asyncio.sleep(self.delay)
            content = "Rating: [[9]]" if model == "judge" else "The answer is 4."
            return {
                "id": f"chatcmpl-{uuid.uuid4().hex}",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
            }  # fmt: skip

        return app

    def count(self, model: str) -> int:
        with self.lock:
            return self.requests.count(model)


@pytest.fixture
def server() -> Iterator[tuple[Scripted, str]]:
    scripted = Scripted()
    with running(scripted.app()) as url:
        yield scripted, f"{url}/v1"


def run(bench_dir: Path, url: str, *extra: object, model: str = "subject") -> Any:
    return gnomon(
        "run", "--model", f"openai:{model}", "--base-url", url, "--chat-api",
        "--bench", bench_dir / "rated.yaml", "--store", bench_dir / "store.sqlite",
        "--judge", "openai:judge", "--judge-base-url", url, *extra, env=KEYED,
    )  # fmt: skip


def test_served_judge_follows_the_runs_retries_unless_given_its_own(
    bench_dir: Path, server: tuple[Scripted, str]
) -> None:
    scripted, url = server
    scripted.failing = True
    started = time.monotonic()
    first = ok(run(bench_dir, url, "--max-retries", "0"))
    # one attempt per judged answer, no backoff: the run's --max-retries 0 holds for the judge
    assert scripted.count("judge") == 2, scripted.requests
    assert time.monotonic() - started < 30
    assert "2 samples could not be answered" in first.stdout
    # the judge's own limit wins over the run's: one retry each, the model's answers reused
    ok(run(bench_dir, url, "--max-retries", "0", "--judge-max-retries", "1"))
    assert scripted.count("judge") == 2 + 4 and scripted.count("subject") == 2


def test_served_judge_follows_the_runs_timeout_unless_given_its_own(
    bench_dir: Path, server: tuple[Scripted, str]
) -> None:
    scripted, url = server
    scripted.delay = 1.5
    slow = ok(run(bench_dir, url, "--max-retries", "0", "--timeout", "0.3"))
    assert "2 samples could not be answered" in slow.stdout  # the judge timed out, not waited on
    assert "within 0.3 s" in slow.stdout, slow.stdout
    waited = ok(run(bench_dir, url, "--max-retries", "0", "--timeout", "0.3",
                    "--judge-timeout", "10"))  # fmt: skip
    assert "could not be answered" not in waited.stdout and "rating" in waited.stdout


def test_judge_limits_are_checked_in_one_line(bench_dir: Path) -> None:
    for option, value in (("--judge-max-retries", "-1"), ("--judge-timeout", "0")):
        proc = run(bench_dir, "http://127.0.0.1:9/v1", option, value)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr and option in proc.stderr
    proc = run(bench_dir, "http://127.0.0.1:9/v1", "--judge-timeout", "inf")
    assert proc.returncode == 2 and "--judge-timeout inf: give a number of seconds" in proc.stderr
    for judge in ((), ("--judge", "hf:some/dir")):  # no judge, or one that is not served
        proc = gnomon("run", "--model", "hf:x", "--bench", bench_dir / "rated.yaml",
                      *judge, "--judge-timeout", "5", env=KEYED)  # fmt: skip
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert "--judge-max-retries and --judge-timeout are for a served judge" in proc.stderr
    # --help says what they default to (in brackets that rich must not take for markup)
    shown = " ".join(ok(gnomon("run", "--help", env={**KEYED, "COLUMNS": "300"})).stdout.split())
    assert "retries of a failed request [run: --max-retries; score: 6]" in shown
    assert "seconds for one request [run: --timeout; score: 60]" in shown


def test_sampling_a_judged_benchmark_is_refused_in_one_line(
    bench_dir: Path, server: tuple[Scripted, str]
) -> None:
    scripted, url = server
    for given in (("--samples", "4"), ("--temperature", "0.7")):
        proc = run(bench_dir, url, *given)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        line = " ".join(proc.stderr.split())  # rich wraps the line
        said = f"so {' '.join(given)} would be ignored"
        assert "rated is scored by a judge from one greedy answer per prompt" in line, line
        assert said in line
        assert "--judge-samples K" in line
    assert not scripted.requests  # refused before anything was asked
    # greedy (the default, or said outright) is what a judged benchmark does: accepted
    ok(run(bench_dir, url, "--samples", "1", "--temperature", "0"))
    assert scripted.count("subject") == 2 and scripted.count("judge") == 2


def test_judge_samples_keep_the_judge_prompt_hash_and_are_shown_apart(
    bench_dir: Path, server: tuple[Scripted, str]
) -> None:
    """K ratings at a temperature ask the judge the same prompt as one greedy rating: the same
    judge prompt hash (no "≠ judge prompt" on the board), the sampling shown beside it."""
    scripted, url = server
    once = ok(run(bench_dir, url, "--out", bench_dir / "once"))
    thrice = ok(run(bench_dir, url, "--judge-samples", "3", "--out", bench_dir / "thrice",
                    model="other"))  # fmt: skip
    assert scripted.count("judge") == 2 + 2 * 3  # the repeats were asked: another scorer
    first, second = (
        json.loads((bench_dir / d / "results.json").read_text())["benchmarks"]["rated"]
        for d in ("once", "thrice")
    )
    assert first["judge_prompt_hash"] == second["judge_prompt_hash"]
    assert "judge_sampling" not in first
    assert second["judge_sampling"] == "3 ratings of each answer at temperature 0.7"
    line = " ".join(thrice.stdout.split())
    assert f"judge prompt {second['judge_prompt_hash']}, 3 ratings of each answer at " in line
    assert "ratings of each" not in once.stdout
    db = Store(bench_dir / "store.sqlite", create=False)
    try:
        board = load_board(db)
    finally:
        db.close()
    entries = {m.name.split(":")[-1].split("@")[0]: m.entries["rated"] for m in board.models}
    assert not any(e.odd_judge_prompt for e in entries.values())
    assert entries["other"].judge_sampling and entries["subject"].judge_sampling is None
    shown = json.dumps(board_json(board))
    assert '"judge_sampling": "3 ratings of each answer at temperature 0.7"' in shown
