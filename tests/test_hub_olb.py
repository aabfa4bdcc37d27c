"""The Open LLM Leaderboard benchmarks: what the agreement harness does not check.

The normalised score (module, report and the printed table), the MATH-hard scorer against lm-eval's
own `process_results` on hand-picked outputs, the spec features these benchmarks brought (few-shot
files, `where`, split hooks, subsets as splits, scorers, baselines) and their bad input, the
shipped few-shot data against lm-eval's task files, and the real sample rows.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import lm_eval
import pytest
import yaml

from gnomon.data import Row, load_split, prepare_split
from gnomon.engines.base import GenerateResult
from gnomon.errors import UserError
from gnomon.hub import resolve, resolve_suite
from gnomon.hub.leaderboard_hooks import _leaderboard_gpqa_text as _gpqa_clean
from gnomon.hub.leaderboard_hooks import bbh_tasks
from gnomon.hub.spec import BenchmarkSpec, load_spec
from gnomon.rowgen import make_rows
from gnomon.run import plan_bench
from gnomon.scoring.normalised import normalise, normalised_score
from tests.gnomon_cli import gnomon, ok

ROOT = Path(__file__).resolve().parent.parent
REAL = Path(__file__).parent / "data" / "real_rows"
LEADERBOARD = Path(lm_eval.__file__).parent / "tasks" / "leaderboard"
V2 = ["leaderboard_bbh", "leaderboard_gpqa", "leaderboard_math_hard"]
V2 += ["leaderboard_mmlu_pro", "leaderboard_musr"]


def _write(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _spec(tmp_path: Path, bench: str, **changes: object) -> Path:
    """A copy of a built-in spec with some top-level or nested (`a.b`) fields changed."""
    raw = yaml.safe_load((ROOT / "src/gnomon/hub/benchmarks" / f"{bench}.yaml").read_text())
    for key, value in changes.items():
        *parents, last = key.split(".")
        node = raw
        for part in parents:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    path = tmp_path / f"{bench}-changed.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------- normalised score
def test_normalise_rescales_above_the_baseline_and_clips_at_zero() -> None:
    assert normalise(0.25, 0.25) == 0.0
    assert normalise(0.1, 0.25) == 0.0  # below chance is 0, not negative
    assert normalise(1.0, 0.25) == 1.0
    assert normalise(0.625, 0.25) == pytest.approx(0.5)
    assert normalise(0.3, 0.0) == pytest.approx(0.3)  # generation: the score itself
    with pytest.raises(ValueError):
        normalise(0.5, 1.0)


def test_normalised_score_averages_subtasks_unweighted() -> None:
    baselines = {"a": 0.5, "b": 0.2, "c": 1 / 3}
    by_cluster = {"a": 0.75, "b": 0.1, "c": 2 / 3}  # 0.5, 0 (clipped), 0.5
    # the pooled score is not what a per-subtask baseline normalises
    assert normalised_score(baselines, 0.9, by_cluster) == pytest.approx(1 / 3)
    assert normalised_score(0.25, 0.4, {}) == pytest.approx(0.2)
    assert normalised_score(baselines, 0.5, {"a": 0.75, "b": 0.1}) is None  # a subtask missing
    assert normalised_score(0.25, math.nan, {}) is None


def test_bbh_baselines_are_one_over_each_subtasks_labels() -> None:
    spec = resolve("leaderboard_bbh")
    assert isinstance(spec.baseline, dict)
    assert set(spec.baseline) == set(spec.source.subsets or ()) == set(bbh_tasks())
    for subset, task in bbh_tasks().items():
        assert spec.baseline[subset] == pytest.approx(1 / len(task["choices"])), subset


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_run_reports_the_normalised_score(llama_dir: Path, tmp_path: Path) -> None:
    """A real run (tiny model) prints the figure and writes it, equal to the per-subtask
    rescaling of the scores it reports beside it."""
    data = tmp_path / "data"
    for subset in ("murder_mysteries", "object_placements", "team_allocation"):
        _write(data / f"{subset}.jsonl", make_rows("leaderboard_musr", subset))
    out = tmp_path / "out"
    proc = ok(
        gnomon(
            "run", "--model", f"hf:{llama_dir}", "--bench", "leaderboard_musr",
            "--data", data, "--store", tmp_path / "s.sqlite", "--out", out, "--device", "cpu",
        )
    )  # fmt: skip
    assert "normalised" in proc.stdout
    result = json.loads((out / "results.json").read_text())["benchmarks"]["leaderboard_musr"]
    clusters = {c: s["value"] for c, s in result["clusters"]["acc_norm"].items()}
    baselines = {"murder_mysteries": 0.5, "object_placements": 0.2, "team_allocation": 1 / 3}
    expected = sum(max(0.0, (clusters[c] - b) / (1 - b)) for c, b in baselines.items()) / 3
    assert result["normalised"] == pytest.approx(expected)
    assert f"{expected:.4f}" in proc.stdout


# ---------------------------------------------------------------------------- MATH-hard scorer
def _lm_eval_math() -> object:
    spec = importlib.util.spec_from_file_location("lb_math", LEADERBOARD / "math" / "utils.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MATH_CASES = [
    ("x = \\frac{1}{2}", "So $x = \\boxed{\\frac{1}{2}}$.\nFinal Answer: The final answer is "
     "$\\frac{1}{2}$. I hope it is correct."),
    ("x = \\frac{1}{2}", "Final Answer: The final answer is $0.5$. I hope it is correct."),
    ("x = \\frac{1}{2}", "Final Answer: The final answer is 1/3. I hope it is correct."),
    ("\\boxed{18}", "Final Answer: The final answer is 18 dollars. I hope it is correct."),
    ("\\boxed{18}", "The answer is 18"),
    ("\\boxed{18}", "The final answer is $\\boxed{17}$"),
    ("\\boxed 7", "Final Answer: The final answer is $7$. I hope it is correct."),
    ("\\boxed{(1,3]}", "Final Answer: The final answer is $(1,3]$. I hope it is correct."),
    ("\\boxed{2\\sqrt{3}}", "Final Answer: The final answer is $\\sqrt{12}$. I hope it is."),
    ("\\fbox{4}", "Final Answer: The final answer is $4$. I hope it is correct."),
    ("\\boxed{10,000}", "Final Answer: The final answer is 10000. I hope it is correct."),
    ("\\boxed{5}", ""),
]  # fmt: skip


@pytest.mark.parametrize(("boxed", "output"), MATH_CASES)
def test_math_hard_scorer_matches_lm_eval_process_results(boxed: str, output: str) -> None:
    theirs_module = _lm_eval_math()
    solution = f"We find the value. The answer is ${boxed}$."
    row = {"problem": "Find it.", "level": "Level 5", "type": "Algebra", "solution": solution}
    (doc,) = theirs_module.process_docs(_Dataset([row]))  # type: ignore[attr-defined]
    theirs = theirs_module.process_results(doc, [output])  # type: ignore[attr-defined]
    spec = resolve("leaderboard_math_hard")
    plan_rows = [Row(0, {**row, "subset": "algebra"}, "case")]
    from gnomon.modes import mode_for
    from gnomon.prompts import Renderer

    (sample,) = Renderer(spec, 0).render(plan_rows, [], False)
    assert sample.target == doc["answer"]
    ours = mode_for(spec).result(sample, [GenerateResult(output, False)])
    assert ours["metrics"] == {k: float(v) for k, v in theirs.items()}


@pytest.mark.parametrize(
    ("output", "answered"),
    [
        ("The river moves the stone.", False),  # nothing either metric can read
        ("", False),
        ("So it is $x^2$.", True),  # math-verify reads it
        ("Final Answer: The final answer is 7. I hope it is correct.", True),
    ],
)
def test_math_hard_output_without_an_answer_is_no_answer(output: str, answered: bool) -> None:
    """An output the scorer finds no answer in is scored wrong and counted as "no answer"."""
    from gnomon.modes import mode_for
    from gnomon.prompts import Renderer

    spec = resolve("leaderboard_math_hard")
    row = {"problem": "Find it.", "level": "Level 5", "type": "Algebra", "subset": "algebra",
           "solution": "The answer is $\\boxed{7}$."}  # fmt: skip
    (sample,) = Renderer(spec, 0).render([Row(0, row, "case")], [], False)
    result = mode_for(spec).result(sample, [GenerateResult(output, False)])
    assert (result["extractor"] != "none") is answered
    if not answered:
        assert result["metrics"] == {"exact_match": 0.0, "exact_match_original": 0.0}


def test_math_hard_scores_are_not_all_equal() -> None:
    """The cases above exercise both outcomes of both metrics."""
    module = _lm_eval_math()
    seen: set[tuple[str, int]] = set()
    for boxed, output in MATH_CASES:
        (doc,) = module.process_docs(  # type: ignore[attr-defined]
            _Dataset([{"problem": "p", "level": "Level 5", "solution": f"${boxed}$"}])
        )
        seen |= set(module.process_results(doc, [output]).items())  # type: ignore[attr-defined]
    assert seen == {("exact_match", 0), ("exact_match", 1), ("exact_match_original", 0),
                    ("exact_match_original", 1)}  # fmt: skip


class _Dataset(list):
    """The two `datasets.Dataset` methods lm-eval's process_docs calls, over a list."""

    def filter(self, keep):  # type: ignore[no-untyped-def]
        return _Dataset(x for x in self if keep(x))

    def map(self, fn):  # type: ignore[no-untyped-def]
        return _Dataset({**x, **fn(x)} for x in self)


# ---------------------------------------------------------------------------- spec features
def test_where_keeps_level_5_rows_and_their_positions(tmp_path: Path) -> None:
    rows = make_rows("leaderboard_math_hard", "test")
    _write(tmp_path / "test.jsonl", rows)
    loaded = load_split(resolve("leaderboard_math_hard"), "test", tmp_path)
    kept = [i for i, r in enumerate(rows) if r["level"] == "Level 5"]
    assert 0 < len(kept) < len(rows)
    assert [(r.index, r.fields) for r in loaded] == [(i, rows[i]) for i in kept]
    assert loaded[0].origin.endswith(f"test.jsonl:{kept[0] + 1}")


def test_gpqa_options_are_shuffled_per_subset_from_seed_0() -> None:
    spec = resolve("leaderboard_gpqa")
    rows = [Row(i, r, f"r{i}") for i, r in enumerate(make_rows("leaderboard_gpqa", "train"))]
    prepared = prepare_split(spec, rows)
    alone = prepare_split(spec, [r for r in rows if r.fields["subset"] == "gpqa_main"])
    mixed = [r.fields for r in prepared if r.fields["subset"] == "gpqa_main"]
    assert mixed == [r.fields for r in alone]  # each subset's shuffle starts afresh
    answers = {r.fields["answer"] for r in prepared}
    assert len(answers) > 1  # the gold moves
    for r in prepared:
        f = r.fields
        options = [f[f"choice{i}"] for i in (1, 2, 3, 4)]
        raw = [f["Correct Answer"]] + [f[f"Incorrect Answer {i}"] for i in (1, 2, 3)]
        assert sorted(options) == sorted(_gpqa_clean(o) for o in raw)  # a permutation
        assert options["ABCD".index(f["answer"][1])] == _gpqa_clean(f["Correct Answer"])


def test_subsets_as_splits_read_one_file_each(tmp_path: Path) -> None:
    spec = resolve("leaderboard_musr")
    _write(tmp_path / "murder_mysteries.jsonl", make_rows("leaderboard_musr", "murder_mysteries"))
    with pytest.raises(UserError, match=r"no object_placements\.jsonl"):
        load_split(spec, spec.source.eval_split, tmp_path)
    for subset in ("object_placements", "team_allocation"):
        _write(tmp_path / f"{subset}.jsonl", make_rows("leaderboard_musr", subset))
    rows = load_split(spec, spec.source.eval_split, tmp_path)
    assert [r.fields["subset"] for r in rows] == ["murder_mysteries"] * 6 + [
        "object_placements"
    ] * 6 + ["team_allocation"] * 6
    assert rows[7].origin.endswith("object_placements.jsonl:2")


@pytest.mark.parametrize(
    ("bench", "changes", "message"),
    [
        ("leaderboard_mmlu_pro", {"cluster_by": None, "baseline": {"a": 0.5}}, "cluster_by"),
        ("leaderboard_mmlu_pro", {"baseline": 1.0}, "baseline"),
        ("leaderboard_math_hard", {"scorer": "nope"}, "unknown scorer"),
        ("leaderboard_math_hard", {"scorer": None}, "computed by a registered `scorer`"),
        ("leaderboard_math_hard", {"metrics": ["exact_match", "f1"]}, "computes"),
        ("leaderboard_math_hard", {"fewshot.split": "train"}, "not both"),
        ("leaderboard_math_hard", {"fewshot.file": "../x.jsonl"}, "fewshot.file"),
        ("leaderboard_math_hard", {"source.where": "level =="}, "where"),
        ("leaderboard_musr", {"source.subsets": None}, "subsets"),
        ("leaderboard_gpqa", {"scorer": "leaderboard_math"}, "generate mode"),
    ],
)
def test_bad_specs_are_one_line_errors(
    tmp_path: Path, bench: str, changes: dict, message: str
) -> None:
    path = _spec(tmp_path, bench, **changes)
    with pytest.raises(UserError, match=message) as err:
        load_spec(path)
    assert "\n" not in str(err.value)


def test_unchanged_specs_hash_as_before() -> None:
    """The new optional fields leave every other spec's prompt hash alone."""
    assert resolve("hellaswag").prompt_hash() == "da85975e3b5ef17d"
    assert resolve("gsm8k").prompt_hash() == "0c1dabd014860a2d"


@pytest.mark.parametrize(
    ("bench", "split", "row", "message"),
    [
        ("leaderboard_musr", "murder_mysteries", {"choices": "Ana, Tom"}, "cannot prepare row"),
        ("leaderboard_musr", "murder_mysteries", {"answer_choice": "Nobody"}, "not in list"),
        ("leaderboard_gpqa", "train", {"Correct Answer": 5}, "prepare row: an option is int"),
        ("leaderboard_gpqa", "train", {"Incorrect Answer 2": None}, "lacks field `Incorrect"),
        ("leaderboard_musr", "murder_mysteries", {"choices": "['Ana' 'Tom"}, "Python literal"),
        ("leaderboard_math_hard", "test", {"problem": None}, "row lacks field `problem`"),
        ("leaderboard_math_hard", "test", {"level": None}, "no field `level`, which"),
    ],
)
def test_bad_rows_are_one_line_errors_naming_the_row(
    tmp_path: Path, bench: str, split: str, row: dict, message: str
) -> None:
    rows = make_rows(bench, split)
    rows = [{**r, "level": "Level 5"} if bench == "leaderboard_math_hard" else r for r in rows]
    bad = {k: v for k, v in {**rows[1], **row}.items() if v is not None}
    spec = resolve(bench)
    names = spec.source.subsets if spec.source.splits_are_subsets else [split]
    for name in names or ():
        _write(
            tmp_path / f"{name}.jsonl", [rows[0], bad] if name == split else make_rows(bench, name)
        )
    proc = gnomon("hub", "show", bench, "--data", tmp_path, "--index", "1")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    line = proc.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line and message in line, line


# ---------------------------------------------------------------------------- shipped data
def test_bbh_shots_are_the_first_three_of_the_subtask() -> None:
    spec = resolve("leaderboard_bbh")
    rows = make_rows("leaderboard_bbh", "test", 24)
    with_data = plan_bench(spec, _write_dir(rows), None, None, "m")
    for sample in with_data.samples:
        task = yaml.safe_load((LEADERBOARD / "bbh_mc" / f"{sample.cluster}.yaml").read_text())
        first = task["fewshot_config"]["samples"][0]
        assert sample.context.startswith(f"{task['description']}Q: {first['input']}\nA: ")
        assert sample.context.count("\n\nQ: ") == 3


def _write_dir(rows: list[dict]) -> Path:
    import tempfile

    root = Path(tempfile.mkdtemp())
    _write(root / "test.jsonl", rows)
    return root


@pytest.mark.parametrize("suite", ["open-llm-leaderboard-v1", "open-llm-leaderboard-v2"])
def test_suites_resolve(suite: str) -> None:
    specs = resolve_suite(f"suite:{suite}")
    ids = [s.id for s in specs]
    if suite.endswith("v2"):
        assert ids == V2
    else:
        shots = {s.id: s.fewshot.count for s in specs}
        assert shots == {
            "arc_challenge_25shot": 25, "hellaswag_10shot": 10, "mmlu": 5,
            "truthfulqa_mc2": 0, "winogrande_5shot": 5, "gsm8k": 5,
        }  # fmt: skip


REAL_SPLITS = {
    "leaderboard_bbh": "test",
    "leaderboard_gpqa": "train",
    "leaderboard_mmlu_pro": "test",
}


@pytest.mark.parametrize("bench", sorted(p.stem for p in REAL.glob("leaderboard_*.jsonl")
                                         if not p.stem.endswith(".fewshot")))  # fmt: skip
def test_real_rows_render(bench: str, tmp_path: Path) -> None:
    spec: BenchmarkSpec = resolve(bench)
    rows = [json.loads(line) for line in (REAL / f"{bench}.jsonl").read_text().splitlines()]
    if spec.source.splits_are_subsets:
        for subset in spec.source.subsets or ():
            _write(tmp_path / f"{subset}.jsonl", [r for r in rows if r["subset"] == subset])
    else:
        _write(tmp_path / f"{REAL_SPLITS[bench]}.jsonl", rows)
    shots = REAL / f"{bench}.fewshot.jsonl"
    if shots.is_file():
        (tmp_path / f"{spec.fewshot.split}.jsonl").write_text(shots.read_text())
    plan = plan_bench(spec, tmp_path, None, None, "m")
    assert len(plan.samples) == len(rows)
    for sample in plan.samples:
        assert "[TRUNCATED]" in sample.context
        assert sample.context.rstrip().endswith(("Answer:", "A:"))
        assert isinstance(sample.target, int) and 0 <= sample.target < len(sample.choices)


def _local_hub(
    root: Path, files: dict[str, list[dict]], configs: dict[str, dict[str, str]]
) -> Path:
    """A dataset folder `datasets` loads as it loads a hub id: data files and a card that names
    its configs and their splits."""
    for name, rows in files.items():
        _write(root / name, rows)
    card = {
        "configs": [
            {"config_name": c, "data_files": [{"split": s, "path": p} for s, p in splits.items()]}
            for c, splits in configs.items()
        ]
    }
    (root / "README.md").write_text(f"---\n{yaml.safe_dump(card)}---\n", encoding="utf-8")
    return root


@pytest.mark.parametrize("by_split", [False, True])
def test_hub_subsets_are_numbered_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, by_split: bool
) -> None:
    """Rows of several subsets read from a dataset (configs one after another, or MuSR's splits)
    are numbered 0, 1, 2, ... and tagged with their subset."""
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    a, b = [{"x": 1}, {"x": 2}], [{"x": 3}, {"x": 4}, {"x": 5}]
    if by_split:
        configs = {"default": {"one": "one.jsonl", "two": "two.jsonl"}}
    else:
        configs = {"one": {"test": "one.jsonl"}, "two": {"test": "two.jsonl"}}
    hub = _local_hub(tmp_path / "ds", {"one.jsonl": a, "two.jsonl": b}, configs)
    source = {"hub": str(hub), "subsets": ["one", "two"]}
    source["eval_split"] = "{subset}" if by_split else "test"
    path = _spec(tmp_path, "leaderboard_mmlu_pro", source=source, fewshot=None, baseline=None)
    spec = load_spec(path)
    rows = load_split(spec, spec.source.eval_split, None)
    assert [(r.index, r.fields["x"], r.fields["subset"]) for r in rows] == [
        (0, 1, "one"), (1, 2, "one"), (2, 3, "two"), (3, 4, "two"), (4, 5, "two")
    ]  # fmt: skip
    assert "two" in rows[3].origin and rows[3].origin.endswith("[1]")
