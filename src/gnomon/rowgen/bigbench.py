"""BIG-bench rows (`hails/bigbench`, configs `<task>_zero_shot`, split `default`): idx, inputs,
targets, multiple_choice_targets, multiple_choice_scores, plus gnomon's `subset` tag.

The rows are made as the dataset was: made-up BIG-bench examples, with the prefixes and choice
settings of real tasks, formatted by `gnomon.hub.bigbench_json` (choices appended to the input in
BIG-bench's permuted order, "Q:"/"A:" or a task's own prefixes, stripped). Among them: strategyqa's
explanations as targets (not a choice), two choices scored 1, and gold choices at every position.
"""

from __future__ import annotations

from typing import Any

from gnomon.hub.bigbench_json import CONFIG_SUFFIX, SUBSET_FIELD, task_rows
from gnomon.rowgen import RowDict, rows
from gnomon.rowgen._text import clause, options, rng, sentence

# each made-up task copies the format keys of the real task of that name
_TASKS: dict[str, dict[str, Any]] = {
    "code_line_description": {
        "append_choices_to_input": True,
        "example_input_prefix": "\nPython code:\n",
        "example_output_prefix": "\n\nEnglish language description:\n",
    },
    "emoji_movie": {"append_choices_to_input": True},
    "logical_deduction": {
        "task_prefix": "The following paragraphs each describe a set of objects.\n\n",
        "example_input_prefix": "",
        "example_output_prefix": "",
        "choice_prefix": "\n  choice: ",
        "append_choices_to_input": False,
    },
    "strategyqa": {"append_choices_to_input": False},
}


def _example(task: str, r: Any, i: int) -> dict[str, Any]:
    k = 2 if task == "strategyqa" else r.randint(2, 5)
    choices = ["Yes", "No"] if task == "strategyqa" else options(r, k)
    gold = i % k  # every position holds the gold choice somewhere
    scores = {c: int(j == gold) for j, c in enumerate(choices)}
    if task == "strategyqa":  # the target is an explanation, not one of the choices
        return {
            "input": f"Does {clause(r)}?",
            "target_scores": scores,
            "target": f"{choices[gold]}. {sentence(r)}",
        }
    if i % 5 == 4:  # a second right answer: the first of them is the target
        scores[choices[(gold + 1) % k]] = 1
    return {"input": f"{sentence(r)} {clause(r)}?", "target_scores": scores}


@rows("bigbench", sizes={"default": 12})
def make(split: str, n: int, seed: int) -> list[RowDict]:
    r = rng("bigbench", split, seed)
    names = list(_TASKS)
    out: list[RowDict] = []
    for t, task in enumerate(names):
        count = n // len(names) + (t < n % len(names))
        examples = [_example(task, r, i) for i in range(count)]
        if examples:
            made = task_rows({**_TASKS[task], "examples": examples}, f"made-up {task}")
            out += [{**row, SUBSET_FIELD: task + CONFIG_SUFFIX} for row in made]
    return out
