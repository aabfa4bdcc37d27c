"""The OpenCompass-format variants of C-Eval and CMMLU are OpenCompass's prompts, text for text.

OpenCompass's own code builds the reference (tests/opencompass_ref.py loads it from the installed
`opencompass` wheel): its dataset config is executed as OpenCompass executes it, and its
`PromptTemplate`, `FixKRetriever` and base-model `LMTemplateParser` turn the same rows into the
text a base model is scored on for each answer letter, as `PPLInferencer.inference` does. gnomon's
plan over those rows must send, for every row and every letter, exactly that text (its context
followed by the letter's continuation), with the same gold letter.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import opencompass_ref
import pytest

from gnomon.hub import resolve
from gnomon.hub.spec import BenchmarkSpec
from gnomon.pipeline.plan import plan_bench
from gnomon.rowgen import make_rows

REAL_ROWS = Path(__file__).parent / "data" / "real_rows"
LETTERS = ["A", "B", "C", "D"]

# gnomon id -> (OpenCompass config file, its list variable, gnomon's few-shot split)
VARIANTS = {
    "ceval_valid_opencompass": ("ceval/ceval_ppl_578f8d.py", "ceval_datasets", "dev"),
    "cmmlu_opencompass": ("cmmlu/cmmlu_ppl_8b9c76.py", "cmmlu_datasets", "dev"),
}


def _oc_row(bench: str, row: dict[str, Any]) -> dict[str, Any]:
    """A hub row as OpenCompass's dataset class hands it to the template: `CEvalDataset` keeps
    C-Eval's columns; `CMMLUDataset` renames CMMLU's `Question`/`Answer` to lower case."""
    if bench.startswith("cmmlu"):
        keys = {"question": "Question", "A": "A", "B": "B", "C": "C", "D": "D", "answer": "Answer"}
        return {ours: row[theirs] for ours, theirs in keys.items()}
    return {k: v for k, v in row.items() if k != "subject"}


@pytest.fixture(scope="module")
def oc() -> opencompass_ref.OpenCompass:
    return opencompass_ref.load()


def _configs(oc: opencompass_ref.OpenCompass, bench: str) -> dict[str, dict[str, Any]]:
    rel, variable, _ = VARIANTS[bench]
    return {cfg["name"]: cfg for cfg in oc.dataset_configs(rel, variable)}


def _write(root: Path, spec: BenchmarkSpec, rows: dict[str, list[dict[str, Any]]]) -> None:
    data = root / spec.id
    data.mkdir(parents=True)
    for split, split_rows in rows.items():
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in split_rows)
        (data / f"{split}.jsonl").write_text(text, encoding="utf-8")


def _check(
    oc: opencompass_ref.OpenCompass,
    bench: str,
    rows: dict[str, list[dict[str, Any]]],
    root: Path,
) -> int:
    """Compare every row's four texts; returns how many rows were compared."""
    spec = resolve(bench)
    _write(root, spec, rows)
    plan = plan_bench(spec, root, None, None, "opencompass")
    configs = _configs(oc, bench)
    eval_rows = rows[spec.source.eval_split]
    dev_rows = rows[VARIANTS[bench][2]]
    compared = 0
    for subject in dict.fromkeys(r["subject"] for r in eval_rows):
        config = configs[subject]
        assert config["reader_cfg"]["test_split"] == spec.source.eval_split
        assert config["reader_cfg"]["train_split"] == spec.fewshot.split
        test = [r for r in eval_rows if r["subject"] == subject]
        train = [_oc_row(bench, r) for r in dev_rows if r["subject"] == subject]
        theirs = opencompass_ref.ppl_prompts(oc, config, train, [_oc_row(bench, r) for r in test])
        ours = [s for s in plan.samples if s.cluster == subject]
        assert len(ours) == len(theirs) == len(test)
        for sample, row, per_label in zip(ours, test, theirs, strict=True):
            assert list(per_label) == LETTERS
            texts = [r.context + r.continuation for r in plan.mode.requests(sample)]
            assert texts == list(per_label.values()), f"{bench} {subject} row {sample.index}"
            assert LETTERS[int(sample.target)] == _oc_row(bench, row)["answer"]
            compared += 1
    return compared


@pytest.mark.parametrize("bench", sorted(VARIANTS))
def test_prompts_are_opencompass_prompts(
    bench: str, oc: opencompass_ref.OpenCompass, tmp_path: Path
) -> None:
    spec = resolve(bench)
    assert spec.reference == f"opencompass:{Path(VARIANTS[bench][0]).stem}"
    rows = {s: make_rows(bench, s) for s in (spec.source.eval_split, "dev")}
    assert _check(oc, bench, rows, tmp_path) == len(rows[spec.source.eval_split])


@pytest.mark.parametrize("bench", sorted(VARIANTS))
def test_every_subject_is_opencompass_s(
    bench: str, oc: opencompass_ref.OpenCompass, tmp_path: Path
) -> None:
    """The subject names written into gnomon's template are those of OpenCompass's config for
    all subjects, not only the made-up rows' few: one row of every subject, with real shots."""
    spec = resolve(bench)
    configs = _configs(oc, bench)
    assert sorted(configs) == sorted(spec.source.subsets or [])
    made_eval = make_rows(bench, spec.source.eval_split)
    made_dev = make_rows(bench, "dev")[:5]
    rows: dict[str, list[dict[str, Any]]] = {spec.source.eval_split: [], "dev": []}
    for i, subject in enumerate(configs):
        rows[spec.source.eval_split].append({**made_eval[i % len(made_eval)], "subject": subject})
        rows["dev"] += [{**r, "subject": subject} for r in made_dev]
    assert _check(oc, bench, rows, tmp_path) == len(configs)


def test_real_ceval_row_is_opencompass_s(oc: opencompass_ref.OpenCompass, tmp_path: Path) -> None:
    """The real C-Eval row evalscope ships gives OpenCompass's text; its shots are the real dev
    row evalscope shows (with its explanation and a CR LF), then made-up ones to make five."""

    def read(name: str) -> list[dict[str, Any]]:
        text = (REAL_ROWS / name).read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines()]

    real = read("ceval_valid_opencompass.jsonl")
    subject = real[0]["subject"]
    made = [{**r, "subject": subject} for r in make_rows("ceval_valid_opencompass", "dev")[:4]]
    shots = read("ceval_valid_opencompass.fewshot.jsonl") + made
    assert _check(oc, "ceval_valid_opencompass", {"val": real, "dev": shots}, tmp_path) == 1


def test_variants_are_listed_and_hashed_apart() -> None:
    """Same family, different prompts: scores of one never stand in for the other's."""
    for lm_eval_id, oc_id in (
        ("ceval_valid", "ceval_valid_opencompass"),
        ("cmmlu", "cmmlu_opencompass"),
    ):
        a, b = resolve(lm_eval_id), resolve(oc_id)
        assert a.family_id == b.family_id
        assert a.source == b.source  # the same rows
        assert a.prompt_hash() != b.prompt_hash()
        assert (a.reference or "").startswith("lm-eval:")
        assert (b.reference or "").startswith("opencompass:")


def test_fewshot_end_only_after_the_last_shot(tmp_path: Path) -> None:
    """`prompt.fewshot_end` replaces the delimiter after the last shot only, is part of the
    prompt hash when set, and leaves the hash of a spec without it as it was before it existed
    (so stored scores of older specs stay theirs)."""
    spec = resolve("cmmlu_opencompass")
    rows = {s: make_rows(spec.id, s) for s in ("test", "dev")}
    _write(tmp_path, spec, rows)
    context = plan_bench(spec, tmp_path, 2, None, "t").samples[0].context
    first, second, question = context.split("\n\n\n", 2)
    assert first.endswith("答案是: " + rows["dev"][0]["Answer"])
    assert second.endswith("答案是: " + rows["dev"][1]["Answer"])
    assert question.startswith("\n\n以下是关于") and "\n\n\n" not in question
    assert plan_bench(spec, tmp_path, 0, None, "t").samples[0].context.startswith("以下是关于")
    plain = spec.model_copy(update={"prompt": spec.prompt.model_copy(update={"fewshot_end": None})})
    assert plain.prompt_hash() != spec.prompt_hash()
    # mmlu's hash as gnomon computed it before `fewshot_end` existed
    assert resolve("mmlu").prompt_hash() == "2e0f28efeadffe5c"


@pytest.mark.slow
@pytest.mark.parametrize("bench", sorted(VARIANTS))
def test_same_answer_as_opencompass_lowest_perplexity(
    bench: str, oc: opencompass_ref.OpenCompass, llama_dir: Path, tmp_path: Path
) -> None:
    """OpenCompass picks the letter whose whole prompt has the lowest perplexity (mean token
    loss, from its own model class); gnomon scores the letter's loglikelihood after the shared
    prefix. The four prompts differ only in the letter, so the perplexities times the prompt's
    token count differ as the letters' loglikelihoods do (to float32 rounding of OpenCompass's
    whole-prompt sums), and both pick the same letter: checked row by row on a tiny model,
    OpenCompass's `get_ppl_from_template` against gnomon's engine and mode."""
    from gnomon.engines.hf import HFEngine

    spec = resolve(bench)
    rows = {s: make_rows(bench, s) for s in (spec.source.eval_split, "dev")}
    _write(tmp_path, spec, rows)
    plan = plan_bench(spec, tmp_path, None, None, "opencompass")
    model = opencompass_ref.base_model(oc, llama_dir)
    engine = HFEngine(str(llama_dir), device="cpu", dtype="float32", batch_size=4)
    configs = _configs(oc, bench)
    for sample in plan.samples:
        row = rows[spec.source.eval_split][sample.index]
        train = [_oc_row(bench, r) for r in rows["dev"] if r["subject"] == row["subject"]]
        (prompts,) = opencompass_ref.ppl_prompts(
            oc, configs[row["subject"]], train, [_oc_row(bench, row)]
        )
        texts = list(prompts.values())
        ppl = list(model.get_ppl_from_template(texts))
        (length,) = {model.get_token_len(t) for t in texts}  # same token count for each letter
        requests = plan.mode.requests(sample)
        answers = {i: r for batch in engine.score(requests) for i, r in batch}
        result = plan.mode.result(sample, [answers[i] for i in range(len(requests))])
        where = f"{bench} row {sample.index}"
        assert result["prediction"] == ppl.index(min(ppl)), where
        logprobs = result["choice_logprobs"]
        for i in range(1, len(texts)):
            theirs = (ppl[0] - ppl[i]) * length  # total loss of prompt 0 minus prompt i
            assert abs((logprobs[i] - logprobs[0]) - theirs) < 1e-2, where
