"""BIG-bench from its own task files: `gnomon.hub.bigbench_json` builds hails/bigbench's rows
from `task.json` as that dataset was built, and `gnomon run --bench bigbench --data DIR` runs them.

The tests on real data read task files out of the `bigbench` 1.0.0 sdist, which
`scripts/bootstrap test` fetches once into `.cache/offline/` (BIG-bench ships no wheel; the
archive is read, never installed). Without it they skip, except under `scripts/test`
(GNOMON_OFFLINE_DATA_REQUIRED=1), where a missing archive is a failure.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tarfile
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from gnomon_cli import ENV, gnomon, ok, summary

from gnomon.hub import all_specs
from gnomon.hub.bigbench_json import convert, task_rows
from gnomon.pipeline.plan import plan_bench

ROOT = Path(__file__).resolve().parent.parent
SDIST = ROOT / ".cache" / "offline" / "bigbench-1.0.0.tar.gz"
TASKS_IN_SDIST = "bigbench-1.0.0/bigbench/benchmark_tasks/"
# Early in the archive (it is read as a stream and left once these are out): choices appended
# after a task's own prefixes, a task made of six subtask folders, explicit targets.
REAL_TASKS = ("code_line_description", "conceptual_combinations", "emoji_movie")
# hails/bigbench's `default` split sizes for them, as its dataset card states
CARD_ROWS = {"code_line_description": 60, "conceptual_combinations": 103, "emoji_movie": 100}
LIMIT = 180  # all of the first two tasks (163 rows), the start of the third
PER_TASK = 20  # rows of each task compared with lm-eval's requests


def _convert(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gnomon.hub.bigbench_json", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
    )


# ---------------------------------------------------------------------------- the converter
def test_rows_are_formatted_as_bigbench_formats_them() -> None:
    """Choices are sorted, then permuted by RandomState(42) (the order the hails/bigbench card's
    emoji_movie example shows), appended after `choice_prefix`; prefixes wrap the input; every
    string is stripped; scores become ints; the target is the first best choice."""
    task = {
        "task_prefix": "Guess the film.\n",
        "examples": [
            {
                "input": "What movie does this emoji describe? 👦👓⚡️ ",
                "target_scores": {
                    "harry potter": 1,
                    "shutter island": 0,
                    "die hard": 0,
                    "inglourious basterds": 0,
                    "moonlight": 0,
                },
            },
            {"input": "Which two? ", "target_scores": {" a ": 0.0, "b": 1.0, "c": 1}},
        ],
    }
    first, second = task_rows(task)
    assert first == {
        "idx": 0,
        "inputs": "Guess the film.\n\nQ: What movie does this emoji describe? 👦👓⚡️ "
        "\n  choice: harry potter\n  choice: shutter island\n  choice: inglourious basterds"
        "\n  choice: die hard\n  choice: moonlight\nA:",
        "targets": ["harry potter"],
        "multiple_choice_targets": [
            "harry potter", "shutter island", "die hard", "inglourious basterds", "moonlight"
        ],
        "multiple_choice_scores": [1, 0, 0, 0, 0],
    }  # fmt: skip
    assert second["targets"] == ["b"]
    assert second["multiple_choice_targets"] == ["a", "b", "c"]
    assert second["multiple_choice_scores"] == [0, 1, 1]
    assert all(isinstance(s, int) for s in second["multiple_choice_scores"])
    # choices keep their own spaces inside the input (only its ends are stripped)
    assert (
        second["inputs"]
        == "Guess the film.\n\nQ: Which two? \n  choice:  a \n  choice: b\n  choice: c\nA:"
    )


def test_task_settings_duplicates_and_subtasks(tmp_path: Path) -> None:
    """A task's own prefixes and `append_choices_to_input: false`; a repeated example is dropped;
    subtask folders are read in order, each numbered from 0 with its own prefixes."""
    task = tmp_path / "my_task"
    for name, prefix in (("b_second", "B: "), ("a_first", "A: ")):
        (task / name).mkdir(parents=True)
        example = {
            "input": f"{name}?",
            "target": "yes. because",
            "target_scores": {"no": 0, "yes": 1},
        }
        sub = {
            "name": name,
            "example_input_prefix": prefix,
            "example_output_prefix": "\nAnswer: ",
            "append_choices_to_input": False,
            "examples": [example, dict(example), {**example, "input": "again?"}],
        }
        (task / name / "task.json").write_text(json.dumps(sub), encoding="utf-8")
    (task / "task.json").write_text(json.dumps({"name": "my_task"}), encoding="utf-8")
    out = tmp_path / "data"
    proc = _convert(task, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "my_task_zero_shot: 4 rows" in proc.stdout
    rows = [json.loads(line) for line in (out / "default.jsonl").read_text().splitlines()]
    assert [(r["idx"], r["inputs"]) for r in rows] == [
        (0, "A: a_first?\nAnswer:"),
        (1, "A: again?\nAnswer:"),
        (0, "B: b_second?\nAnswer:"),
        (1, "B: again?\nAnswer:"),
    ]
    assert {r["subset"] for r in rows} == {"my_task_zero_shot"}
    assert all(r["targets"] == ["yes. because"] for r in rows)  # an explicit target is kept


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not a JSON task file"),
        ('{"name": "t"}', "neither examples nor subtask folders"),
        ('{"examples": [{"input": "q"}]}', "neither `target` nor `target_scores`"),
        ('{"examples": [{"input": "q", "target_scores": {"a": 0, "b": 0}}]}', "no choice scores"),
        ('{"examples": [{"input": "q", "target_scores": {"a": "1"}}]}', "map each choice"),
        ('{"examples": [{"input": "q", "target": "long answer"}]}', "no multiple-choice"),
    ],
)
def test_bad_task_file_is_one_line_error(tmp_path: Path, content: str, message: str) -> None:
    task = tmp_path / "bad_task"
    task.mkdir()
    (task / "task.json").write_text(content, encoding="utf-8")
    proc = _convert(task, "--out", tmp_path / "out")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "default.jsonl").exists()


# ---------------------------------------------------------------------------- real task files
@pytest.fixture(scope="session")
def real_tasks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """REAL_TASKS' folders (task.json and subtask folders), copied out of the sdist in one pass
    that stops once they are out; a folder per task under the returned one."""
    if not SDIST.is_file():
        reason = f"{SDIST.relative_to(ROOT)} absent (scripts/bootstrap test fetches it)"
        if os.environ.get("GNOMON_OFFLINE_DATA_REQUIRED") == "1":
            pytest.fail(f"GNOMON_OFFLINE_DATA_REQUIRED=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("benchmark_tasks")
    found: set[str] = set()
    with tarfile.open(SDIST, "r|gz") as archive:
        for member in archive:
            inner = member.name.removeprefix(TASKS_IN_SDIST)
            task, _, rest = inner.partition("/")
            if inner == member.name or task not in REAL_TASKS:
                if found == set(REAL_TASKS):
                    break  # a task's files are contiguous: the last one is complete
                continue
            if member.isfile() and rest.endswith("task.json") and ".." not in rest.split("/"):
                data = archive.extractfile(member)
                assert data is not None
                path = root / task / rest
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data.read())
                if rest == "task.json":
                    found.add(task)
    assert found == set(REAL_TASKS), f"not in {SDIST.name}: {set(REAL_TASKS) - found}"
    return root


def _gold(root: Path, task: str) -> list[tuple[str, list[str]]]:
    """Each distinct example's input and right choices, read from the task file(s) directly."""
    files = [root / task / "task.json"]
    if "examples" not in json.loads(files[0].read_text(encoding="utf-8")):
        files = sorted((root / task).glob("*/task.json"))
    out: list[tuple[str, list[str]]] = []
    for path in files:
        seen: set[str] = set()
        for example in json.loads(path.read_text(encoding="utf-8"))["examples"]:
            if json.dumps(example) not in seen:
                seen.add(json.dumps(example))
                scores: dict[str, Any] = example["target_scores"]
                out.append((example["input"], [k.strip() for k, v in scores.items() if v == 1]))
    return out


@pytest.mark.slow
def test_real_bigbench_tasks_run_end_to_end(
    real_tasks: Path, llama_dir: Path, tmp_path: Path
) -> None:
    data, store, out = tmp_path / "data", tmp_path / "store.sqlite", tmp_path / "out"
    proc = _convert(*(real_tasks / t for t in REAL_TASKS), "--out", data)
    assert proc.returncode == 0, proc.stderr
    for task, n in CARD_ROWS.items():
        assert f"{task}_zero_shot: {n} rows" in proc.stdout, proc.stdout

    run = ok(
        gnomon(
            "run", "--model", f"hf:{llama_dir}", "--bench", "bigbench", "--data", data,
            "--limit", LIMIT, "--store", store, "--out", out, "--batch-size", 16,
        )
    )  # fmt: skip
    assert summary(run.stdout) == (LIMIT, 0, LIMIT)

    gold = [(task, item) for task in REAL_TASKS for item in _gold(real_tasks, task)][:LIMIT]
    rows = [json.loads(line) for line in (data / "default.jsonl").read_text().splitlines()]
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    with closing(sqlite3.connect(store)) as db:
        stored = db.execute(
            "SELECT idx, cluster, prompt FROM results WHERE bench = 'bigbench' ORDER BY idx"
        ).fetchall()
    assert len(stored) == len(samples) == LIMIT
    assert {c for _, c, _ in stored} == {f"{t}_zero_shot" for t in REAL_TASKS}
    for (idx, cluster, prompt), sample, (task, (text, right)) in zip(
        stored, sorted(samples, key=lambda s: s["index"]), gold, strict=True
    ):
        row = rows[idx]
        assert cluster == f"{task}_zero_shot"
        assert text.strip() in prompt  # the real input, as the model saw it
        # the stored target is the real gold option (the first right one, where several are)
        assert row["multiple_choice_targets"][sample["target"]] == right[0]
        assert len(sample["choice_logprobs"]) == len(row["multiple_choice_targets"])
    results = json.loads((out / "results.json").read_text())
    assert "bigbench" in json.dumps(results)


@pytest.mark.slow
def test_real_rows_ask_what_lm_eval_asks(real_tasks: Path, tmp_path: Path) -> None:
    """lm-eval's own `bigbench_<task>_multiple_choice` YAMLs over the converted real rows: per
    document, the same (context, continuation) requests as gnomon's and the same gold choice."""
    from lm_eval_bridge import build_tasks, task_name

    convert([real_tasks / t for t in REAL_TASKS], tmp_path / "all")
    every = [
        json.loads(line) for line in (tmp_path / "all" / "default.jsonl").read_text().splitlines()
    ]
    rows: list[dict[str, Any]] = []
    for task in REAL_TASKS:  # the first rows of each task
        rows += [r for r in every if r["subset"] == f"{task}_zero_shot"][:PER_TASK]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "default.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    spec = next(s for s in all_specs() if s.id == "bigbench")
    assert spec.reference is not None
    plan = plan_bench(spec, tmp_path / "data", None, None, "real-rows")
    tasks = build_tasks(spec.reference, rows, [], 0, spec.fewshot.seed, tmp_path / "lm")
    assert sorted(tasks) == sorted(f"bigbench_{t}_multiple_choice" for t in REAL_TASKS)
    position: dict[str, int] = {}
    for sample in plan.samples:
        name = task_name(spec.reference, rows[sample.index])
        k = position[name] = position.get(name, -1) + 1
        doc, instances = tasks[name].docs[k]
        ours = [(r.context, r.continuation) for r in plan.mode.requests(sample)]
        assert ours == [tuple(i.arguments) for i in instances], f"{name} doc {k}"
        assert str(sample.target) == str(tasks[name].task.doc_to_target(doc)), f"{name} doc {k}"
    assert position == {name: len(task.docs) - 1 for name, task in tasks.items()}
