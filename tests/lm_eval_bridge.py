"""lm-evaluation-harness's side of the agreement harness: its own task YAMLs, pointed at the rows
gnomon's tests write, built into requests and scored by its own filters and metrics.

Nothing of lm-eval's task definition is rewritten here: a wrapper task `include`s the installed
YAML unchanged and swaps only the dataset for JSONL files under lm-eval's own split names.
"""

from __future__ import annotations

import functools
import json
import random
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PLACEHOLDER = re.compile(r"\{(\w+)\}")


@functools.cache
def task_index() -> dict[str, Any]:
    """Every task lm-eval ships, by name (indexing takes a few seconds: once per session)."""
    from lm_eval.tasks import TaskManager

    return dict(TaskManager().task_index)


def task_name(reference: str, fields: dict[str, Any]) -> str:
    """`lm-eval:mmlu_{subject}` filled from a row -> `mmlu_abstract_algebra` (spaces become
    underscores, as in lm-eval's task names: MMLU-Pro's "computer science"). Where lm-eval
    shortens a config's name in its task's (`minerva_math_num_theory` reads `number_theory`),
    the task that fits the template and reads that config (`dataset_name`) is the one."""
    template = reference.removeprefix("lm-eval:")
    name = PLACEHOLDER.sub(lambda m: str(fields[m.group(1)]).replace(" ", "_"), template)
    if not PLACEHOLDER.search(template) or name in task_index():
        return name
    return _task_reading(template, fields) or name


@functools.cache
def _tasks_reading(template: str) -> dict[str, list[str]]:
    """Tasks whose names fit `template`, by the dataset config each reads."""
    literal = PLACEHOLDER.split(template)[::2]  # the text around the placeholders
    shape = re.compile(r"\w+".join(re.escape(part) for part in literal))
    found: dict[str, list[str]] = defaultdict(list)
    for name, entry in task_index().items():
        cfg = entry.cfg or {}
        if shape.fullmatch(name) and cfg.get("dataset_name"):
            found[str(cfg["dataset_name"])].append(name)
    return found


def _task_reading(template: str, fields: dict[str, Any]) -> str | None:
    values = [str(fields[m]) for m in PLACEHOLDER.findall(template)]
    names = _tasks_reading(template).get(values[0], []) if len(values) == 1 else []
    return names[0] if len(names) == 1 else None


@dataclass
class Splits:
    """Which of lm-eval's split names a task evaluates on, and which it draws shots from."""

    eval: str
    fewshot: str | None  # None: the shots are written in the YAML (fewshot_config.samples)
    declared: list[str] = field(default_factory=list)  # every split name the config reads


def splits_of(cfg: dict[str, Any]) -> Splits:
    """lm-eval's rules: evaluate on test_split, else validation_split; shots from fewshot_split,
    else inline samples, else training, validation, test in that order."""
    test, val, train = cfg.get("test_split"), cfg.get("validation_split"), cfg.get("training_split")
    fewshot_cfg = cfg.get("fewshot_config") or {}
    eval_split = test or val
    assert eval_split, f"lm-eval task {cfg.get('task')} has neither test nor validation split"
    explicit = cfg.get("fewshot_split") or fewshot_cfg.get("split")
    fewshot: str | None
    if explicit:
        fewshot = explicit
    elif fewshot_cfg.get("samples") is not None:
        fewshot = None
    else:
        fewshot = train or val or test
    declared = [s for s in (test, val, train, explicit) if s]
    return Splits(eval_split, fewshot, list(dict.fromkeys(declared)))


@dataclass
class LmEvalTask:
    name: str
    task: Any  # lm_eval's ConfigurableTask, requests built
    docs: list[tuple[dict[str, Any], list[Any]]]  # (doc, its instances in idx order)
    num_fewshot: int | None  # what the task's own YAML sets (None: the user chooses)


def write_tasks(
    reference: str,
    eval_rows: list[dict[str, Any]],
    fewshot_rows: list[dict[str, Any]],
    root: Path,
    prefix: str = "gnomon_check_",
    shots: int | None = None,
) -> dict[str, tuple[str, int | None]]:
    """Write a wrapper task per lm-eval task the rows fall into (in `root/tasks`, the folder to
    pass as lm-eval's include path): lm-eval task name -> (wrapper task name, the shots its own
    YAML fixes, or None). `shots`, where lm-eval's YAML leaves the count to the user, is written
    into the wrapper (for runs of lm-eval's CLI, whose --num_fewshot is one for all tasks)."""
    index = task_index()
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in eval_rows:
        by_task[task_name(reference, row)].append(row)
    tasks_dir = root / "tasks"
    tasks_dir.mkdir(parents=True, exist_ok=True)
    out: dict[str, tuple[str, int | None]] = {}
    for name, rows in by_task.items():
        assert name in index, f"lm-eval {reference} names task {name!r}, which lm-eval lacks"
        entry = index[name]
        cfg = dict(entry.cfg or {})
        splits = splits_of(cfg)
        pool = [r for r in fewshot_rows if task_name(reference, r) == name]
        files: dict[str, Path] = {}
        for split in splits.declared:
            # a split lm-eval declares but gnomon does not use here still needs rows to load
            chosen = rows if split == splits.eval else (pool or rows)
            path = root / f"{name}.{split}.jsonl"
            path.write_text(
                "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in chosen), encoding="utf-8"
            )
            files[split] = path
        wrapper = {
            "include": str(entry.yaml_path),
            "task": f"{prefix}{name}",
            "dataset_path": "json",
            "dataset_name": None,
            "dataset_kwargs": {
                "data_files": {split: str(path) for split, path in files.items()},
                "cache_dir": str(root / "hf_cache"),
            },
        }
        if shots is not None and cfg.get("num_fewshot") is None:
            wrapper["num_fewshot"] = shots
        (tasks_dir / f"{prefix}{name}.yaml").write_text(yaml.safe_dump(wrapper), encoding="utf-8")
        out[name] = (f"{prefix}{name}", cfg.get("num_fewshot"))
    return out


def build_tasks(
    reference: str,
    eval_rows: list[dict[str, Any]],
    fewshot_rows: list[dict[str, Any]],
    shots: int,
    seed: int,
    root: Path,
) -> dict[str, LmEvalTask]:
    """Build each lm-eval task the rows fall into, from its own YAML, over those rows."""
    from lm_eval.tasks import TaskManager

    written = write_tasks(reference, eval_rows, fewshot_rows, root)
    tasks_dir = root / "tasks"
    # lm-eval's evaluator seeds Python's global generator with 0 before it loads tasks, and some
    # tasks' `process_docs` draw from it while loading (GPQA shuffles its answers)
    random.seed(0)
    manager = TaskManager(include_path=str(tasks_dir), include_defaults=False)
    out: dict[str, LmEvalTask] = {}
    for name, (wrapper, fixed) in written.items():
        # lm-eval's evaluator seeds Python's `random` with 0 before it builds a task, and some
        # tasks prepare their documents with it (GPQA shuffles its options): each task is
        # loaded as a run of it alone would load it
        random.seed(0)
        task = manager.load([wrapper])["tasks"][wrapper]
        task.set_config(key="num_fewshot", value=shots if fixed is None else fixed)
        task.set_fewshot_seed(seed=seed)
        task.build_all_requests()
        per_doc: dict[int, list[Any]] = defaultdict(list)
        for inst in task.instances:
            per_doc[inst.doc_id].append(inst)
        docs = [
            (insts[0].doc, sorted(insts, key=lambda i: i.idx))
            for _, insts in sorted(per_doc.items())
        ]
        out[name] = LmEvalTask(name, task, docs, fixed)
    return out


def score_texts(task: LmEvalTask, outputs: list[str]) -> list[dict[str, dict[str, Any]]]:
    """lm-eval's metrics per doc when each doc's generation is `outputs[i]`: filter name ->
    metric -> value, by its own filters and process_results."""
    for (_, insts), text in zip(task.docs, outputs, strict=True):
        for inst in insts:
            inst.resps = [text]
            inst.filtered_resps = {}
    task.task.apply_filters()
    scored = []
    for doc, insts in task.docs:
        per_filter = {}
        for key in insts[0].filtered_resps:
            per_filter[key] = task.task.process_results(doc, [i.filtered_resps[key] for i in insts])
        scored.append(per_filter)
    return scored


def score_logliks(
    task: LmEvalTask, results: list[list[tuple[float, bool]]]
) -> list[dict[str, Any]]:
    """lm-eval's metrics per doc from given (loglikelihood, is_greedy) per request."""
    for (_, insts), doc_results in zip(task.docs, results, strict=True):
        assert len(insts) == len(doc_results)
        for inst, res in zip(insts, doc_results, strict=True):
            inst.resps = [res]
            inst.filtered_resps = {}
    task.task.apply_filters()
    out = []
    for doc, insts in task.docs:
        key = next(iter(insts[0].filtered_resps))
        out.append(task.task.process_results(doc, [i.filtered_resps[key] for i in insts]))
    return out
