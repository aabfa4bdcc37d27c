"""Choice targets that list several right choices (AGIEval's `gold`: JEC-QA and Gaokao physics
questions may have more than one right option), as lm-eval's AGIEval scorer counts them: the
model's choice is right if it is any of them. The agreement harness proves the prompts and
metrics against lm-eval; this covers what it does not: bad targets, the result's fields and
`hub show`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from gnomon_cli import gnomon, ok

from gnomon.engines.base import ScoreResult
from gnomon.hub import resolve
from gnomon.pipeline.plan import plan_bench

BENCH = "agieval_jec_qa_kd"
CHOICES = ["(A)土地", "(B)河流", "(C)资金", "(D)市场"]


def _write(root: Path, rows: list[dict[str, Any]]) -> Path:
    data = root / BENCH
    data.mkdir(parents=True, exist_ok=True)
    path = data / "test.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


QUERY = "问题：哪一个正确？ 选项：(A)土地 (B)河流 (C)资金 (D)市场\n答案：从A到D, 我们应选择"


def _row(gold: Any) -> dict[str, Any]:
    return {"query": QUERY, "choices": CHOICES, "gold": gold}


def _answers(best: int) -> list[ScoreResult]:
    return [ScoreResult(-1.0 if i == best else -5.0, i == best) for i in range(len(CHOICES))]


def test_any_right_choice_counts(tmp_path: Path) -> None:
    _write(tmp_path, [_row([0, 2]), _row([3]), _row([1, 2, 3])])
    plan = plan_bench(resolve(BENCH), tmp_path, None, None, "t")
    several, one, three = plan.samples
    assert several.target == [0, 2] and one.target == 3 and three.target == [1, 2, 3]
    for sample in plan.samples:
        for best in range(len(CHOICES)):
            result = plan.mode.result(sample, _answers(best))
            right = best in sample.golds
            assert result["metrics"] == {"acc": float(right), "acc_norm": float(right)}
            assert result["correct"] is right
    result = plan.mode.result(several, _answers(2))
    assert result["target"] == [0, 2] and result["target_text"] == "(A)土地 | (C)资金"
    # the target is part of what identifies a sample: another gold list, another hash
    _write(tmp_path, [_row([0, 3]), _row([3]), _row([1, 2, 3])])
    again = plan_bench(resolve(BENCH), tmp_path, None, None, "t").samples
    assert again[0].content_hash != several.content_hash
    assert again[1].content_hash == one.content_hash


def test_hub_show_marks_every_right_choice(tmp_path: Path) -> None:
    _write(tmp_path, [_row([1, 3])])
    out = ok(gnomon("hub", "show", BENCH, "--data", tmp_path / BENCH)).stdout
    marked = [line for line in out.splitlines() if "continuation" in line and line[0] == "*"]
    assert [line.split(":")[0] for line in marked] == ["* continuation 1", "* continuation 3"]


@pytest.mark.parametrize(
    ("gold", "message"),
    [
        ([], "target must be a choice index, got []"),
        ([0, 4], "target 4 is not one of 4 choices"),
        (["A"], "target must be a choice index"),
        ([True], "target must be a choice index"),
        ([1.0], "target must be a choice index"),
    ],
)
def test_bad_gold_is_one_line_error(tmp_path: Path, gold: Any, message: str) -> None:
    path = _write(tmp_path, [_row([1]), _row(gold)])
    proc = gnomon("hub", "show", BENCH, "--data", tmp_path / BENCH, "--index", 1)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert f"{path}:2" in lines[0] and message in lines[0]
