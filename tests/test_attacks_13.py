"""Bad input at the seams of issue #13's parts: judges, tools, settings and suites together.

Each test here failed on the code before its fix: a tool call whose arguments nest too deep for
the JSON reader, a suite of judged and unjudged benchmarks run without `--judge`, a failed run's
judge electing the leaderboard's standard column, and BFCL runs split between columns by the
chat API their mode requires or by a `--max-tokens` the board did not see.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from gnomon_cli import ENV, gnomon, ok
from loopback import chat_app, running

from gnomon.engines.base import ToolCall
from gnomon.engines.tool_calls import parse_tool_calls
from gnomon.hub import resolve
from gnomon.rank.settings import setting_of
from gnomon.scoring.bfcl.verdict import judge_answer

KEYED = {**ENV, "OPENAI_API_KEY": "sk-test", "COLUMNS": "200"}

# ------------------------------------------------------------------------------ tool calls

FUNCTIONS = [
    {
        "name": "f",
        "description": "adds one",
        "parameters": {"type": "dict", "properties": {"x": {"type": "integer"}}, "required": ["x"]},
    }
]


@pytest.mark.parametrize(
    "nested", ["[" * 100_000 + "]" * 100_000, '{"x": ' * 5000 + "1" + "}" * 5000]
)
def test_arguments_nested_past_the_json_reader_are_a_wrong_call(nested: str) -> None:
    """Arguments no JSON reader takes are invalid arguments: wrong for the AST and relevance
    checks, no call for irrelevance, the reason kept; never a scorer crash (a failed sample)."""
    for checker, valid in (("ast", False), ("relevance", False), ("irrelevance", True)):
        decoded, verdict = judge_answer(
            checker, [ToolCall("f", nested)], functions=FUNCTIONS,
            answers=[{"f": {"x": [1]}}], category="simple",
        )  # fmt: skip
        assert verdict.valid is valid, checker
        assert "not JSON" in decoded.error and not decoded.calls


@pytest.mark.parametrize(
    "written",
    [
        "<tool_call>" + "[" * 100_000 + "</tool_call>",
        '<tool_call>{"name": "f", "arguments": ' + "[" * 100_000 + "]" * 100_000 + "}</tool_call>",
        "[" * 100_000 + "]" * 100_000,
    ],
)
def test_a_local_models_call_nested_past_the_json_reader_stays_text(written: str) -> None:
    """A local model's text that no JSON reader takes is no call: its answer keeps the text,
    instead of the engine failing on it."""
    assert parse_tool_calls(written) == (written, ())


# ------------------------------------------------------------------- suites without --judge


def test_judged_benchmarks_without_judge_one_line_before_any_data_loads() -> None:
    """suite:chat mixes judged benchmarks with others: without --judge the run stops at once
    with one line naming every judged one and the option, before a dataset is read (offline,
    the first benchmark's data would fail first otherwise)."""
    proc = gnomon(
        "run", "--model", "openai:m", "--base-url", "http://127.0.0.1:9/v1", "--chat-api",
        "--bench", "suite:chat", "--store", "/nonexistent/dir/store.sqlite", env=KEYED,
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and "--judge" in lines[0]
    for judged in ("mt_bench", "alpaca_eval", "arena_hard_v2"):
        assert judged in lines[0]
    assert "ifeval" not in lines[0] and "cannot load" not in lines[0]


@pytest.mark.parametrize("bench", ["alpaca_eval", "arena_hard_v2", "mt_bench"])
def test_judged_chat_benchmarks_are_asked_as_chats(bench: str, llama_dir: Path) -> None:
    """AlpacaEval and Arena-Hard instruct chat models, whose answers their references generate
    through the chat template: a served model needs its chat API and a local model a template,
    as for MT-Bench, instead of the instruction sent as bare text (which the board would then
    mix with chat answers in one column)."""
    served = gnomon(
        "run", "--model", "openai:m", "--base-url", "http://127.0.0.1:9/v1", "--bench", bench,
        "--judge", "openai:j", "--judge-base-url", "http://127.0.0.1:9/v1", env=KEYED,
    )  # fmt: skip
    assert served.returncode == 2 and "add --chat-api" in served.stderr, served.stderr
    local = gnomon("run", "--model", f"hf:{llama_dir}", "--bench", bench, "--judge", "openai:j",
                   "--judge-base-url", "http://127.0.0.1:9/v1", env=KEYED)  # fmt: skip
    assert local.returncode == 2 and "use a chat model" in local.stderr, local.stderr


def test_tool_benchmarks_refuse_a_model_without_chat_template_before_it_loads(
    llama_dir: Path, tmp_path: Path
) -> None:
    """Tools reach a local model only through its chat template: a base model is refused in
    one line before it loads, as for chat benchmarks, not after a run was recorded."""
    from gnomon.rowgen.bfcl import _make

    data = tmp_path / "data"
    data.mkdir()
    rows = _make("bfcl_simple", 2, 0)
    (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    store = tmp_path / "s.sqlite"
    proc = gnomon("run", "--model", f"hf:{llama_dir}", "--bench", "bfcl_simple", "--data", data,
                  "--store", store)  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "use a chat model" in proc.stderr and "bfcl_simple" in proc.stderr
    assert "loading" not in proc.stderr + proc.stdout
    if store.exists():  # no run left behind
        with sqlite3.connect(store) as conn:
            assert conn.execute("SELECT COUNT(*) FROM runs").fetchone() == (0,)


# ------------------------------------------------------------------ judges on the board


def _server() -> Any:
    """The model under test (`subject`) and one judge (`judge`); any other model is refused,
    as a server refuses a misspelt judge."""
    from fastapi.responses import JSONResponse

    def reply(body: dict) -> Any:
        if body["model"] not in ("subject", "judge"):
            return JSONResponse({"error": {"message": "no such model"}}, status_code=404)
        said = "\n".join(m["content"] for m in body["messages"])
        if body["model"] == "judge" and "GARBLE" in said:
            return "I will not say."
        return "An answer." if body["model"] == "subject" else "[[A>B]]"

    return chat_app(reply, ("subject", "judge"))


def _paired(tmp_path: Path, *questions: str) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    asked = questions or ("Q0?", "Q1?", "Q2?")
    rows = [{"id": f"q{i}", "question": q, "baseline": "B."} for i, q in enumerate(asked)]
    (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = {
        "id": "paired", "title": "paired", "dimension": "subjective", "version": 1,
        "source": {"files": "data", "eval_split": "test", "id_field": "id"},
        "prompt": {"template": "{{ question }}", "target": "baseline"}, "mode": "judged",
        "metrics": ["win_rate"], "generation": {"until": [], "max_tokens": 16},
        "judge": {"template": "{{ question }} A: {{ answer_a }} B: {{ answer_b }}",
                  "verdict": "pairwise", "baseline": "baseline"},
    }  # fmt: skip
    path = tmp_path / "paired.yaml"
    path.write_text(json.dumps(spec))
    return path


def test_a_run_whose_judge_never_answered_does_not_elect_the_standard_judge(
    tmp_path: Path,
) -> None:
    """The usual judge of a column is the one that judged the most models: a run whose judge
    could not be reached (a misspelt name) judged nobody, and must not push the real scores
    into a side column, out of the means."""
    from gnomon.rank.board import load_board
    from gnomon.store import Store

    spec = _paired(tmp_path)
    store = tmp_path / "store.sqlite"
    with running(_server()) as url:
        base = [
            "run", "--model", "openai:subject", "--base-url", f"{url}/v1", "--chat-api",
            "--bench", spec, "--store", store, "--max-retries", "0", "--judge-base-url",
            f"{url}/v1",
        ]  # fmt: skip
        ok(gnomon(*base, "--judge", "openai:judge", env=KEYED))
        typo = gnomon(*base, "--model-id", "subject2", "--judge", "openai:jduge", env=KEYED)
    assert typo.returncode != 0 and "jduge" in typo.stderr  # a run is left, with no score
    db = Store(store, create=False)
    try:
        board = load_board(db)
    finally:
        db.close()
    column = board.benches["paired"]
    assert column.judge_key is not None and "jduge" not in column.judge_key
    scored = [m.entries["paired"] for m in board.models if "paired" in m.entries]
    assert any(e.score is not None for e in scored)


def test_a_failed_judgment_is_not_promised_a_retry(tmp_path: Path) -> None:
    """An unreadable judgment's replies are stored and read back by the same command, which
    fails it again: the run must not tell the user that re-running retries it."""
    spec = _paired(tmp_path, "Q0?", "GARBLE?")
    with running(_server()) as url:
        args = [
            "run", "--model", "openai:subject", "--base-url", f"{url}/v1", "--chat-api",
            "--bench", spec, "--store", tmp_path / "s.sqlite", "--max-retries", "0",
            "--judge", "openai:judge", "--judge-base-url", f"{url}/v1",
        ]  # fmt: skip
        first = ok(gnomon(*args, env=KEYED))
        again = ok(gnomon(*args, env=KEYED))
    for proc in (first, again):
        said = " ".join(proc.stdout.split())
        assert "1 samples could not be answered" in said and "judgment failed after" in said
        assert "retry them" not in said and "fails it again" in said


def test_a_judge_extractor_names_no_judge_prompt_it_lacks(tmp_path: Path) -> None:
    """A generate benchmark whose last extractor is a judge has no `judge:` section to hash:
    the judge line shows no hash ("—"), never the word None."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "test.jsonl").write_text(json.dumps({"id": "q0", "question": "Q?", "ref": "4"}) + "\n")
    spec = {
        "id": "extracted", "title": "extracted", "dimension": "math", "version": 1,
        "source": {"files": "data", "eval_split": "test", "id_field": "id"},
        "prompt": {"template": "{{ question }}", "target": "ref"}, "mode": "generate",
        "metrics": ["exact_match"], "generation": {"until": [], "max_tokens": 16},
        "extract": [{"name": "strict", "regex": "(\\d+)"}, {"name": "judge", "kind": "judge"}],
    }  # fmt: skip
    (tmp_path / "extracted.yaml").write_text(json.dumps(spec))
    with running(_server()) as url:
        proc = ok(gnomon(
            "run", "--model", "openai:subject", "--base-url", f"{url}/v1", "--chat-api",
            "--bench", tmp_path / "extracted.yaml", "--store", tmp_path / "s.sqlite",
            "--judge", "openai:judge", "--judge-base-url", f"{url}/v1", env=KEYED,
        ))  # fmt: skip
    line = next(x for x in proc.stdout.splitlines() if x.startswith("extracted: judged by"))
    assert "None" not in line and "judge prompt —" in line


# ------------------------------------------------------------------- settings of BFCL runs


def _stored(bench: str) -> dict[str, Any]:
    return json.loads(json.dumps(resolve(bench).model_dump()))


@pytest.mark.parametrize("bench", ["bfcl_simple", "bfcl_live_multiple_prompt"])
def test_tool_benchmarks_through_the_chat_api_are_their_standard_setting(bench: str) -> None:
    """A served model must answer BFCL through its chat API (`--chat-api`), a local one through
    its chat template: both are the benchmark's one standard measurement, not a chat variant."""
    spec = _stored(bench)
    assert setting_of(0, spec, {"chat_api": True}, "openai:m@x").standard
    assert setting_of(0, spec, {}, "hf:m").standard


def test_a_tool_benchmarks_token_budget_is_a_setting() -> None:
    """`--max-tokens` changes what a BFCL model may write, as it does for generation: a run cut
    shorter than the spec's budget is another measurement, in a column of its own."""
    spec = _stored("bfcl_simple")
    own = spec["generation"]["max_tokens"]
    assert setting_of(0, spec, {"max_tokens": own}, "hf:m").standard
    short = setting_of(0, spec, {"max_tokens": 8}, "hf:m")
    assert not short.standard and short.max_tokens == 8
