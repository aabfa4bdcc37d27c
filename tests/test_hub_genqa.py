"""The generation QA benchmarks of the hub (MMLU-Pro, BBH, GPQA, TriviaQA, NQ open, DROP): what the
agreement harness cannot check by itself.

- a target may be a list of references (TriviaQA's aliases, NQ's answers, DROP's answers of
  several spans), and a metric takes the best over them, as lm-evaluation-harness does;
- DROP's em and f1, and the multi_choice extractor (GPQA CoT's flexible-extract), against
  lm-evaluation-harness's own code on many made-up cases;
- GPQA's shuffled answers, against lm-evaluation-harness's `process_docs` under its evaluator's
  seed; BBH's shipped worked examples, against lm-evaluation-harness's task files;
- bad input: a target that is not text or a list of texts, an unknown BBH task, a spec asking for
  few-shot examples from both a split and a package file.
"""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path
from types import ModuleType
from typing import Any

import lm_eval
import pytest
import yaml
from gnomon_cli import gnomon, ok
from lm_eval_bridge import build_tasks

from gnomon.data import Row, prepare_split
from gnomon.engines.base import GenerateResult
from gnomon.errors import UserError
from gnomon.hub import resolve
from gnomon.hub.spec import ChoiceMatch, Extractor
from gnomon.modes import mode_for
from gnomon.pipeline.plan import plan_bench
from gnomon.prompts import Renderer
from gnomon.rowgen import make_rows
from gnomon.scoring.drop import drop_em, drop_f1
from gnomon.scoring.extractors import MultiChoiceExtractor

LM_EVAL_TASKS = Path(lm_eval.__file__).parent / "tasks"
ROOT = Path(__file__).resolve().parent.parent


def _module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"lm_eval_utils_{path.parent.name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(folder: Path, split: str, rows: list[dict[str, Any]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def _score(bench: str, rows: list[dict[str, Any]], split: str, outputs: list[str], tmp: Path):
    """gnomon's result for each row answered with the output of the same position."""
    plan = plan_bench(resolve(bench), _write(tmp / bench, split, rows), None, None, "test")
    return [
        plan.mode.result(s, [GenerateResult(out, False)])
        for s, out in zip(plan.samples, outputs, strict=True)
    ]


# ---------------------------------------------------------------------------- reference lists
def test_a_list_of_references_scores_its_best_match(tmp_path: Path) -> None:
    """TriviaQA: right when the answer equals any alias (case and punctuation ignored), and
    only then; the result keeps the whole list as the target."""
    row = json.loads((ROOT / "tests/data/real_rows/triviaqa.jsonl").read_text())
    aliases = row["answer"]["aliases"]
    assert len(aliases) > 2
    outputs = [" sunset BOULEVARD", "West Sunset Boulevard!", "Sunset Strip", " Sunset Blvd "]
    rows = [{**row, "question_id": f"tc_{i}"} for i in range(4)]
    results = _score("triviaqa", rows, "validation", outputs, tmp_path)
    assert [r["metrics"]["exact_match"] for r in results] == [1.0, 1.0, 0.0, 1.0]
    assert results[0]["target"] == aliases
    # one alias on its own: the other spellings no longer count
    alone = [{**r, "answer": {**r["answer"], "aliases": ["Sunset Strip"]}} for r in rows]
    again = _score("triviaqa", alone, "validation", outputs, tmp_path / "alone")
    assert [r["metrics"]["exact_match"] for r in again] == [0.0, 0.0, 1.0, 0.0]


def test_nq_open_ignores_articles_in_every_reference(tmp_path: Path) -> None:
    rows = [
        {"question": f"who wrote it {i}", "answer": ["the Beatles", "John Lennon"]}
        for i in range(4)
    ]
    outputs = [" Beatles", "a john lennon.", "The Rolling Stones", "an  Beatles"]
    results = _score("nq_open", rows, "validation", outputs, tmp_path)
    assert [r["metrics"]["exact_match"] for r in results] == [1.0, 1.0, 0.0, 0.0]


def test_a_shot_shows_the_first_reference(tmp_path: Path) -> None:
    """With shots, a list target shows its first item (lm-eval's `a[0]`)."""
    rows = make_rows("nq_open", "validation", 3)
    spec = resolve("nq_open").model_copy(
        update={"fewshot": resolve("nq_open").fewshot.model_copy(update={"count": 1})}
    )
    shots = [Row(0, {"question": "who sang it", "answer": ["Tom", "Maria"]}, "shot")]
    samples = Renderer(spec).render([Row(0, rows[0], "r")], shots, same_split=False)
    assert samples[0].context.startswith("Answer these questions:\n\nQ: who sang it?\nA: Tom\nQ:")


@pytest.mark.parametrize(
    ("target", "needle"),
    [
        ("[]", "non-empty list"),
        ("[1, 2]", "non-empty list"),
        ("[['a'], []]", "non-empty list"),
        ("{'a': 1}", "non-empty list"),
    ],
)
def test_a_target_that_is_not_references_is_one_line(
    tmp_path: Path, target: str, needle: str
) -> None:
    _write(tmp_path / "data", "test", [{"q": "why", "a": "b"}])
    spec = {
        "id": "refs", "title": "refs", "dimension": "knowledge", "version": 1,
        "source": {"files": "data", "eval_split": "test"},
        "prompt": {"template": "{{ q }}", "target": target},
        "mode": "generate", "generation": {"max_tokens": 4}, "metrics": ["exact_match"],
    }  # fmt: skip
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    proc = gnomon("hub", "show", path, "--data", tmp_path / "data")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert needle in proc.stderr and "test.jsonl:1" in proc.stderr


# ---------------------------------------------------------------------------- DROP
@pytest.fixture(scope="module")
def drop_utils() -> ModuleType:
    return _module(LM_EVAL_TASKS / "drop" / "utils.py")


DROP_CASES = [
    ("3", ["3.0"], 1.0, 1.0),  # numbers compare as numbers
    ("three", ["3"], 0.0, 0.0),  # a gold number must appear in the answer
    ("The Raiders won 3 games", ["3"], 0.0, 0.4),
    ("Chaz Schilens", ["Chaz Schilens", "JaMarcus Russell"], 0.0, 0.5),  # one of two spans
    ("the  chaz-schilens.", ["Chaz Schilens"], 1.0, 1.0),
    ("anything", [""], 0.0, 0.0),  # a blank gold answer counts as no answer
]


@pytest.mark.parametrize(("prediction", "gold", "em", "f1"), DROP_CASES)
def test_drop_metrics_on_known_cases(
    prediction: str, gold: list[str], em: float, f1: float, drop_utils: ModuleType
) -> None:
    assert drop_em(prediction, gold) == em
    assert drop_f1(prediction, gold) == f1
    assert drop_utils.process_results({"answers": [tuple(gold)]}, [prediction]) == {
        "em": em,
        "f1": f1,
    }


def test_drop_metrics_equal_lm_eval_on_random_answers(drop_utils: ModuleType) -> None:
    words = ["the", "Chaz", "Schilens", "3", "3.0", "1,000", "a", "river", "-", "45-yard", "a.",
             "Jan", "five", "5", "", " ", "12.50", "The", "1999", "May"]  # fmt: skip
    r = random.Random(7)
    seen = set()
    for _ in range(3000):
        prediction = " ".join(r.choice(words) for _ in range(r.randint(0, 5)))
        golds = [
            tuple(" ".join(r.choice(words) for _ in range(r.randint(0, 3))) for _ in range(k))
            for k in (r.randint(1, 3) for _ in range(r.randint(1, 3)))
        ]
        theirs = drop_utils.process_results({"answers": golds}, [prediction])
        ours = {
            "em": max(drop_em(prediction, list(g)) for g in golds),
            "f1": max(drop_f1(prediction, list(g)) for g in golds),
        }
        assert ours == theirs, (prediction, golds)
        seen.add((theirs["em"], theirs["f1"]))
    assert len(seen) > 8  # the cases reach many different scores, not only 0 and 1


def test_drop_answers_and_scores_through_the_cli(tmp_path: Path, drop_utils: ModuleType) -> None:
    """`gnomon score` on DROP rows: gold answers as lm-eval's `process_docs` reads them (the
    answer and each validated answer, duplicates once), and its em and f1 per sample."""
    rows = make_rows("drop", "validation")
    data = _write(tmp_path / "data", "validation", rows)
    outputs = {}
    for i, row in enumerate(rows):
        golds = drop_utils.get_answers(row)
        outputs[row["query_id"]] = [f" {golds[0][0]}", "Tom and the river", " 12 "][i % 3]
    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(json.dumps({"sample_id": k, "output": v}) + "\n"
                               for k, v in outputs.items()))  # fmt: skip
    out = tmp_path / "out"
    ok(gnomon("score", answers, "--bench", "drop", "--data", data, "--store",
              tmp_path / "s.sqlite", "--out", out))  # fmt: skip
    samples = {
        s["sample_id"]: s
        for s in map(json.loads, (out / "samples.jsonl").read_text().split("\n")[:-1])
    }
    right = 0
    for row in rows:
        sample = samples[row["query_id"]]
        golds = drop_utils.get_answers(row)
        assert sample["target"] == [list(g) for g in golds]
        theirs = drop_utils.process_results({"answers": golds}, [outputs[row["query_id"]]])
        assert sample["metrics"] == theirs
        right += theirs["em"] > 0
    assert 0 < right < len(rows)


# ---------------------------------------------------------------------------- multi_choice
def test_multi_choice_extractor_equals_lm_eval_filter() -> None:
    from lm_eval.filters.extraction import MultiChoiceRegexFilter

    choices = ["Paris", "Paris, Texas", "the Moon", "42 km/h", "Lyon"]
    r = random.Random(3)
    pieces = ["The answer is", "(B)", "(E)", "paris", "PARIS, texas!", "the moon.", "42 km h"]
    pieces += ["Answer: C", "answer:D", ":  A", "so", "(Z)", "\n", "lyon", "I think", "(a)"]
    texts = ["", "nothing", *(" ".join(r.sample(pieces, r.randint(1, 5))) for _ in range(400))]
    for options in (
        {"ignore_case": True, "ignore_punctuation": True},
        {"ignore_case": False, "ignore_punctuation": False},
    ):
        for group_select in (0, -1):
            theirs = MultiChoiceRegexFilter(
                regex_pattern=r"(\([A-Z]\))", group_select=group_select, **options
            )
            ours = MultiChoiceExtractor(
                Extractor(
                    name="flexible",
                    kind="multi_choice",
                    regex=r"(\([A-Z]\))",
                    group_select=group_select,
                    choice_match=ChoiceMatch(**options),
                )  # fmt: skip
            )
            expected = theirs.apply([[t] for t in texts], [{"choices": choices}] * len(texts))
            got = [[ours(t, choices) or "[invalid]"] for t in texts]
            assert got == expected
            assert len({g[0] for g in got}) >= 5  # letters, choice texts and colons all found


def test_multi_choice_needs_choices_in_generate_mode(tmp_path: Path) -> None:
    spec = resolve("gpqa_main_cot_zeroshot").model_dump()
    del spec["prompt"]["choices"]
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    proc = gnomon("hub", "show", path)
    assert proc.returncode == 2 and "multi_choice extractor needs" in proc.stderr


# ---------------------------------------------------------------------------- GPQA's shuffle
def test_gpqa_answers_are_shuffled_as_lm_eval_shuffles_them() -> None:
    """lm-eval shuffles with Python's global generator, seeded with 0 by its evaluator: one
    generator through the rows in order, as the split hook does."""
    datasets = pytest.importorskip("datasets")
    utils = _module(LM_EVAL_TASKS / "gpqa" / "zeroshot" / "utils.py")
    rows = make_rows("gpqa_main_zeroshot", "train", 40)
    state = random.getstate()
    try:
        random.seed(0)
        theirs = list(utils.process_docs(datasets.Dataset.from_list(rows)))
    finally:
        random.setstate(state)
    prepared = prepare_split(
        resolve("gpqa_main_zeroshot"), [Row(i, r, "x") for i, r in enumerate(rows)]
    )
    ours = [r.fields for r in prepared]
    keys = ("choice1", "choice2", "choice3", "choice4", "answer")
    assert [{k: d[k] for k in keys} for d in ours] == [{k: d[k] for k in keys} for d in theirs]
    assert len({d["answer"] for d in theirs}) == 4  # every position holds the answer somewhere


def test_gpqa_cot_reads_letters_and_choice_texts(tmp_path: Path) -> None:
    rows = make_rows("gpqa_diamond_cot_zeroshot", "train", 3)
    plan = plan_bench(
        resolve("gpqa_diamond_cot_zeroshot"), _write(tmp_path, "train", rows), None, None, "t"
    )
    sample = plan.samples[0]
    gold = "ABCD".index(str(sample.target)[1])
    said = f"Well, {sample.choices[gold]} it is"  # no letter: found by the choice's text
    result = plan.mode.result(sample, [GenerateResult(said, False)])
    assert result["metrics"] == {"exact_match": 0.0, "exact_match_flexible-extract": 1.0}
    result = plan.mode.result(sample, [GenerateResult(f"The answer is {sample.target}.", False)])
    assert result["metrics"] == {"exact_match": 1.0, "exact_match_flexible-extract": 1.0}


# ---------------------------------------------------------------------------- BBH's examples
def test_bbh_examples_are_lm_eval_s() -> None:
    """The shipped file is what scripts/hub_fewshot.py reads from lm-eval's task files today:
    three examples for each of the spec's 27 tasks, with each task's description."""
    script = _module(ROOT / "scripts" / "hub_fewshot.py")
    shipped = (ROOT / "src/gnomon/hub/fewshot/bbh_cot_fewshot.jsonl").read_text()
    rows = [json.loads(line) for line in shipped.splitlines()]
    assert rows == script.bbh_cot()
    subsets = [r["subset"] for r in rows]
    assert set(subsets) == set(resolve("bbh").source.subsets or ())
    assert all(subsets.count(s) == 3 for s in subsets)


def test_bbh_shots_come_from_the_shipped_file_whatever_the_data(tmp_path: Path) -> None:
    rows = [
        {"input": "not ( True ) is", "target": "False", "subset": "boolean_expressions"},
        {"input": "Sort: b a", "target": "a b", "subset": "word_sorting"},
    ]
    plan = plan_bench(resolve("bbh"), _write(tmp_path, "test", rows), None, None, "t")
    first, second = plan.samples
    assert first.context.startswith("Evaluate the result of a random Boolean expression.\n\nQ: ")
    assert first.context.count("\nA: Let's think step by step.\n") == 4  # 3 shots + question
    assert first.context.endswith("Q: not ( True ) is\nA: Let's think step by step.\n")
    assert second.context.startswith("Sort a list of words.\n\nQ: ")
    result = plan.mode.result(first, [GenerateResult("So the answer is False.", False)])
    assert result["metrics"] == {"exact_match": 1.0}


def test_bbh_row_of_an_unknown_task_is_one_line(tmp_path: Path) -> None:
    rows = [{"input": "x", "target": "y", "subset": "not_a_task"}]
    with pytest.raises(UserError, match="not_a_task.*not one of the 27 BBH tasks"):
        plan_bench(resolve("bbh"), _write(tmp_path, "test", rows), None, None, "t")


def test_fewshot_from_a_split_and_a_package_is_refused(tmp_path: Path) -> None:
    spec = resolve("bbh").model_dump()
    spec["fewshot"]["split"] = "test"
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    proc = gnomon("hub", "show", path)
    assert proc.returncode == 2 and "not both" in proc.stderr


def test_mode_reports_lm_eval_metric_names() -> None:
    names = {b: mode_for(resolve(b), 1, None, False).metric_names() for b in ("drop", "bbh")}
    assert names == {"drop": ["em", "f1"], "bbh": ["exact_match"]}


# ---------------------------------------------------------------------------- TruthfulQA
def test_truthfulqa_metrics_equal_lm_eval(tmp_path: Path) -> None:
    """All twelve metrics, per sample, equal lm-eval's `process_results_gen` over its own
    processed answers, for answers near a correct one, near an incorrect one, and neither."""
    datasets = pytest.importorskip("datasets")
    utils = _module(LM_EVAL_TASKS / "truthfulqa" / "utils.py")
    rows = make_rows("truthfulqa_gen", "validation")
    docs = list(utils.process_docs_gen(datasets.Dataset.from_list(rows)))
    outputs = []
    for i, doc in enumerate(docs):
        pick = [doc["correct_answers"][0], doc["incorrect_answers"][0], " I cannot say . Maybe."]
        outputs.append(" " + pick[i % 3])
    results = _score("truthfulqa_gen", rows, "validation", outputs, tmp_path)
    wins = set()
    for doc, out, result in zip(docs, outputs, results, strict=True):
        theirs = utils.process_results_gen(doc, [out])
        assert result["metrics"].keys() == theirs.keys()
        for name, value in theirs.items():
            assert result["metrics"][name] == pytest.approx(float(value), abs=1e-9), name
        wins.add(theirs["bleu_acc"])
        assert result["target"]["correct"] == doc["correct_answers"]
    assert wins == {0, 1}


def test_truthfulqa_metric_without_its_answers_is_reported(tmp_path: Path) -> None:
    """A spec giving a TruthfulQA metric a plain target: the sample is reported unscored, with
    the reason, and nothing is stored as a score (no traceback, no made-up number)."""
    _write(tmp_path / "data", "test", [{"q": "why", "a": "because"}])
    spec = {
        "id": "tqa", "title": "tqa", "dimension": "knowledge", "version": 1,
        "source": {"files": "data", "eval_split": "test"},
        "prompt": {"template": "{{ q }}", "target": "a"},
        "mode": "generate", "generation": {"max_tokens": 4}, "metrics": ["bleu_max"],
    }  # fmt: skip
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    answers = tmp_path / "answers.jsonl"
    answers.write_text(json.dumps({"sample_id": "0", "output": "because"}) + "\n")
    proc = gnomon("score", answers, "--bench", path, "--store", tmp_path / "s.sqlite")
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "bleu_max needs a target with `correct` and `incorrect`" in proc.stdout
    assert "0 computed" in proc.stdout


@pytest.mark.parametrize("bench", ["triviaqa", "nq_open", "drop"])
def test_shots_asked_for_are_lm_eval_s(bench: str, tmp_path: Path) -> None:
    """With --shots (these run zero-shot by default), the examples are the ones lm-eval's default
    sampler draws with `--num_fewshot 3`: one more row drawn than shown (the tasks have no test
    split), and DROP's example answers as lm-eval writes them."""
    rows = {s: make_rows(bench, s) for s in ("validation", "train")}
    for split, split_rows in rows.items():
        _write(tmp_path / "data" / bench, split, split_rows)
    spec = resolve(bench)
    plan = plan_bench(spec, tmp_path / "data", 3, None, "t")
    assert spec.reference is not None
    (task,) = build_tasks(
        spec.reference, rows["validation"], rows["train"], 3, 1234, tmp_path / "lm"
    ).values()
    assert len(task.docs) == len(plan.samples) > 4
    for sample, (_, insts) in zip(plan.samples, task.docs, strict=True):
        assert sample.context == insts[0].arguments[0]


GENQA = ["mmlu_pro", "bbh", "gpqa_main_zeroshot", "gpqa_diamond_zeroshot", "gpqa_main_cot_zeroshot",
         "gpqa_diamond_cot_zeroshot", "triviaqa", "nq_open", "drop", "truthfulqa_gen"]  # fmt: skip


@pytest.mark.parametrize("bench", GENQA)
def test_hub_show_renders_an_example(bench: str) -> None:
    """Offline, `hub show` renders a made-up row in the real schema and its target (a generate
    benchmark whose choices only help read the answer shows the target, not choices)."""
    proc = ok(gnomon("hub", "show", bench))
    assert "example prompt" in proc.stdout
    if resolve(bench).mode == "generate":
        assert "target: " in proc.stdout
