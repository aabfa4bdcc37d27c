#!/usr/bin/env python3
"""Writes the fixed few-shot exemplars (and the Open LLM Leaderboard's BBH task table) that
reference tasks carry in their own files, benchmark data rather than gnomon's, into
src/gnomon/hub/fewshot/, in the dataset's row schema: Minerva's MATH exemplars, GSM8K CoT's,
BBH CoT's per task, and the leaderboard's BBH (exemplars, each subset's description and choice
labels) and MATH-hard exemplars (its `few_shot` marker kept: lm-eval's target template reads it).

Run once with lm-evaluation-harness 0.4.13 installed (`scripts/bootstrap test`):

    .venv/bin/python scripts/hub_fewshot.py

and commit the files it writes; `--check` only says whether they are up to date (exit 1 if not).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path

import lm_eval
import yaml

TASKS = Path(lm_eval.__file__).parent / "tasks"
OUT = Path(__file__).resolve().parent.parent / "src" / "gnomon" / "hub" / "fewshot"


def _module(path: Path) -> object:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def minerva_math() -> list[dict[str, object]]:
    """The four Minerva exemplars lm-eval's `minerva_math` tasks use for every subject."""
    utils = _module(TASKS / "minerva_math" / "utils.py")
    return list(utils.list_fewshot_samples())  # type: ignore[attr-defined]


def gsm8k_cot() -> list[dict[str, object]]:
    """The eight chain-of-thought exemplars written into lm-eval's `gsm8k_cot` task."""
    config = yaml.safe_load((TASKS / "gsm8k" / "gsm8k-cot.yaml").read_text(encoding="utf-8"))
    return list(config["fewshot_config"]["samples"])


class _TaskLoader(yaml.SafeLoader):
    """lm-eval's task files tag Python functions (`!function`); none is needed here."""


_TaskLoader.add_constructor("!function", lambda loader, node: None)


def bbh_cot() -> list[dict[str, object]]:
    """The three worked examples of each of BBH's 27 tasks (lm-eval's `bbh_cot_fewshot_*`), in
    its files' order, each with its task (`subset`) and the task's description, which gnomon's
    `bbh_cot` row hook shows before them."""
    rows: list[dict[str, object]] = []
    for path in sorted((TASKS / "bbh" / "cot_fewshot").glob("*.yaml")):
        if path.name.startswith("_"):
            continue
        task = yaml.load(path.read_text(encoding="utf-8"), Loader=_TaskLoader)
        for sample in task["fewshot_config"]["samples"]:
            rows.append(
                {
                    "subset": task["dataset_name"],
                    "description": task["description"],
                    "input": sample["input"],
                    "target": sample["target"],
                }
            )
    assert len(rows) == 81, f"expected 27 BBH tasks of 3 examples, found {len(rows)}"
    return rows


LEADERBOARD = TASKS / "leaderboard"


def _leaderboard_bbh_subsets() -> list[str]:
    group_file = LEADERBOARD / "bbh_mc" / "_leaderboard_bbh.yaml"
    group = yaml.safe_load(group_file.read_text(encoding="utf-8"))
    return [name.removeprefix("leaderboard_bbh_") for name in group["task"]]


def _leaderboard_bbh_tasks() -> list[dict[str, object]]:
    return [
        yaml.safe_load((LEADERBOARD / "bbh_mc" / f"{s}.yaml").read_text(encoding="utf-8"))
        for s in _leaderboard_bbh_subsets()
    ]


def leaderboard_bbh() -> list[dict[str, object]]:
    """The three exemplars of each of the leaderboard's 24 BBH subsets, with their subset."""
    rows: list[dict[str, object]] = []
    for task in _leaderboard_bbh_tasks():
        for sample in task["fewshot_config"]["samples"]:  # type: ignore[index]
            rows.append({"subset": task["dataset_name"], "input": sample["input"],
                         "target": sample["target"]})  # fmt: skip
    return rows


def leaderboard_bbh_table() -> str:
    """Per leaderboard BBH subset, its description and choice labels (JSON, not rows)."""
    table = {
        str(t["dataset_name"]): {"description": t["description"], "choices": t["doc_to_choice"]}
        for t in _leaderboard_bbh_tasks()
    }
    return json.dumps(table, ensure_ascii=False, indent=1) + "\n"


def leaderboard_math_hard() -> list[dict[str, object]]:
    """The leaderboard's own (frozen) copy of the Minerva exemplars, from its utils.py."""
    utils = _module(LEADERBOARD / "math" / "utils.py")
    return list(utils.list_fewshot_samples())  # type: ignore[attr-defined]


def _jsonl(make: Callable[[], list[dict[str, object]]]) -> Callable[[], str]:
    return lambda: "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in make())


FILES: dict[str, Callable[[], str]] = {
    "minerva_math.jsonl": _jsonl(minerva_math),
    "gsm8k_cot.jsonl": _jsonl(gsm8k_cot),
    "bbh_cot_fewshot.jsonl": _jsonl(bbh_cot),
    "leaderboard_bbh.jsonl": _jsonl(leaderboard_bbh),
    "leaderboard_bbh_tasks.json": leaderboard_bbh_table,
    "leaderboard_math_hard.jsonl": _jsonl(leaderboard_math_hard),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args()
    stale = []
    for name, make in FILES.items():
        text = make()
        path = OUT / name
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
            continue
        OUT.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path} ({len(text.splitlines())} rows)")
    if stale:
        print("out of date: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
