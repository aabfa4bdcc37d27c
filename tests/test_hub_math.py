"""The math benchmarks' own machinery: Minerva's and Hendrycks MATH's answer scoring (each equal,
case by case, to lm-evaluation-harness's functions), `math_verify` on the whole output, fixed
few-shot files (`fewshot.file`), and the bad inputs around them."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import threading
from pathlib import Path
from types import ModuleType

import lm_eval
import pytest
from gnomon_cli import gnomon

from gnomon.engines.base import GenerateResult
from gnomon.errors import UserError
from gnomon.hub import resolve
from gnomon.hub.spec import BenchmarkSpec, load_spec
from gnomon.modes import mode_for
from gnomon.pipeline.plan import plan_bench
from gnomon.scoring import math_answers as ma

TASKS = Path(lm_eval.__file__).parent / "tasks"
ROOT = Path(__file__).resolve().parent.parent


def _lm_eval_module(rel: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(rel.replace("/", "_"), TASKS / rel)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def minerva() -> ModuleType:
    return _lm_eval_module("minerva_math/utils.py")


@pytest.fixture(scope="module")
def aime() -> ModuleType:
    return _lm_eval_module("aime/utils.py")


# Final-answer texts with the quirks the scorers treat specially.
ANSWERS = [
    "$\\frac{3}{4}$",
    "0.75",
    "$[2,5)$",
    "10,080",
    "10,\\!080",
    "0,1",
    "$18$ cm",
    "18\\text{ cm}",
    "x = 5",
    "$x=5$",
    "(1,-2)",
    "2\\sqrt3",
    "\\sqrt[3]8",
    "\\sqrt[3]{8}",
    "\\left( 3, \\frac{\\pi}{2} \\right)",
    "30^\\circ",
    "30^{\\circ}",
    "-\\dfrac23",
    "\\frac12",
    "\\$1.25",
    "\\text{(C)}",
    "\\textbf{(B)}",
    "12 ways",
    "a dozen",
    "an integer",
    "5\\%",
    ".5",
    "3/4",
    "x/y",
    "\\boxed{7}",
    "\\boxed 7",
    "\\fbox{7}",
    "\\sqrt{}",
    "\\frac1",
    "\\text{ m} \\text{ s}",
    "k = 2",
    "\\overline{AB}",
    "1, 2, \\text{and} 3",
    "\\pi cm",
    "\\infty",
    "",
    "no answer",
]


@pytest.mark.parametrize("answer", ANSWERS)
def test_minerva_reading_is_lm_evals(answer: str, minerva: ModuleType) -> None:
    for output in (
        f"Final Answer: The final answer is {answer}. I hope it is correct.",
        f"Work.\nFinal Answer: The final answer is {answer}",  # closing sentence cut off
        f"Final Answer: The final answer is {answer}.",
        answer,
    ):
        theirs = minerva.get_unnormalized_answer(output)
        ours = ma.minerva_final_answer(output)
        assert (ours if ours is not None else "[invalidanswer]") == theirs, output
    assert ma.minerva_normalize(answer) == minerva.normalize_final_answer(answer), answer


@pytest.mark.parametrize("answer", ANSWERS)
def test_minerva_equivalence_is_lm_evals(answer: str, minerva: ModuleType) -> None:
    mine = ma.minerva_normalize(answer)
    for gold in ("\\frac{3}{4}", "5", "18", "10080", "[2,5)", "2\\sqrt{3}", "30", mine):
        assert ma.minerva_equiv(mine, gold) == minerva.is_equiv(mine, gold), (mine, gold)


@pytest.mark.parametrize("answer", ANSWERS)
def test_hendrycks_scoring_is_lm_evals(answer: str, aime: ModuleType) -> None:
    for output in (answer, f"So $x$ is {answer} and $y$", f"We get $\\boxed{{{answer}}}$."):
        assert ma.last_boxed(output) == aime.last_boxed_only_string(output), output
        for gold in ("204", "\\frac{3}{4}", "5", "0.5", answer):
            theirs = aime.process_results({"Answer": gold}, [output])["exact_match"]
            ours = ma.hendrycks_equiv(ma.boxed_or_dollars(output), gold)
            assert float(ours) == float(theirs), (output, gold)


def test_minerva_gold_is_lm_evals(minerva: ModuleType) -> None:
    solution = "First $\\boxed{2}$, then\n\\[\\boxed{10,\\!080 \\text{ ways}}\\]"
    theirs = minerva.normalize_final_answer(
        minerva.remove_boxed(minerva.last_boxed_only_string(solution))
    )
    assert ma.minerva_gold(solution) == theirs == "10080"
    with pytest.raises(ValueError, match="no .boxed"):
        ma.minerva_gold("It is 2.")


def test_sympy_equivalence_off_the_main_thread() -> None:
    """Scorers run on worker threads, where no alarm can bound sympy: it still compares."""
    got: list[bool] = []
    worker = threading.Thread(target=lambda: got.append(ma.minerva_equiv("0.75", "\\frac{3}{4}")))
    worker.start()
    worker.join()
    assert got == [True]


# ---------------------------------------------------------------------------- the metrics
def _minerva_result(output: str, solution: str) -> dict[str, float]:
    spec = resolve("minerva_math")
    rows = [{"problem": "P?", "solution": solution, "level": "Level 1", "type": "Algebra"}]
    return _score(spec, rows, output)


def _score(spec: BenchmarkSpec, rows: list[dict[str, object]], output: str) -> dict[str, float]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / spec.id
        data.mkdir()
        text = "".join(json.dumps(r) + "\n" for r in rows)
        (data / f"{spec.source.eval_split}.jsonl").write_text(text, encoding="utf-8")
        plan = plan_bench(spec, Path(tmp), None, None, "t")
    sample = plan.samples[0]
    return plan.mode.result(sample, [GenerateResult(output)])["metrics"]


def test_exact_match_and_math_verify_read_different_things() -> None:
    solution = "So the fraction is $\\boxed{\\frac{3}{4}}$."
    # Minerva's line, sympy-equal: both count it
    said = "Final Answer: The final answer is $0.75$. I hope it is correct."
    assert _minerva_result(said, solution) == {"exact_match": 1.0, "math_verify": 1.0}
    # boxed but no "Final Answer" line: equivalence finds it, Minerva's match does not
    boxed = "The fraction left is $\\boxed{\\dfrac34}$."
    assert _minerva_result(boxed, solution) == {"exact_match": 0.0, "math_verify": 1.0}
    # wrong answer on Minerva's line: neither
    wrong = "Final Answer: The final answer is $\\frac{4}{3}$. I hope it is correct."
    assert _minerva_result(wrong, solution) == {"exact_match": 0.0, "math_verify": 0.0}


def test_aime_exact_match_reads_the_last_box() -> None:
    spec = resolve("aime25")
    rows = [{"problem": "Find n.", "answer": "70", "id": "0"}]
    assert _score(spec, rows, "First $\\boxed{7}$, finally $\\boxed{070}$") == {"exact_match": 0.0}
    assert _score(spec, rows, "We try $n=12$ and get $\\boxed{70}$.") == {"exact_match": 1.0}
    assert _score(spec, rows, "so n is $70$") == {"exact_match": 1.0}


def test_new_fields_leave_older_hashes_alone() -> None:
    """Specs without `fewshot.file`, `prompt.solution` or `normalize.math` hash as before, so
    their stored results stay valid."""
    gsm8k = resolve("gsm8k")
    assert gsm8k.prompt_hash() == "0c1dabd014860a2d"
    config = mode_for(gsm8k, 1, None, False).scorer_config()
    assert "math" not in config["normalize"]


# ---------------------------------------------------------------------------- few-shot files
def test_fewshot_files_are_lm_evals() -> None:
    """Every shipped exemplar file (MATH, GSM8K CoT, BBH, the leaderboard's) is exactly what
    lm-eval's task files hold."""
    check = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "hub_fewshot.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stderr


def test_fewshot_file_shots_come_first_n() -> None:
    spec = resolve("gsm8k_cot")
    rows = [{"question": "How many?", "answer": "Two.\n#### 2"}]
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "gsm8k_cot").mkdir()
        (Path(tmp) / "gsm8k_cot" / "test.jsonl").write_text(json.dumps(rows[0]) + "\n")
        plan = plan_bench(spec, Path(tmp), 3, None, "t")
    context = plan.samples[0].context
    assert context.count("\nA: ") == 3 and context.endswith("Q: How many?\nA:")
    assert context.startswith("Q: There are 15 trees in the grove.")
    assert plan.samples[0].target == "2"


def _write_spec(tmp_path: Path, fewshot: dict[str, object]) -> Path:
    raw = resolve("gsm8k_cot").model_dump(exclude_none=True)
    raw["id"] = "custom_cot"
    raw["fewshot"] = fewshot
    path = tmp_path / "custom.yaml"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("fewshot", "message"),
    [
        ({"count": 2, "file": "gsm8k_cot.jsonl", "split": "train"}, "a `file` or a `split`"),
        ({"count": 2, "file": "../../../etc/passwd.jsonl"}, "fewshot.file"),
        ({"count": 2, "file": "gsm8k_cot.json"}, "fewshot.file"),
    ],
)
def test_fewshot_file_is_validated(
    tmp_path: Path, fewshot: dict[str, object], message: str
) -> None:
    with pytest.raises(UserError, match=message.replace("`", ".")):
        load_spec(_write_spec(tmp_path, fewshot))


def test_missing_fewshot_file_is_one_line(tmp_path: Path) -> None:
    path = _write_spec(tmp_path, {"count": 2, "file": "no_such_exemplars.jsonl"})
    data = tmp_path / "data"
    data.mkdir()
    (data / "test.jsonl").write_text(json.dumps({"question": "Q?", "answer": "#### 1"}) + "\n")
    proc = gnomon("hub", "show", path, "--data", data)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "no few-shot file 'no_such_exemplars.jsonl'" in proc.stderr


def test_math_row_without_a_boxed_answer_is_named(tmp_path: Path) -> None:
    row = {"problem": "What is 1+1?", "solution": "It is 2.", "level": "Level 1", "type": "Algebra"}
    (tmp_path / "test.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")
    proc = gnomon("hub", "show", "minerva_math", "--data", tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{tmp_path / 'test.jsonl'}:1: cannot prepare row" in proc.stderr
    assert "no \\boxed{} answer" in proc.stderr


# ---------------------------------------------------------------------------- per-row stops
def _mgsm_plan(tmp_path: Path, rows: list[dict[str, object]], spec: BenchmarkSpec | None = None):
    spec = spec or resolve("mgsm")
    data = tmp_path / spec.id
    data.mkdir(exist_ok=True)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    (data / "test.jsonl").write_text(text, encoding="utf-8")
    return plan_bench(spec, tmp_path, None, None, "t")


MGSM_ROWS = [
    {"question": q, "answer": None, "answer_number": 3, "equation_solution": None, "subset": lang}
    for lang, q in (("zh", "有多少个？"), ("de", "Wie viele?"), ("fr", "Combien ?"))
]


def test_stop_sequences_follow_the_row(tmp_path: Path) -> None:
    """MGSM stops at "Question:" in the row's own language, as lm-eval's task per language."""
    plan = _mgsm_plan(tmp_path, MGSM_ROWS)
    stops = [plan.mode.requests(s)[0].until for s in plan.samples]
    assert stops == [
        ("问题：", "</s>", "<|im_end|>"),
        ("Frage:", "</s>", "<|im_end|>"),
        ("Question :", "</s>", "<|im_end|>"),
    ]
    assert plan.samples[0].context == "问题： 有多少个？\nAnswer:"
    assert plan.samples[2].context == "Question : Combien ?\nRéponse :"
    # a fixed stop list stays the spec's own, and out of the sample's hash
    gsm8k = _score_plan(resolve("gsm8k_cot"))
    assert gsm8k.samples[0].until is None
    assert gsm8k.mode.requests(gsm8k.samples[0])[0].until == ("Q:", "</s>", "<|im_end|>")


def _score_plan(spec: BenchmarkSpec):
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / spec.id).mkdir()
        row = {"question": "How many?", "answer": "#### 2"}
        (Path(tmp) / spec.id / "test.jsonl").write_text(json.dumps(row) + "\n")
        return plan_bench(spec, Path(tmp), 0, None, "t")


def test_a_stop_template_needs_its_field(tmp_path: Path) -> None:
    spec = resolve("mgsm")
    generation = spec.generation.model_copy(update={"until": ["{{ language_word }}"]})
    broken = spec.model_copy(update={"generation": generation})
    with pytest.raises(UserError, match="test.jsonl:1: the row has no field `language_word`"):
        _mgsm_plan(tmp_path, MGSM_ROWS, broken)


# ---------------------------------------------------------------------------- whole scorers
def _outputs(target: str) -> list[str]:
    """Answers a model could give: Minerva's line with the target as written, equivalent or
    wrong, boxed, in dollars, cut off, with units; and the made-up rows hold targets in every
    form (fractions, intervals, roots, thousands, units, degrees, tuples)."""
    return [
        f"Final Answer: The final answer is ${target}$. I hope it is correct.",
        f"Work.\nFinal Answer: The final answer is {target} units. I hope it is correct.",
        f"Final Answer: The final answer is ${target}$",
        "Final Answer: The final answer is $0.75$. I hope it is correct.",
        "Final Answer: The final answer is $\\frac{5}{2}$. I hope it is correct.",
        "Final Answer: The final answer is $10,080$. I hope it is correct.",
        f"So the answer is $\\boxed{{{target}}}$.",
        f"We get $x = {target}$ and so {target}",
        f"\\boxed{{0{target}}}",
        "The answer is $\\boxed 204$",
        "nothing",
    ]


@pytest.mark.parametrize(
    "bench",
    # math_500 shares minerva_math's scorer; sympy makes this one ~20 s
    [pytest.param("minerva_math", marks=pytest.mark.slow), "aime24", "aime25"],
)
def test_scores_are_lm_evals_on_made_up_rows(
    bench: str, tmp_path: Path, minerva: ModuleType, aime: ModuleType
) -> None:
    """gnomon's mode scores each output as lm-eval's `process_results` does, for every row."""
    from gnomon.rowgen import make_rows, maker

    spec = resolve(bench)
    found = maker(bench)
    assert found is not None
    rows = make_rows(bench, spec.source.eval_split)
    (tmp_path / bench).mkdir()
    text = "".join(json.dumps(r) + "\n" for r in rows)
    (tmp_path / bench / f"{spec.source.eval_split}.jsonl").write_text(text, encoding="utf-8")
    plan = plan_bench(spec, tmp_path, 0, None, "t")
    compared = 0
    for sample, row in zip(plan.samples, rows, strict=True):
        if bench.startswith("aime"):
            doc, scorer = row, aime.process_results
        else:
            gold = minerva.last_boxed_only_string(row["solution"])
            answer = minerva.normalize_final_answer(minerva.remove_boxed(gold))
            doc = {"problem": row["problem"], "solution": row["solution"], "answer": answer}
            scorer = minerva.process_results
        assert str(sample.target) == str(doc.get("answer", doc.get("Answer")))
        for output in _outputs(str(sample.target)):
            theirs = {k: float(v) for k, v in scorer(doc, [output]).items()}
            ours = plan.mode.result(sample, [GenerateResult(output)])["metrics"]
            assert ours == theirs, (sample.index, output)
            compared += 1
    assert compared >= 8 * len(_outputs("x"))
