"""BIG-bench's own task files (`<task>/task.json`) as rows of `hails/bigbench`, the dataset
lm-evaluation-harness's `bigbench_*` tasks read, so that the `bigbench` benchmark runs offline on
the real task files (the `bigbench` package on PyPI ships all of them):

    python -m gnomon.hub.bigbench_json TASK_DIR... --out DIR
    gnomon run --bench bigbench --data DIR ...

The rows are built the way that dataset was: BIG-bench's `JsonTask` formats each distinct
example (`json_task.default_format_fn`: the choices, sorted and then permuted by a fresh
`RandomState(42)`, appended to the input after `choice_prefix`; the input between
`example_input_prefix` and `example_output_prefix`; the target, when absent, the first choice of
highest score), `bbseqio`'s Hugging Face parser puts the task's `task_prefix` first and numbers
the examples of each (sub)task from 0, and the `datasets` builder strips every string and stores
the scores as int32. A task made of subtasks yields its subtasks' rows in folder order.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gnomon.errors import UserError

CONFIG_SUFFIX = "_zero_shot"  # hails/bigbench's config of a task: `<task>_zero_shot`
SPLIT = "default"  # the split holding every example (lm-eval's `test_split`)
SUBSET_FIELD = "subset"  # the field gnomon tags hub rows with (the `bigbench` spec's)
_SEED = 42  # JsonTask's default `random_seed`, which orders the choices appended to the input

Row = dict[str, Any]


def _distinct(examples: list[Any]) -> list[Any]:
    """JsonTask drops repeated examples (equal as `json.dumps` writes them), keeping the first."""
    seen: set[str] = set()
    out = []
    for example in examples:
        key = json.dumps(example)
        if key not in seen:
            seen.add(key)
            out.append(example)
    return out


def _example_row(task: dict[str, Any], example: Any, idx: int, where: str) -> Row:
    if not isinstance(example, dict) or not isinstance(example.get("input"), str):
        raise UserError(f"{where}: an example must be an object with a string `input`")
    scores = example.get("target_scores")
    if scores is not None and (
        not isinstance(scores, dict)
        or not scores
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in scores.values())
    ):
        raise UserError(f"{where}: `target_scores` must map each choice to a number")
    if scores is None and "target" not in example:
        raise UserError(f"{where}: the example has neither `target` nor `target_scores`")
    text = example["input"]
    target = example.get("target")
    if scores is not None:
        keys = list(scores)
        if task.get("append_choices_to_input", True):
            prefix = task.get("choice_prefix", "\n  choice: ")
            ordered = sorted(keys)
            order = np.random.RandomState(seed=_SEED).permutation(len(ordered))
            text += prefix + prefix.join(ordered[i] for i in order)
        if target is None:
            best, worst = max(scores.values()), min(scores.values())
            if (len(scores) == 1 and best == 0) or (len(scores) > 1 and best <= worst):
                raise UserError(f"{where}: no choice scores higher than the others")
            target = next(k for k, v in scores.items() if v == best)
    text = (
        task.get("example_input_prefix", "\nQ: ")
        + text
        + task.get("example_output_prefix", "\nA: ")
    )
    targets = target if isinstance(target, list) else [target]
    return {
        "idx": idx,
        "inputs": (str(task.get("task_prefix", "")) + text).strip(),
        "targets": [str(t).strip() for t in targets],
        "multiple_choice_targets": [k.strip() for k in scores] if scores else [],
        # the dataset's int32 column: `datasets` stores each score as int(score)
        "multiple_choice_scores": [int(v) for v in scores.values()] if scores else [],
    }


def task_rows(task: dict[str, Any], where: str = "task.json") -> list[Row]:
    """The rows of one task (or subtask) file with examples, in the file's order."""
    examples = task.get("examples")
    if not isinstance(examples, list) or not examples:
        raise UserError(f"{where}: no `examples` list")
    return [
        _example_row(task, example, idx, f"{where}: example {idx + 1}")
        for idx, example in enumerate(_distinct(examples))
    ]


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not a JSON task file ({exc})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: a task file holds a JSON object")
    return data


def read_task(folder: Path) -> list[Row]:
    """The rows of the task in `folder` (its `task.json`, or each subtask folder's in turn)."""
    path = folder / "task.json"
    if not path.is_file():
        raise UserError(f"{folder}: no task.json (a BIG-bench task folder holds one)")
    task = _load(path)
    if "examples" in task:
        return task_rows(task, str(path))
    subtasks = sorted(p for p in folder.glob("*/task.json"))
    if not subtasks:
        raise UserError(f"{path}: neither examples nor subtask folders")
    return [row for sub in subtasks for row in task_rows(_load(sub), str(sub))]


def convert(folders: Sequence[Path], out: Path, *, choices_only: bool = True) -> dict[str, int]:
    """Write `out/default.jsonl` from BIG-bench task folders, each row tagged with its hub config
    (`<task>_zero_shot`, the task being the folder's name); rows per task. `choices_only` keeps
    only rows with choices, as lm-eval's multiple-choice tasks do (`filter_multiple_choice`)."""
    counts: dict[str, int] = {}
    lines = []
    for folder in folders:
        name = folder.resolve().name
        rows = read_task(folder)
        if choices_only:
            rows = [r for r in rows if r["multiple_choice_targets"]]
        counts[name] = len(rows)
        lines += [
            json.dumps({**r, SUBSET_FIELD: name + CONFIG_SUFFIX}, ensure_ascii=False) + "\n"
            for r in rows
        ]
    if not lines:
        raise UserError("no multiple-choice examples in " + ", ".join(map(str, folders)))
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{SPLIT}.jsonl").write_text("".join(lines), encoding="utf-8")
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gnomon.hub.bigbench_json",
        description="BIG-bench task folders -> DIR/default.jsonl in hails/bigbench's schema, "
        "for `gnomon run --bench bigbench --data DIR`.",
    )
    parser.add_argument("tasks", nargs="+", type=Path, help="task folders (benchmark_tasks/NAME)")
    parser.add_argument("--out", required=True, type=Path, help="folder to write default.jsonl to")
    parser.add_argument(
        "--all-rows", action="store_true", help="keep rows without choices (generative examples)"
    )
    args = parser.parse_args(argv)
    try:
        counts = convert(args.tasks, args.out, choices_only=not args.all_rows)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    for name, n in counts.items():
        print(f"{name}{CONFIG_SUFFIX}: {n} rows")
    print(f"wrote {sum(counts.values())} rows to {args.out / (SPLIT + '.jsonl')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
