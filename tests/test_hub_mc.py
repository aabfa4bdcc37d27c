"""The multiple-choice hub's own mechanisms, beyond what the agreement harness checks against
lm-eval: choices that are contexts (WinoGrande's partial scoring), per-choice truth labels and the
`mc2` metric (TruthfulQA), RACE's row hook, and the errors bad specs and rows get."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from gnomon import text
from gnomon.engines.base import ScoreResult
from gnomon.errors import UserError
from gnomon.hub import BUILTIN_DIR, resolve
from gnomon.hub.spec import load_spec
from gnomon.modes.choice import true_mass
from gnomon.pipeline.plan import BenchPlan, plan_bench
from gnomon.prompts import ChatFormat, Renderer
from gnomon.rowgen import make_rows


def _write(root: Path, bench: str, split: str, rows: list[dict[str, Any]]) -> None:
    (root / bench).mkdir(parents=True, exist_ok=True)
    (root / bench / f"{split}.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8"
    )


def _plan(bench: str, root: Path, shots: int | None = None, spec: Any = None) -> BenchPlan:
    return plan_bench(spec or resolve(bench), root, shots, None, "test-model")


def _answers(logprobs: list[float]) -> list[ScoreResult]:
    return [ScoreResult(lp, False, False) for lp in logprobs]


# ----------------------------------------------------------------- choices as contexts
def _split_blank(sentence: str) -> tuple[str, str]:
    at = sentence.index("_")
    return sentence[:at], sentence[at + 1 :].strip()


@pytest.mark.parametrize("shots", [0, 2])
def test_winogrande_scores_the_rest_of_the_sentence_after_each_filled_context(
    tmp_path: Path, shots: int
) -> None:
    rows, train = make_rows("winogrande", "validation"), make_rows("winogrande", "train")
    _write(tmp_path, "winogrande", "validation", rows)
    _write(tmp_path, "winogrande", "train", train)
    assert any(_split_blank(r["sentence"])[1].startswith("'s") for r in rows)  # "_'s" occurs
    plan = _plan("winogrande", tmp_path, shots)
    for row, sample in zip(rows, plan.samples, strict=True):
        head, rest = _split_blank(row["sentence"])
        prefix = ""
        if shots:  # each shot: the sentence filled with its right option, then the rest
            blocks = [
                _split_blank(s["sentence"])[0] + s[f"option{s['answer']}"]
                + " " + _split_blank(s["sentence"])[1]
                for s in _shots_of(plan, sample.index, train)
            ]  # fmt: skip
            assert len(blocks) == shots
            prefix = "\n\n".join(blocks) + "\n\n"
        got = [(r.context, r.continuation) for r in plan.mode.requests(sample)]
        want = [(prefix + head + row["option1"], " " + rest), (prefix + head + row["option2"],
                 " " + rest)]  # fmt: skip
        assert got == want
        assert sample.target == int(row["answer"]) - 1
        # acc reads the argmax over the two contexts' scores of the same continuation
        result = plan.mode.result(sample, _answers([-3.0, -1.0]))
        assert result["metrics"] == {"acc": float(sample.target == 1)}


def _shots_of(plan: BenchPlan, index: int, train: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The train rows whose filled sentence opens the sample's context, in order."""
    context = plan.mode.requests(plan.samples[index])[0].context
    found = []
    for block in context.split("\n\n")[:-1]:
        found.append(
            next(
                s
                for s in train
                if block
                == _split_blank(s["sentence"])[0]
                + s[f"option{s['answer']}"]
                + " "
                + _split_blank(s["sentence"])[1]
            )
        )
    return found


def test_choices_as_contexts_cannot_be_laid_out_as_chat() -> None:
    chat = ChatFormat(apply=lambda messages: json.dumps(messages), fingerprint="x")
    with pytest.raises(UserError, match="winogrande.*choices are contexts"):
        Renderer(resolve("winogrande"), 0, chat)


def test_specs_that_do_not_use_the_new_fields_keep_their_prompt_and_sample_hashes(
    tmp_path: Path,
) -> None:
    """Stored results are keyed by these hashes: adding fields with defaults must not move them."""
    for bench in ("arc_easy", "hellaswag", "mmlu"):
        spec = resolve(bench)
        raw = spec.model_dump(exclude_defaults=True)
        raw["prompt"] = {**raw["prompt"], "choices_in": "continuation", "labels": None}
        explicit = type(spec).model_validate(raw)
        assert explicit.prompt_hash() == spec.prompt_hash()
        assert explicit.prompt_hash(5) == spec.prompt_hash(5)
    rows = make_rows("piqa", "validation")
    _write(tmp_path, "piqa", "validation", rows)
    for sample in _plan("piqa", tmp_path).samples:
        # the form every choice sample was hashed in before these fields existed
        blob = json.dumps([sample.context, sample.choices, sample.target], ensure_ascii=False,
                          sort_keys=True, default=str)  # fmt: skip
        assert sample.content_hash == hashlib.sha256(text.encode(blob)).hexdigest()[:16]
        assert sample.continuation is None and sample.labels == ()


# ----------------------------------------------------------------- mc2
def test_mc2_is_the_share_of_probability_the_true_answers_hold() -> None:
    assert true_mass([math.log(0.5), math.log(0.2), math.log(0.3)], (1, 1, 0)) == pytest.approx(0.7)
    lls = [-1.0, -2.0, -3.0]
    want = math.exp(-2) / sum(math.exp(x) for x in lls)
    assert true_mass(lls, (0, 1, 0)) == pytest.approx(want, rel=1e-12)
    # long answers: every probability underflows to 0.0 in float64, the ratio does not
    assert math.exp(-2000.0) == 0.0
    assert true_mass([-2000.0, -2001.0], (1, 0)) == pytest.approx(1 / (1 + math.exp(-1)))


def test_truthfulqa_mc2_scores_every_true_answer(tmp_path: Path) -> None:
    rows = make_rows("truthfulqa_mc2", "validation")
    _write(tmp_path, "truthfulqa_mc2", "validation", rows)
    plan = _plan("truthfulqa_mc2", tmp_path)
    assert any(sum(r["mc2_targets"]["labels"]) > 1 for r in rows)  # several true answers occur
    for row, sample in zip(rows, plan.samples, strict=True):
        labels = row["mc2_targets"]["labels"]
        assert sample.labels == tuple(labels)
        assert sample.context.endswith(f"\n\nQ: {row['question']}\nA:")
        assert sample.context.startswith("Q: What is human life expectancy in the United States?")
        lls = [-1.0 - i for i in range(len(labels))]
        result = plan.mode.result(sample, _answers(lls))
        metrics = result["metrics"]
        assert set(metrics) == {"mc2"}
        assert result["correct"] is True  # the first answer, the likeliest here, is true
        assert labels[-1] == 0  # the last answer is false: made the likeliest, it is wrong
        assert plan.mode.result(sample, _answers(lls[::-1]))["correct"] is False
        probs = [math.exp(x) for x in lls]
        assert metrics["mc2"] == pytest.approx(
            sum(p for p, t in zip(probs, labels, strict=True) if t) / sum(probs)
        )


@pytest.mark.parametrize(
    ("labels", "message"),
    [([1, 0], "labels must be"), ([0, 0, 0, 0], "no choice as true"), ("1000", "labels must")],
)
def test_bad_labels_name_the_row(tmp_path: Path, labels: Any, message: str) -> None:
    row = make_rows("truthfulqa_mc2", "validation", 1)[0]
    row["mc2_targets"] = {"choices": ["a", "b", "c", "d"], "labels": labels}
    _write(tmp_path, "truthfulqa_mc2", "validation", [row])
    with pytest.raises(UserError, match=rf"validation\.jsonl:1.*{message}"):
        _plan("truthfulqa_mc2", tmp_path)


def _spec_file(tmp_path: Path, bench: str, **changes: Any) -> Path:
    raw = yaml.safe_load((BUILTIN_DIR / f"{bench}.yaml").read_text(encoding="utf-8"))
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            raw[section] = {**raw[section], field: value}
        else:
            raw[section] = value
    path = tmp_path / f"{bench}.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_mc2_without_labels_is_refused(tmp_path: Path) -> None:
    path = _spec_file(tmp_path, "truthfulqa_mc2", prompt__labels=None)
    with pytest.raises(UserError, match="mc2.*needs `prompt.labels`"):
        load_spec(path)


def test_choice_fields_outside_choice_mode_are_refused(tmp_path: Path) -> None:
    path = _spec_file(tmp_path, "gsm8k", prompt__choices_in="context")
    with pytest.raises(UserError, match="choices_in.*choice mode"):
        load_spec(path)
    path = _spec_file(tmp_path, "winogrande", prompt__choices_in="question")
    with pytest.raises(UserError, match="choices_in"):
        load_spec(path)


# ----------------------------------------------------------------- RACE
def test_race_answers_earlier_questions_and_asks_the_last(tmp_path: Path) -> None:
    problems = [
        {"answer": "B", "options": ["w", "x", "y", "z"], "question": "The river is  _  ."},
        {"answer": "D", "options": ["a", "b", "c", "d"], "question": "Why?"},
        {"answer": "C", "options": ["p", "q", "r", "s"], "question": "Who?"},
    ]
    _write(tmp_path, "race", "test", [{"article": "Once.", "problems": str(problems)}])
    (sample,) = _plan("race", tmp_path).samples
    assert sample.context == "Article: Once.\n\nThe river is x\nQuestion: Why?\nAnswer: d\nWho?"
    assert sample.choices == ("p", "q", "r", "s") and sample.target == 2


@pytest.mark.parametrize(
    ("problems", "message"),
    [
        ("__import__('os').system('true')", "not a Python literal"),
        ("[]", "no questions"),
        ("[{'answer': 'A', 'options': ['a'], 'question': 'Q?'}]", "fewer than four options"),
        ("[{'answer': 'E', 'options': ['a', 'b', 'c', 'd'], 'question': 'Q?'}]", "'E'"),
    ],
)
def test_bad_race_rows_name_the_row(tmp_path: Path, problems: str, message: str) -> None:
    _write(tmp_path, "race", "test", [{"article": "A.", "problems": problems}])
    with pytest.raises(UserError, match=rf"test\.jsonl:1: cannot prepare row: .*{message}"):
        _plan("race", tmp_path)


# ----------------------------------------------------------------- few-shot draws
@pytest.mark.parametrize(("exclude", "kept_out"), [(None, False), (True, True), (False, False)])
def test_the_row_asked_is_kept_out_of_its_shots_as_the_spec_says(
    tmp_path: Path, exclude: bool | None, kept_out: bool
) -> None:
    """lm-eval drops a drawn shot equal to the row asked whenever its task names no test split,
    even when the shots come from another split (a train row can repeat an eval row)."""
    val = make_rows("piqa", "validation", 2)
    train = [dict(val[0]), *make_rows("piqa", "train", 3)]
    _write(tmp_path, "piqa", "validation", val)
    _write(tmp_path, "piqa", "train", train)
    path = _spec_file(tmp_path, "piqa", fewshot={"count": 2, "split": "train",
                      "sampler": "first_n", "exclude_eval_row": exclude})  # fmt: skip
    plan = _plan("piqa", tmp_path, spec=load_spec(path))
    first = plan.samples[0].context.split("\n\n")
    own = f"Question: {val[0]['goal']}\nAnswer:"
    assert (first[0].startswith(own + " ")) is not kept_out  # the copy opens the shots or not
    assert plan.samples[1].context.startswith(own + " ")  # another row's shots keep the copy
    if exclude is None:  # unset, as every spec written before the field: hashed as before
        assert plan.prompt_hash == load_spec(
            _spec_file(
                tmp_path, "piqa", fewshot={"count": 2, "split": "train", "sampler": "first_n"}
            )  # fmt: skip
        ).prompt_hash(2)


SHOT_BENCHES = ["piqa", "siqa", "commonsense_qa", "boolq", "openbookqa", "sciq", "race",
                "logiqa2", "anli_r1", "anli_r2", "anli_r3", "winogrande"]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("bench", SHOT_BENCHES)
def test_shots_asked_for_are_lm_evals(bench: str, tmp_path: Path) -> None:
    """`--shots 3` draws lm-eval's shots (`--num_fewshot 3`, seed 1234), request for request;
    the agreement harness checks the standard count, 0 for these."""
    from lm_eval_bridge import build_tasks

    from gnomon.rowgen import maker

    spec, found = resolve(bench), maker(bench)
    assert found is not None and spec.reference is not None and spec.fewshot.split
    rows = {split: make_rows(bench, split) for split in found.sizes}
    for split, split_rows in rows.items():
        _write(tmp_path / "data", bench, split, split_rows)
    plan = _plan(bench, tmp_path / "data", 3)
    tasks = build_tasks(
        spec.reference, rows[spec.source.eval_split], rows[spec.fewshot.split], 3,
        spec.fewshot.seed, tmp_path / "lm",
    )  # fmt: skip
    (task,) = tasks.values()
    assert task.num_fewshot is None and len(task.docs) == len(plan.samples)
    for sample, (_, insts) in zip(plan.samples, task.docs, strict=True):
        ours = [(r.context, r.continuation) for r in plan.mode.requests(sample)]
        assert ours == [tuple(i.arguments) for i in insts], f"{bench} row {sample.index}"


def test_hub_show_lays_out_choices_that_are_contexts_and_true_labels() -> None:
    from gnomon_cli import gnomon, ok

    shown = ok(gnomon("hub", "show", "winogrande")).stdout
    row = make_rows("winogrande", "validation")[0]
    head, rest = _split_blank(row["sentence"])
    gold = int(row["answer"]) - 1
    for i in (0, 1):
        mark = "*" if i == gold else " "
        assert f"{mark} context {i} ends: {head + row[f'option{i + 1}']!r}" in shown
    assert f"then scored: {' ' + rest!r}" in shown
    rows = make_rows("truthfulqa_mc2", "validation")
    index = next(i for i, r in enumerate(rows) if sum(r["mc2_targets"]["labels"]) > 1)
    shown = ok(gnomon("hub", "show", "truthfulqa_mc2", "--index", index)).stdout
    labels = rows[index]["mc2_targets"]["labels"]
    marks = [line[0] for line in shown.splitlines() if " continuation " in line]
    assert marks == ["*" if t else " " for t in labels] and sum(labels) > 1


def test_winogrande_answered_by_generation_lists_whole_sentences(tmp_path: Path) -> None:
    rows = make_rows("winogrande", "validation")
    _write(tmp_path, "winogrande", "validation", rows)
    plan = plan_bench(resolve("winogrande"), tmp_path, None, None, "m", choice_by_generation=True)
    for row, sample in zip(rows, plan.samples, strict=True):
        (request,) = plan.mode.requests(sample)
        head, rest = _split_blank(row["sentence"])
        assert request.context.startswith(  # 0-shot: nothing before the options
            f"A. {head}{row['option1']} {rest}\nB. {head}{row['option2']} {rest}\n"
        )


@pytest.mark.slow
def test_a_run_scores_contexts_and_mc2_then_reuses_every_answer(
    llama_dir: Path, tmp_path: Path
) -> None:
    """`gnomon run` end to end: WinoGrande's context requests and TruthfulQA's mc2 go through the
    engine, the store and the report; the same command again computes nothing."""
    from gnomon_cli import gnomon, ok, summary

    for bench in ("winogrande", "truthfulqa_mc2"):
        _write(tmp_path / "data", bench, "validation", make_rows(bench, "validation"))
    args = ["run", "--model", f"hf:{llama_dir}", "--bench", "winogrande,truthfulqa_mc2",
            "--data", tmp_path / "data", "--store", tmp_path / "s.sqlite", "--device", "cpu",
            "--dtype", "float32"]  # fmt: skip
    first = ok(gnomon(*args, "--out", tmp_path / "a"))
    assert summary(first.stdout) == (24, 0, 24)
    report = json.loads((tmp_path / "a" / "results.json").read_text())["benchmarks"]
    assert report["winogrande"]["headline"] == "acc"
    mc2 = report["truthfulqa_mc2"]["metrics"]["mc2"]
    assert report["truthfulqa_mc2"]["headline"] == "mc2" and 0.0 < mc2["value"] < 1.0
    assert mc2["method"] != "wilson"  # a share, not a 0/1 outcome: no binomial interval
    again = ok(gnomon(*args, "--out", tmp_path / "b"))
    assert summary(again.stdout) == (24, 24, 0)
