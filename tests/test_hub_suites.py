"""The hub as a user browses it and runs it whole: `hub list` (table and --json), `hub show`,
suites (built in and the user's own), and the bad input around them, through the real command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from gnomon_cli import gnomon, ok

from gnomon.hub import all_specs, builtin_ids, resolve_suite
from gnomon.hub.suite import suite_ids

KEYS = {"id", "family", "dimension", "languages", "mode", "shots", "metrics", "reference"}


def _quiz_spec(tmp_path: Path) -> Path:
    """A user's own benchmark file, with its rows beside it."""
    data = tmp_path / "quiz_rows"
    data.mkdir()
    rows = [
        {"q": f"Is the river number {i} wide?", "options": ["yes", "no"], "gold": i % 2}
        for i in range(4)
    ]
    (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = {
        "id": "quiz",
        "title": "Quiz",
        "dimension": "reasoning",
        "version": 1,
        "source": {"files": "quiz_rows", "eval_split": "test"},
        "prompt": {
            "template": "Question: {{ q }}\nAnswer:",
            "choices": "options",
            "target": "gold",
        },
        "mode": "choice",
        "metrics": ["acc"],
    }
    path = tmp_path / "quiz.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_hub_list_json_describes_every_benchmark(tmp_path: Path) -> None:
    custom = _quiz_spec(tmp_path)
    entries = json.loads(ok(gnomon("hub", "list", "--json", custom)).stdout)
    assert {e["id"] for e in entries} == set(builtin_ids()) | {"quiz"}
    for entry in entries:
        assert set(entry) >= KEYS, entry["id"]
        assert entry["languages"] and isinstance(entry["metrics"], list)
        assert "None" not in json.dumps(entry["source"])
    quiz = next(e for e in entries if e["id"] == "quiz")
    assert quiz["spec"] == str(custom) and quiz["reference"] is None
    # grouped by dimension in the order leaderboards report them
    order = ["knowledge", "reasoning", "math", "code", "language", "instruction-following",
             "subjective", "long-context", "agent"]  # fmt: skip
    dims = [e["dimension"] for e in entries]
    assert dims == sorted(dims, key=order.index)


def test_hub_list_table_and_show(tmp_path: Path) -> None:
    custom = _quiz_spec(tmp_path)
    table = ok(gnomon("hub", "list", custom)).stdout
    assert "suite:base" in table and "quiz" in table and "knowledge" in table
    shown = ok(gnomon("hub", "show", custom)).stdout
    assert "None" not in shown
    assert "files" in shown and "reference: none stated" in shown
    mmlu = ok(gnomon("hub", "show", "mmlu")).stdout
    assert "reference: lm-eval:mmlu_{subject}" in mmlu and "proven by: tests/" in mmlu


@pytest.mark.parametrize("suite", suite_ids())
def test_builtin_suites_name_hub_benchmarks(suite: str) -> None:
    specs = resolve_suite(f"suite:{suite}")
    assert specs and len({s.id for s in specs}) == len(specs)


def test_every_spec_states_its_reference_and_languages() -> None:
    for spec in all_specs():
        assert spec.reference, f"{spec.id} names no reference"
        assert spec.items, f"{spec.id} gives no item count"


def test_every_benchmark_shows_an_example_offline() -> None:
    """`gnomon hub show` renders a prompt for every benchmark with no hub in reach: from the
    package that ships the data, or from made-up rows in the real schema."""
    from gnomon.hub.example import example_sample

    failed = {}
    for spec in all_specs():
        try:
            sample, _ = example_sample(spec, None, None, 0)
        except Exception as exc:  # noqa: BLE001 - every failure is reported at once
            failed[spec.id] = f"{type(exc).__name__}: {exc}"[:200]
            continue
        if not (sample.context.strip() or any(c.strip() for c in sample.choices or ())):
            failed[spec.id] = "nothing to show"  # (WinoGrande's context is in its choices)
    assert not failed, failed


def test_user_suite_runs_each_benchmark(llama_dir: Path, data_root: Path, tmp_path: Path) -> None:
    custom = _quiz_spec(tmp_path)
    suite = tmp_path / "mine.yaml"
    suite.write_text(
        yaml.safe_dump({"id": "mine", "title": "Mine", "benchmarks": ["arc_easy", custom.name]})
    )
    data = tmp_path / "data"
    (data / "arc_easy").mkdir(parents=True)
    for split in ("test", "train", "validation"):
        (data / "arc_easy" / f"{split}.jsonl").write_text(
            (data_root / "arc_easy" / f"{split}.jsonl").read_text()
        )
    out = tmp_path / "out"
    ok(gnomon("run", "--model", f"hf:{llama_dir}", "--bench", f"{suite},arc_easy",
              "--data", data, "--limit", "3", "--store", tmp_path / "s.sqlite", "--out", out,
              "--device", "cpu"))  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    assert sorted(results["benchmarks"]) == ["arc_easy", "quiz"]  # arc_easy once, not twice


def test_suite_naming_an_unknown_benchmark(llama_dir: Path, tmp_path: Path) -> None:
    suite = tmp_path / "broken.yaml"
    suite.write_text("id: broken\ntitle: Broken\nbenchmarks:\n  - arc_easy\n  - mmlu_prp\n")
    proc = gnomon("run", "--model", f"hf:{llama_dir}", "--bench", suite,
                  "--store", tmp_path / "s.sqlite")  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert f"{suite}:5:" in line and "mmlu_prp" in line
    unknown = gnomon("run", "--model", f"hf:{llama_dir}", "--bench", "suite:nope",
                     "--store", tmp_path / "s.sqlite")  # fmt: skip
    assert unknown.returncode == 2 and "unknown suite 'nope'" in unknown.stderr


def test_missing_field_names_field_file_and_line(llama_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "gsm"
    data.mkdir()
    rows = [{"question": "What is 1 + 2?", "answer": "#### 3"}, {"answer": "#### 4"}]
    (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = gnomon("run", "--model", f"hf:{llama_dir}", "--bench", "gsm8k", "--shots", "0",
                  "--data", data, "--store", tmp_path / "s.sqlite")  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert f"{data / 'test.jsonl'}:2" in line and "`question`" in line


def test_generation_without_an_answer_is_counted(llama_dir: Path, tmp_path: Path) -> None:
    """A random tiny model writes no "#### N": each sample is scored wrong and counted as
    "no answer", and the run succeeds."""
    data = tmp_path / "gsm"
    data.mkdir()
    rows = [{"question": f"What is {i} + 2?", "answer": f"#### {i + 2}"} for i in range(3)]
    (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    proc = ok(gnomon("run", "--model", f"hf:{llama_dir}", "--bench", "gsm8k", "--shots", "0",
                     "--data", data, "--store", tmp_path / "s.sqlite", "--out", out,
                     "--device", "cpu"))  # fmt: skip
    report = json.loads((out / "results.json").read_text())["benchmarks"]["gsm8k"]
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    none = sum(s["extractor"] == "none" for s in samples)
    assert report["no_answer"] == none >= 1
    assert report["metrics"]["exact_match"]["value"] == 0.0
    assert f"{none} no answer" in proc.stdout


def test_readme_lists_the_hub() -> None:
    """The README's benchmark table is the hub's (regenerate: scripts/hub_table.py)."""
    import importlib.util

    root = Path(__file__).resolve().parent.parent
    loader = importlib.util.spec_from_file_location("hub_table", root / "scripts" / "hub_table.py")
    assert loader is not None and loader.loader is not None
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    readme = (root / "README.md").read_text(encoding="utf-8")
    start, end = readme.find(module.BEGIN), readme.find(module.END)
    assert start >= 0 and end > start, "README has no hub table"
    assert readme[start : end + len(module.END)] == module.hub_table(), (
        "README's hub table is stale: run scripts/hub_table.py and paste its output"
    )
    import re

    counts = re.search(r"\d+ benchmarks in \d+ families", module.hub_table())
    assert counts is not None
    assert f"**{counts.group(0)}**" in readme[:start], "the README's opening count is stale"
