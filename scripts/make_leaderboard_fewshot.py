#!/usr/bin/env python3
"""Write the Open LLM Leaderboard v2 data that lm-eval keeps in its task files, not its datasets.

lm-evaluation-harness 0.4.13 writes each `leaderboard_bbh_<subset>` task's three exemplars, its
choice labels and its description into `lm_eval/tasks/leaderboard/bbh_mc/<subset>.yaml`, and the
four MATH-hard exemplars into `lm_eval/tasks/leaderboard/math/utils.py`. They are the benchmark's
data, so gnomon ships them as data files generated from there (never copied by hand):

- `src/gnomon/hub/fewshot/leaderboard_bbh.jsonl`: the BBH exemplars, one row each, in the
  dataset's schema (`input`, `target`) plus `subset`, in the YAMLs' order;
- `src/gnomon/hub/fewshot/leaderboard_bbh_tasks.json`: per BBH subset, `description`, `choices`;
- `src/gnomon/hub/fewshot/leaderboard_math_hard.jsonl`: the MATH-hard exemplars, as lm-eval
  lists them (its `few_shot` marker included: lm-eval's target template reads it).

Run with the project's venv (lm-eval is a test dependency):
    .venv/bin/python scripts/make_leaderboard_fewshot.py [--check]
`--check` writes nothing and fails if the files differ from what lm-eval holds.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import lm_eval
import yaml

OUT = Path(__file__).resolve().parent.parent / "src" / "gnomon" / "hub" / "fewshot"
LEADERBOARD = Path(lm_eval.__file__).parent / "tasks" / "leaderboard"
TASKS = LEADERBOARD / "bbh_mc"


def _subsets() -> list[str]:
    group = yaml.safe_load((TASKS / "_leaderboard_bbh.yaml").read_text(encoding="utf-8"))
    return [name.removeprefix("leaderboard_bbh_") for name in group["task"]]


def _jsonl(rows: list[dict[str, object]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def math_hard() -> str:
    """lm-eval's `list_fewshot_samples()`, from the leaderboard's own (frozen) utils.py."""
    path = LEADERBOARD / "math" / "utils.py"
    spec = importlib.util.spec_from_file_location("leaderboard_math_utils", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return _jsonl(module.list_fewshot_samples())


def bbh() -> tuple[str, str]:
    """(exemplars JSONL, task table JSON), as the files hold them."""
    shots: list[str] = []
    table: dict[str, dict[str, object]] = {}
    for subset in _subsets():
        task = yaml.safe_load((TASKS / f"{subset}.yaml").read_text(encoding="utf-8"))
        assert task["dataset_name"] == subset, subset
        table[subset] = {"description": task["description"], "choices": task["doc_to_choice"]}
        for sample in task["fewshot_config"]["samples"]:
            row = {"subset": subset, "input": sample["input"], "target": sample["target"]}
            shots.append(json.dumps(row, ensure_ascii=False))
    return "\n".join(shots) + "\n", json.dumps(table, ensure_ascii=False, indent=1) + "\n"


def main() -> int:
    shots, table = bbh()
    files = {
        "leaderboard_bbh.jsonl": shots,
        "leaderboard_bbh_tasks.json": table,
        "leaderboard_math_hard.jsonl": math_hard(),
    }
    if "--check" in sys.argv[1:]:
        stale = [n for n, t in files.items() if (OUT / n).read_text(encoding="utf-8") != t]
        if stale:
            print(f"error: out of date: {', '.join(stale)}", file=sys.stderr)
            return 1
        return 0
    for name, text in files.items():
        (OUT / name).write_text(text, encoding="utf-8")
        print(f"wrote {OUT / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
