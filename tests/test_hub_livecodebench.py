"""LiveCodeBench code generation: its chat prompt, its extraction, its test rules, its data.

The expectations are LiveCodeBench's own rules (lcb_runner, commit 28fef95), written out here:
the generic chat prompt (prompts/code_generation.py), the code between the last two lines that
hold ``` (utils/extraction_utils.py), and testing_util.py's verdicts: every case must pass, the
first failure ends the run; stdin output compared line by line after stripping, differing lines
again as lists of Decimals; functional results (tuples as lists) equal to the JSON output; a
per-test timeout. Rows are made up in the released files' schema, private tests encoded as those
files encode them; a served model on loopback answers a real `gnomon run`.
"""

from __future__ import annotations

import base64
import json
import os
import pickle
import zlib
from pathlib import Path
from typing import Any

import pytest
from gnomon_cli import ENV, gnomon, ok
from loopback import chat_app, running

from gnomon.data import Row
from gnomon.engines.base import GenerateResult
from gnomon.hub import resolve
from gnomon.hub.livecodebench import decode_private
from gnomon.modes.code import CodeMode, last_fenced_block
from gnomon.prompts import Renderer, Sample
from gnomon.rowgen import make_rows
from gnomon.rowgen.livecodebench import encode_private

KEYED = {**ENV, "OPENAI_API_KEY": "sk-test"}
SYSTEM = (
    "You are an expert Python programmer. You will be given a question (problem specification) "
    "and will generate a correct Python program that matches the specification and passes all "
    "tests."
)
WITH_STARTER = (
    "You will use the following starter code to write the solution to the problem and enclose "
    "your code within delimiters."
)
WITHOUT_STARTER = (
    "Read the inputs from stdin solve the problem and write the answer to stdout (do not "
    "directly test on the sample inputs). Enclose your code within delimiters as follows. "
    "Ensure that when the python program runs, it reads the inputs, runs the algorithm and "
    "writes output to STDOUT."
)


def lcb_prompt(row: dict[str, Any]) -> str:
    """get_generic_question_template_answer, as lcb_runner writes it."""
    prompt = f"### Question:\n{row['question_content']}\n\n"
    if row["starter_code"]:
        prompt += f"### Format: {WITH_STARTER}\n```python\n{row['starter_code']}\n```\n\n"
    else:
        prompt += f"### Format: {WITHOUT_STARTER}\n```python\n# YOUR CODE HERE\n```\n\n"
    return prompt + "### Answer: (use the provided format with backticks)\n\n"


def stdin_row(cases: list[tuple[str, str]]) -> dict[str, Any]:
    """A stdin problem of the real schema with these (input, output) cases, the first public."""
    tests = [{"input": i, "output": o, "testtype": "stdin"} for i, o in cases]
    return {
        "question_title": "t", "question_content": "Print it.", "platform": "atcoder",
        "question_id": "abc001_a", "contest_id": "abc001", "contest_date": "2024-01-01T00:00:00",
        "starter_code": "", "difficulty": "easy", "public_test_cases": json.dumps(tests[:1]),
        "private_test_cases": encode_private(tests[1:]), "metadata": "{}",
    }  # fmt: skip


def functional_row(name: str, cases: list[tuple[str, str]]) -> dict[str, Any]:
    tests = [{"input": i, "output": o, "testtype": "functional"} for i, o in cases]
    return {
        **stdin_row([]),
        "platform": "leetcode", "question_id": "3001",
        "starter_code": f"class Solution:\n    def {name}(self, a: int, b: int) -> int:\n        ",
        "public_test_cases": json.dumps(tests[:1]),
        "private_test_cases": encode_private(tests[1:]),
        "metadata": json.dumps({"func_name": name}),
    }  # fmt: skip


def samples_of(rows: list[dict[str, Any]]) -> list[Sample]:
    spec = resolve("livecodebench")
    table = [Row(i, r, f"t:{i}") for i, r in enumerate(rows)]
    return Renderer(spec).render(table, [], same_split=False)


def verdicts(row: dict[str, Any], answers: list[str]) -> list[dict[str, Any]]:
    """Each answer's run, scored by the benchmark's code mode in the sandbox."""
    (sample,) = samples_of([row])
    mode = CodeMode(resolve("livecodebench"))
    batch = [(sample, [GenerateResult(a, False)]) for a in answers]
    return [result["runs"][0] for result in mode.results(batch)]


def fenced(code: str) -> str:
    return f"Here it is:\n```python\n{code}\n```\nDone."


def test_prompt_is_livecodebench_generic_chat_prompt() -> None:
    rows = make_rows("livecodebench", "train")
    samples = samples_of(rows)
    mode = CodeMode(resolve("livecodebench"))
    assert {bool(r["starter_code"]) for r in rows} == {True, False}
    for row, sample in zip(rows, samples, strict=True):
        (request,) = mode.requests(sample)
        assert request.messages is not None
        assert [(m.role, m.content) for m in request.messages] == [
            ("system", SYSTEM),
            ("user", lcb_prompt(row)),
        ]
        assert request.until == () and request.temperature == 0.0


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("```python\na = 1\n```", "a = 1"),
        ("x\n```python\nfirst\n```\nthen\n```\nsecond\n```\n", "second"),  # the last block
        ("```python\nonly an opening fence", ""),  # fewer than two fence lines: nothing
        ("print(1)", ""),  # no fences at all: nothing (LiveCodeBench's chat models)
        ("a ```python b\ncode\nc ``` d", "code"),  # any line holding ``` is a fence line
    ],
)
def test_last_fenced_block(text: str, code: str) -> None:
    assert last_fenced_block(text) == code


def test_private_tests_decode_as_released() -> None:
    cases = [{"input": "1\n", "output": "2\n", "testtype": "stdin"}]
    assert decode_private(encode_private(cases)) == cases
    assert decode_private(json.dumps(cases)) == cases  # early rows: plain JSON text
    with pytest.raises(ValueError, match="neither JSON nor base64"):
        decode_private("not base64 at all!")


class Detonator:
    """A pickle that would run a shell command when loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def malicious(marker: Path) -> str:
    return base64.b64encode(zlib.compress(pickle.dumps(Detonator(marker)))).decode()


def test_a_pickle_naming_a_callable_is_refused_unrun(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(ValueError, match=r"pickle gnomon refuses: it names (posix|os)\.system"):
        decode_private(malicious(marker))
    assert not marker.exists()
    other = base64.b64encode(zlib.compress(pickle.dumps([1, 2]))).decode()
    with pytest.raises(ValueError, match="a pickle of list, not of JSON text"):
        decode_private(other)
    # the whole run refuses the row, naming it, and runs nothing
    row = {**stdin_row([("1\n", "1\n"), ("2\n", "2\n")]), "private_test_cases": malicious(marker)}
    data = tmp_path / "data" / "livecodebench"
    data.mkdir(parents=True)
    (data / "train.jsonl").write_text(json.dumps(row) + "\n")
    proc = gnomon(
        "run", "--model", "openai:m", "--base-url", "http://127.0.0.1:9/v1", "--chat-api",
        "--bench", "livecodebench", "--data", data.parent, "--store", tmp_path / "s.sqlite",
        "--out", tmp_path / "out", env=KEYED,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: ") and "train.jsonl:1: " in line
    assert "pickle gnomon refuses: it names posix.system" in line
    assert not marker.exists()


STDIN_CASES = [("3 4\n", "7\n"), ("10 -2\n", "8\n"), ("-5 1\n", "-4\n")]
STDIN_ANSWERS = {
    "correct": "a, b = map(int, input().split())\nprint(a + b)",
    "main guard": "import sys\ndef main():\n    a, b = map(int, sys.stdin.read().split())\n"
    "    print(a + b)\nif __name__ == '__main__':\n    main()",
    "as decimals": "a, b = map(int, input().split())\nprint(f'{a + b}.000  ')",  # 7.000 == 7
    "exit after printing": "import sys\na, b = map(int, input().split())\nprint(a + b)\n"
    "sys.exit(0)",
    "wrong on a private test": "a, b = map(int, input().split())\nprint(abs(a + b))",
    "an extra line": "a, b = map(int, input().split())\nprint(a + b)\nprint()\nprint(0)",
    "words for numbers": "input()\nprint('seven')",
    "an exception": "a, b = map(int, input().split())\nprint(a // 0)",
    "a timeout": "while True:\n    pass",
}
STDIN_PASS = {"correct", "main guard", "as decimals", "exit after printing"}


def test_an_answer_without_code_counts_as_no_answer() -> None:
    (sample,) = samples_of([stdin_row(STDIN_CASES)])
    mode = CodeMode(resolve("livecodebench"))
    cut = GenerateResult("```python\nprint(", False, finish_reason="length")
    result = mode.result(sample, [cut])
    assert result["extractor"] == "none" and result["cut_at_max_tokens"] is True
    assert result["reason"] == "the completion is empty" and not result["correct"]


def test_stdin_verdicts_follow_testing_util() -> None:
    answers = [*(fenced(code) for code in STDIN_ANSWERS.values()), "a = 1  # no fences"]
    runs = verdicts(stdin_row(STDIN_CASES), answers)
    got = dict(zip([*STDIN_ANSWERS, "no fences"], runs, strict=True))
    assert {name for name, run in got.items() if run["status"] == "passed"} == STDIN_PASS
    # abs: right on test 2 (|10 - 2|), wrong on test 3 (|-5 + 1|)
    assert "test 3 of 3" in got["wrong on a private test"]["reason"]
    assert "wrong answer on test 2 of 3" not in got["wrong on a private test"]["reason"]
    assert "test 1 of 3" in got["an extra line"]["reason"]
    assert "ZeroDivisionError" in got["an exception"]["reason"]
    assert "time limit exceeded (6 s" in got["a timeout"]["reason"]
    assert got["no fences"]["reason"] == "the completion is empty"


FUNCTIONAL_CASES = [("1\n2", "3"), ("5\n-5", "0"), ("[1, 2]\n[3]", "[1, 2, 3]")]
FUNCTIONAL_ANSWERS = {
    "correct": "class Solution:\n    def join(self, a, b):\n        return a + b",
    "a tuple for a list": "class Solution:\n    def join(self, a, b):\n"
    "        return tuple(a + b) if isinstance(a, list) else a + b",
    "helpers and prelude": "class Solution:\n    def join(self, a, b):\n"
    "        return reduce(add, [a, b])",  # functools.reduce, operator.add from the prelude
    "wrong": "class Solution:\n    def join(self, a, b):\n        return a - b",
    "wrong name": "class Solution:\n    def joined(self, a, b):\n        return a + b",
    "an exception": "class Solution:\n    def join(self, a, b):\n        return a + b[0]",
    "a timeout": "class Solution:\n    def join(self, a, b):\n        while True:\n"
    "            pass",
}


def test_functional_verdicts_follow_testing_util() -> None:
    runs = verdicts(
        functional_row("join", FUNCTIONAL_CASES),
        [fenced(code) for code in FUNCTIONAL_ANSWERS.values()],
    )
    got = dict(zip(FUNCTIONAL_ANSWERS, runs, strict=True))
    passed = {name for name, run in got.items() if run["status"] == "passed"}
    assert passed == {"correct", "a tuple for a list", "helpers and prelude"}
    assert "wrong answer on test 1 of 3" in got["wrong"]["reason"]
    assert "has no join" in got["wrong name"]["reason"]
    assert "TypeError" in got["an exception"]["reason"]
    assert "time limit exceeded (6 s" in got["a timeout"]["reason"]


# ------------------------------------------------------------------ a served model, end to end
SOLUTIONS = {  # the problem's statement -> the scripted model's answer
    "Read two integers": "a, b = map(int, input().split())\nprint(a + b)",
    "Read N, then N integers": "n = int(input())\nprint(*[int(v) / 2 for v in input().split()])",
    "Return the sum": "class Solution:\n    def addTwo(self, a, b):\n        return a - b",
    "Return [min(nums)": "class Solution:\n    def minMax(self, nums):\n"
    "        return min(nums), max(nums)",
}
RIGHT = {"Read two integers", "Read N, then N integers", "Return [min(nums)"}


class Coder:
    """A served chat model: answers each problem with the code scripted for its statement."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def app(self) -> Any:
        usage = {"prompt_tokens": 30, "completion_tokens": 20, "total_tokens": 50}
        return chat_app(self.reply, ("coder",), usage=usage, bodies=self.bodies)

    def reply(self, body: dict) -> str:
        question = body["messages"][-1]["content"].removeprefix("### Question:\n")
        code = next(c for start, c in SOLUTIONS.items() if question.startswith(start))
        return f"Sure.\n```python\n{code}\n```\n"


def test_served_chat_model_run_end_to_end(tmp_path: Path) -> None:
    rows = make_rows("livecodebench", "train", 8)
    data = tmp_path / "data" / "livecodebench"
    data.mkdir(parents=True)
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    coder = Coder()
    out = tmp_path / "out"
    with running(coder.app()) as url:
        ok(gnomon(
            "run", "--model", "openai:coder", "--base-url", f"{url}/v1", "--chat-api",
            "--bench", "livecodebench", "--data", data.parent, "--store", tmp_path / "s.sqlite",
            "--out", out, "--max-retries", "0", env=KEYED,
        ))  # fmt: skip
    assert len(coder.bodies) == len(rows)
    by_question = {b["messages"][1]["content"]: b for b in coder.bodies}
    for row in rows:
        body = by_question[lcb_prompt(row)]
        assert body["messages"][0] == {"role": "system", "content": SYSTEM}
        assert body["max_tokens"] == 4096
    samples = [json.loads(line) for line in (out / "samples.jsonl").open()]
    right = {
        s["sample_id"]
        for s in samples
        if any(r["question_content"].startswith(p) for p in RIGHT for r in rows
               if r["question_id"] == s["sample_id"])
    }  # fmt: skip
    assert {s["sample_id"] for s in samples if s["correct"]} == right and len(right) == 6
    assert all(s["extractor"] == "fenced" for s in samples)
    report = json.loads((out / "results.json").read_text())
    assert report["benchmarks"]["livecodebench"]["metrics"]["pass@1"]["value"] == 6 / 8


def test_spec_fields_for_chat_code_benchmarks() -> None:
    from gnomon.hub.spec import BenchmarkSpec

    raw = resolve("livecodebench").model_dump()
    assert BenchmarkSpec.model_validate(raw).prompt.system == SYSTEM
    alone = {**raw, "prompt": {**raw["prompt"], "chat": False}}
    with pytest.raises(ValueError, match="`prompt.system` is the system message of a"):
        BenchmarkSpec.model_validate(alone)


def test_real_row_from_evalscope_sample() -> None:
    """Codeforces 1873A as evalscope's LiveCodeBench sample holds it (its statement cut short
    there), its five real test cases split as public (the example) and private (encoded)."""
    path = Path(__file__).parent / "data" / "real_rows" / "livecodebench.jsonl"
    row = json.loads(path.read_text())
    right = (
        "t = int(input())\nfor _ in range(t):\n    s = input().strip()\n"
        "    print('YES' if sum(a != b for a, b in zip(s, 'abc')) <= 2 else 'NO')"
    )
    lowercase = right.replace("'YES'", "'yes'")  # not the same line, and no number
    runs = verdicts(row, [fenced(right), fenced(lowercase)])
    assert [r["status"] for r in runs] == ["passed", "failed"]
    assert "test 1 of 5" in runs[1]["reason"]
