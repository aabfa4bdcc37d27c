"""The speed sweep (benchmarks/speed_sweep.py): its verdicts, and a `--quick` run end to end.

No timing is asserted: the machine's load decides those. What is asserted is what the sweep's
figures rest on: every cell ran both sides, the tables have their rows, and gnomon and
lm-evaluation-harness gave identical predictions on identical prompts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from gnomon_side import Outcome  # noqa: E402
from sweep_report import Cell, shape_table, verdict  # noqa: E402


def _outcome(predictions: dict, logprobs: dict | None = None, wall: float = 1.0) -> Outcome:
    prompts = {k: f"prompt {k}" for k in predictions}
    return Outcome(wall, wall, predictions=predictions, logprobs=logprobs or {}, prompts=prompts)


def test_one_differing_prediction_fails_the_cell_and_is_marked() -> None:
    same = {("mmlu", 0): 1, ("mmlu", 1): 2}
    lps = {("mmlu", 0): [-2.0, -1.0], ("mmlu", 1): [-3.0, -0.5]}
    cell = Cell("s", "score", "quiet", "score", gnomon=[_outcome(same, lps, 2.0)])
    cell.peer = [_outcome(same, {k: [x + 1e-3 for x in v] for k, v in lps.items()}, 8.0)]
    good = verdict(cell)
    assert good["ok"] and good["identical"] == 2 and good["ratio"] == pytest.approx(4.0)
    assert good["max_abs_logprob_diff"] == pytest.approx(1e-3)
    assert good["max_rel_logprob_diff"] == pytest.approx(1e-3 / 0.5, rel=1e-2)

    # a later run of one side disagreeing on one row is enough
    cell.gnomon.append(_outcome({("mmlu", 0): 1, ("mmlu", 1): 3}, lps, 2.0))
    bad = verdict(cell)
    assert not bad["ok"] and bad["identical"] == 1
    assert bad["differing"][0]["key"] == ["mmlu", 1]
    assert "**1/2**" in "\n".join(shape_table([bad]))


def test_a_row_missing_from_one_side_fails_the_cell() -> None:
    cell = Cell("s", "gen", "quiet", "gen", gnomon=[_outcome({("g", 0): "a"})])
    cell.peer = [_outcome({("g", 0): "a", ("g", 1): "b"})]
    assert not verdict(cell)["ok"]


@pytest.mark.slow
def test_quick_sweep_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "sweep.json"
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "speed_sweep.py"), "--quick"]
        + ["--workdir", str(tmp_path / "work"), "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = proc.stdout
    assert "| shape | condition | score: lm-eval / gnomon |" in text
    assert "| task | condition | gnomon | lm-eval | lm-eval / gnomon |" in text
    assert "identical predictions" in text
    assert "| score: 5-shot MMLU, 8 q | quiet |" in text
    labels = ("8-shot CoT", "5-shot, the same shots for all", "5-shot, shots drawn per question")
    for label in labels:
        assert f"| gen: GSM8K {label}, 2 q, 8 new tokens | quiet |" in text
    assert "| quick-h64-l2-v1k | quiet |" in text  # the summary and the served table

    figures = json.loads(out.read_text())
    assert figures["ok"] is True
    cells = {(c["task"], c["variant"]): c for c in figures["cells"]}
    assert set(cells) == {("score", ""), ("served", "")} | {
        ("gen", v) for v in ("cot", "fixed", "5shot")
    }
    for cell in cells.values():
        assert cell["ok"] and cell["error"] is None, cell
        assert cell["identical"] == cell["questions"] > 0, cell
        assert not cell["missing"]
        assert cell["gnomon"]["tokens"] > 0
    assert cells["score", ""]["questions"] == 8
    for variant, bench in (("cot", "cot"), ("fixed", "fixed"), ("5shot", "")):
        bench_id = f"sweep_gsm8k_{bench}".rstrip("_")
        assert cells["gen", variant]["identical_by_bench"] == {bench_id: [2, 2]}
    # both tools were given the very same prompts, and lm-eval's tokens were counted
    for key in (("score", ""), ("gen", "cot"), ("gen", "fixed"), ("gen", "5shot")):
        assert cells[key]["identical_prompts"] == cells[key]["questions"]
        assert cells[key]["lm-eval"]["tokens"] > 0
    assert cells["score", ""]["max_abs_logprob_diff"] < 1e-3
    assert cells["served", ""]["served"]["server_ready_s"]
