"""MBPP rows (`google-research-datasets/mbpp`), splits test, train, validation and prompt (the
few-shot split; lm-eval's shots are its tasks 2-4).

Config `full`: task_id (int), text, code, test_list (three asserts), test_setup_code (usually
""), challenge_test_list (usually []). Config `sanitized`: source_file, task_id, prompt, code,
test_imports (a list), test_list. Each made-up task is a real little function whose asserts its
own code passes, so a run of the solution scores."""

from __future__ import annotations

from gnomon.rowgen import RowDict, rows
from gnomon.rowgen._text import rng

_TASKS = (
    ("add two numbers", "add", "a, b", "a + b", [(1, 2), (5, 7), (-3, 3)]),
    ("multiply two numbers", "mul", "a, b", "a * b", [(2, 3), (4, 5), (0, 9)]),
    ("find the larger of two numbers", "larger", "a, b", "max(a, b)", [(1, 2), (9, 4), (3, 3)]),
    ("square a number", "square", "a", "a * a", [(2,), (7,), (-4,)]),
)


def _task(task_id: int, index: int) -> dict:
    what, name, params, body, cases = _TASKS[index % len(_TASKS)]
    code = f"def {name}({params}):\n    return {body}"
    scope: dict = {}
    exec(code, scope)  # our own made-up solution, to write asserts it passes
    tests = [f"assert {name}({', '.join(map(str, c))}) == {scope[name](*c)!r}" for c in cases]
    return {"task_id": task_id, "text": f"Write a function to {what}.", "code": code,
            "test_list": tests}  # fmt: skip


def _ids(split: str, n: int) -> list[int]:
    first = {"prompt": 1, "test": 11, "validation": 511, "train": 601}[split]
    return list(range(first, first + n))


@rows("mbpp", sizes={"test": 8, "prompt": 10})
def full(split: str, n: int, seed: int) -> list[RowDict]:
    r = rng("mbpp", split, seed)
    out = []
    for task_id in _ids(split, n):
        task = _task(task_id, r.randrange(len(_TASKS)))
        out.append({**task, "test_setup_code": "", "challenge_test_list": []})
    return out


@rows("mbpp_sanitized", sizes={"test": 8, "prompt": 7})
def sanitized(split: str, n: int, seed: int) -> list[RowDict]:
    r = rng("mbpp_sanitized", split, seed)
    out = []
    for task_id in _ids(split, n):
        task = _task(task_id, r.randrange(len(_TASKS)))
        out.append({"source_file": "Benchmark Questions Verification V2.ipynb",
                    "task_id": task_id, "prompt": task.pop("text"), "code": task["code"],
                    "test_imports": [], "test_list": task["test_list"]})  # fmt: skip
    return out
