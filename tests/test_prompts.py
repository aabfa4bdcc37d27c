"""Prompt rendering of the built-in benchmarks, against strings built by hand from the rows in
lm-evaluation-harness's layout for each task."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

from gnomon.data import Row, load_split, read_jsonl
from gnomon.hub import resolve
from gnomon.hub.spec import BenchmarkSpec
from gnomon.modes import mode_for
from gnomon.prompts import Renderer, Sample


def rows_of(data_root: Path, bench: str, split: str) -> list[dict[str, Any]]:
    path = data_root / bench / f"{split}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def render(
    data_root: Path, bench: str, shots: int | None = None, split: str | None = None
) -> list[Sample]:
    spec = resolve(bench)
    split = split or spec.source.eval_split
    rows = load_split(spec, split, data_root)
    pool = load_split(spec, spec.fewshot.split, data_root) if spec.fewshot.split else []
    return Renderer(spec, shots).render(rows, pool, spec.fewshot.split == split)


def continuations(bench: str, sample: Sample) -> list[str]:
    return [r.continuation for r in mode_for(resolve(bench)).requests(sample)]


# ----------------------------------------------------------------- mmlu


def mmlu_question(row: dict[str, Any]) -> str:
    a, b, c, d = row["choices"]
    return f"{row['question'].strip()}\nA. {a}\nB. {b}\nC. {c}\nD. {d}\nAnswer:"


def test_mmlu_five_shot_prompt(data_root: Path) -> None:
    tests, dev = rows_of(data_root, "mmlu", "test"), rows_of(data_root, "mmlu", "dev")
    samples = render(data_root, "mmlu")
    assert len(samples) == len(tests)
    subjects = {r["subject"] for r in tests}
    assert len(subjects) > 1 and any("_" in s for s in subjects)
    assert any(r["question"] != r["question"].strip() for r in tests)  # stray whitespace exists
    for row, sample in zip(tests, samples, strict=True):
        shots = [d for d in dev if d["subject"] == row["subject"]][:5]
        assert len(shots) == 5
        blocks = [f"{mmlu_question(d)} {'ABCD'[d['answer']]}" for d in shots]
        want = (
            "The following are multiple choice questions (with answers) about "
            + row["subject"].replace("_", " ")
            + ".\n\n"
            + "\n\n".join(blocks)
            + "\n\n"
            + mmlu_question(row)
        )
        assert sample.context == want
        assert sample.context.endswith("\nAnswer:")
        assert sample.target == row["answer"]
        assert sample.cluster == row["subject"]
        assert continuations("mmlu", sample) == [" A", " B", " C", " D"]


def test_mmlu_literal_prompt() -> None:
    """One prompt spelled out in full, so the layout is visible in the test itself."""
    spec = resolve("mmlu")

    def row(i: int, q: str, answer: int, subject: str = "abstract_algebra") -> Row:
        fields = {"question": q, "subject": subject, "choices": ["w", "x", "y", "z"]}
        return Row(i, fields | {"answer": answer}, f"mem:{i}")

    dev = [row(i, f"Dev {i}? ", i % 4) for i in range(5)] + [row(5, "Other?", 0, "virology")]
    (sample,) = Renderer(spec).render([row(0, " Test?\n", 2)], dev, False)
    assert sample.context == (
        "The following are multiple choice questions (with answers) about abstract algebra.\n\n"
        "Dev 0?\nA. w\nB. x\nC. y\nD. z\nAnswer: A\n\n"
        "Dev 1?\nA. w\nB. x\nC. y\nD. z\nAnswer: B\n\n"
        "Dev 2?\nA. w\nB. x\nC. y\nD. z\nAnswer: C\n\n"
        "Dev 3?\nA. w\nB. x\nC. y\nD. z\nAnswer: D\n\n"
        "Dev 4?\nA. w\nB. x\nC. y\nD. z\nAnswer: A\n\n"
        "Test?\nA. w\nB. x\nC. y\nD. z\nAnswer:"
    )
    assert (sample.target, sample.choices) == (2, ("A", "B", "C", "D"))


# ----------------------------------------------------------------- arc


@pytest.mark.parametrize("bench", ["arc_easy", "arc_challenge"])
def test_arc_prompt(data_root: Path, bench: str) -> None:
    tests = rows_of(data_root, bench, "test")
    samples = render(data_root, bench)
    assert any(r["choices"]["label"][0] == "1" for r in tests)  # numeric labels occur
    for row, sample in zip(tests, samples, strict=True):
        assert sample.context == f"Question: {row['question']}\nAnswer:"
        assert sample.choices == tuple(row["choices"]["text"])
        assert sample.target == row["choices"]["label"].index(row["answerKey"])
        assert sample.sample_id == row["id"]
        assert continuations(bench, sample) == [" " + t for t in row["choices"]["text"]]


def test_arc_numeric_labels() -> None:
    spec = resolve("arc_easy")
    fields = {
        "id": "x1",
        "question": "Which?",
        "choices": {"text": ["one", "two", "three"], "label": ["1", "2", "3"]},
        "answerKey": "3",
    }
    (sample,) = Renderer(spec).render([Row(0, fields, "mem:1")], [], False)
    assert (sample.target, sample.choices) == (2, ("one", "two", "three"))


# ----------------------------------------------------------------- hellaswag


def harness_preprocess(text: str) -> str:
    text = text.strip()
    text = text.replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    return text.replace("  ", " ")


def test_hellaswag_prompt(data_root: Path) -> None:
    rows = rows_of(data_root, "hellaswag", "validation")
    samples = render(data_root, "hellaswag")
    assert any("[title]" in r["ctx_a"] for r in rows)
    assert any(r["ctx_b"] and r["ctx_b"][0].islower() for r in rows)
    for row, sample in zip(rows, samples, strict=True):
        ctx = row["ctx_a"] + " " + row["ctx_b"].capitalize()
        assert sample.context == harness_preprocess(row["activity_label"] + ": " + ctx)
        assert "[" not in sample.context and "  " not in sample.context
        assert sample.choices == tuple(harness_preprocess(e) for e in row["endings"])
        assert sample.target == int(row["label"])
        assert sample.sample_id == str(row["ind"])
        assert continuations("hellaswag", sample) == [" " + c for c in sample.choices]


def test_hellaswag_literal_clean_up() -> None:
    spec = resolve("hellaswag")
    fields = {
        "ind": 4,
        "activity_label": "Health",
        "ctx_a": "[header] How to rest [title] Lie down. [step] Close your eyes.",
        "ctx_b": "",
        "endings": ["Breathe slowly [title] Count to ten.", "Sleep  well.", "Wake up.", "Go."],
        "label": "1",
    }
    activity = fields | {"activity_label": "Skiing", "ctx_a": "A man skis.", "ctx_b": "the MAN"}
    wiki, anet = Renderer(spec).render(
        [Row(0, fields, "mem:1"), Row(1, activity, "mem:2")], [], False
    )
    assert wiki.context == "Health: How to rest. Lie down. Close your eyes."
    assert wiki.choices == ("Breathe slowly. Count to ten.", "Sleep well.", "Wake up.", "Go.")
    assert wiki.target == 1
    # ctx_b is capitalised the way str.capitalize does it (rest lower-cased)
    assert anet.context == "Skiing: A man skis. The man"


# ----------------------------------------------------------------- gsm8k


def gsm8k_block(row: dict[str, Any], answer: bool) -> str:
    text = f"Question: {row['question']}\nAnswer:"
    return text + " " + row["answer"] if answer else text


def test_gsm8k_five_shot_prompt(data_root: Path) -> None:
    tests, train = rows_of(data_root, "gsm8k", "test"), rows_of(data_root, "gsm8k", "train")
    samples = render(data_root, "gsm8k")
    rng = random.Random(1234)  # lm-evaluation-harness: one seeded sampler, rows in order
    seen_shot_sets = set()
    for row, sample in zip(tests, samples, strict=True):
        shots = rng.sample(train, 5)
        seen_shot_sets.add(tuple(s["question"] for s in shots))
        want = "\n\n".join(gsm8k_block(s, True) for s in shots) + "\n\n"
        want += gsm8k_block(row, False)
        assert sample.context == want
        assert sample.target == row["answer"]
        assert sample.choices == ()
    assert len(seen_shot_sets) > 1  # shots differ between rows


def test_gsm8k_same_split_never_shows_the_row_itself(data_root: Path) -> None:
    train = rows_of(data_root, "gsm8k", "train")
    samples = render(data_root, "gsm8k", split="train")
    rng = random.Random(1234)
    for i, (row, sample) in enumerate(zip(train, samples, strict=True)):
        draw = rng.sample(range(len(train)), 6)
        shots = [train[j] for j in draw if j != i][:5]
        want = "\n\n".join(gsm8k_block(s, True) for s in shots) + "\n\n"
        assert sample.context == want + gsm8k_block(row, False)
        assert row["question"] not in sample.context.rsplit("\n\n", 1)[0]


# ----------------------------------------------------------------- shots and hashes


def test_shots_override(data_root: Path) -> None:
    tests = rows_of(data_root, "mmlu", "test")
    zero = render(data_root, "mmlu", shots=0)
    for row, sample in zip(tests, zero, strict=True):
        subject = row["subject"].replace("_", " ")
        assert sample.context == (
            f"The following are multiple choice questions (with answers) about {subject}.\n\n"
            + mmlu_question(row)
        )
    two = render(data_root, "mmlu", shots=2)
    dev = [d for d in rows_of(data_root, "mmlu", "dev") if d["subject"] == tests[0]["subject"]]
    head = zero[0].context[: -len(mmlu_question(tests[0]))]
    blocks = [f"{mmlu_question(d)} {'ABCD'[d['answer']]}" for d in dev[:2]]
    assert two[0].context == head + "\n\n".join(blocks) + "\n\n" + mmlu_question(tests[0])
    five = render(data_root, "mmlu")
    gsm = render(data_root, "gsm8k", shots=0)
    assert gsm[0].context == gsm8k_block(rows_of(data_root, "gsm8k", "test")[0], False)
    # the sample content, and so the store key, changes with the shots
    assert zero[0].content_hash != five[0].content_hash != two[0].content_hash

    spec = resolve("mmlu")
    assert spec.prompt_hash(0) != spec.prompt_hash()
    assert spec.prompt_hash(2) != spec.prompt_hash()
    assert spec.prompt_hash(spec.fewshot.count) == spec.prompt_hash()


def test_shots_beyond_the_pool_is_a_user_error(data_root: Path) -> None:
    from gnomon.errors import UserError

    with pytest.raises(UserError, match="6-shot"):
        render(data_root, "mmlu", shots=6)


def with_prompt(spec: BenchmarkSpec, **changes: Any) -> BenchmarkSpec:
    return spec.model_copy(update={"prompt": spec.prompt.model_copy(update=changes)})


@pytest.mark.parametrize("bench", ["mmlu", "arc_easy", "arc_challenge", "hellaswag", "gsm8k"])
def test_prompt_hash_is_stable_and_follows_the_template(bench: str) -> None:
    spec = resolve(bench)
    first = spec.prompt_hash()
    assert re.fullmatch(r"[0-9a-f]{16}", first)
    assert spec.prompt_hash() == first == resolve(bench).prompt_hash()
    changed = {
        with_prompt(spec, template=spec.prompt.template + " ").prompt_hash(),
        with_prompt(spec, target_delimiter="").prompt_hash(),
        with_prompt(spec, fewshot_delimiter="\n").prompt_hash(),
        with_prompt(spec, description="Hi.\n").prompt_hash(),
        spec.model_copy(
            update={"fewshot": spec.fewshot.model_copy(update={"seed": 1})}
        ).prompt_hash(),
    }
    assert first not in changed and len(changed) == 5


def test_all_builtin_prompt_hashes_differ() -> None:
    hashes = [resolve(b).prompt_hash() for b in ("mmlu", "arc_easy", "hellaswag", "gsm8k")]
    assert len(set(hashes)) == 4


def test_content_hash_follows_the_row(tmp_path: Path, data_root: Path) -> None:
    spec = resolve("arc_easy")
    rows = read_jsonl(data_root / "arc_easy" / "test.jsonl")[:3]
    renderer = Renderer(spec)
    base = renderer.render(rows, [], False)
    again = Renderer(resolve("arc_easy")).render(rows, [], False)
    assert [s.content_hash for s in base] == [s.content_hash for s in again]
    assert len({s.content_hash for s in base}) == 3

    fields = rows[0].fields
    choices = fields["choices"]
    variants = [
        fields | {"question": fields["question"] + "!"},
        fields | {"choices": {**choices, "text": [choices["text"][0] + "s", *choices["text"][1:]]}},
        fields | {"answerKey": next(k for k in choices["label"] if k != fields["answerKey"])},
    ]
    hashes = {base[0].content_hash}
    for changed in variants:
        (sample,) = renderer.render([Row(0, changed, "mem:0")], [], False)
        assert sample.sample_id == base[0].sample_id
        hashes.add(sample.content_hash)
    assert len(hashes) == 4
    # the origin and index are not content
    (moved,) = renderer.render([Row(7, fields, "elsewhere:9")], [], False)
    assert moved.content_hash == base[0].content_hash
