"""`gnomon score`: answers made elsewhere, scored by the benchmark's own scorer through the real
command: text and corpus metrics with intervals, math equivalence, the extractor named per
sample, re-scoring when the scorer changes, and one-line errors naming file and line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sacrebleu
import yaml
from gnomon_cli import gnomon, ok, rescored, summary

pytestmark = pytest.mark.slow

ROWS = [
    {"qid": "a", "q": "Translate: the cat", "answer": "le chat"},
    {"qid": "b", "q": "Translate: the dog sleeps", "answer": "le chien dort"},
    {"qid": "c", "q": "Half of one?", "answer": "0.5"},
    {"qid": "d", "q": "Three quarters?", "answer": "3/4"},
]
OUTPUTS = {
    "a": "Sure. Answer: le chat",
    "b": "Answer: le chien mange",
    "c": "We halve it: $\\boxed{\\frac{1}{2}}$",
    "d": "I think it is 0.7",
}


def write_spec(root: Path, **changes: Any) -> Path:
    data = root / "data"
    data.mkdir(exist_ok=True)
    (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    spec = {
        "id": "my_gen", "title": "My generation", "dimension": "language", "version": 1,
        "source": {"files": "data", "eval_split": "test", "id_field": "qid"},
        "prompt": {"template": "{{ q }}\n", "target": "answer"},
        "mode": "generate",
        "generation": {"until": ["\n\n"], "max_tokens": 32},
        "extract": [{"name": "answer", "regex": "Answer: (.*)"}],
        "metrics": ["exact_match", "token_f1", "bleu", "chrf"],
    } | changes  # fmt: skip
    path = root / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def answers_file(path: Path, outputs: dict[str, str]) -> Path:
    path.write_text(
        "".join(json.dumps({"sample_id": k, "output": v}) + "\n" for k, v in outputs.items())
    )
    return path


def test_text_and_corpus_metrics_and_rescoring(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    answers = answers_file(tmp_path / "answers.jsonl", OUTPUTS)
    store = tmp_path / "s.sqlite"
    first = ok(gnomon("score", answers, "--bench", spec, "--store", store, "--out", tmp_path / "o"))
    assert summary(first.stdout) == (4, 0, 4)
    report = json.loads((tmp_path / "o" / "results.json").read_text())["benchmarks"]["my_gen"]
    metrics = report["metrics"]
    assert metrics["exact_match"]["value"] == pytest.approx(0.25)  # only "le chat"
    # token F1: a=1, b=2/3 (le chien | dort/mange), c and d: nothing extracted ([invalid]) = 0
    assert metrics["token_f1"]["value"] == pytest.approx((1 + 2 / 3) / 4)
    hyps = ["le chat", "le chien mange", "[invalid]", "[invalid]"]
    refs = [[r["answer"] for r in ROWS]]
    assert metrics["bleu"]["value"] == pytest.approx(sacrebleu.corpus_bleu(hyps, refs).score)
    assert metrics["chrf"]["value"] == pytest.approx(sacrebleu.corpus_chrf(hyps, refs).score)
    for name in ("bleu", "chrf"):
        low, high = metrics[name]["ci95"]
        assert metrics[name]["method"].startswith("bootstrap") and low <= metrics[name]["value"]
        assert metrics[name]["value"] <= high
    samples = [json.loads(x) for x in (tmp_path / "o" / "samples.jsonl").read_text().splitlines()]
    by_id = {s["sample_id"]: s for s in samples}
    assert by_id["a"]["prediction"] == "le chat" and by_id["c"]["prediction"] == "[invalid]"

    same = ok(gnomon("score", answers, "--bench", spec, "--store", store))
    assert summary(same.stdout) == (4, 4, 0)

    # a math extractor added after the regex: the same stored answers, re-scored
    math = write_spec(
        tmp_path,
        extract=[{"name": "final", "kind": "math"}],
        metrics=["math_equiv", "exact_match"],
    )
    again = ok(gnomon("score", answers, "--bench", math, "--store", store, "--out", tmp_path / "m"))
    assert summary(again.stdout) == (4, 0, 4)  # a new scorer: scored anew, nothing reused
    report = json.loads((tmp_path / "m" / "results.json").read_text())["benchmarks"]["my_gen"]
    assert report["metrics"]["math_equiv"]["value"] == pytest.approx(0.25)  # 1/2 = 0.5 only
    assert report["headline"] == "math_equiv"
    lines = (tmp_path / "m" / "samples.jsonl").read_text().splitlines()
    assert json.loads(lines[2])["correct"] is True


def test_a_run_rescores_what_score_stored_never(tmp_path: Path) -> None:
    """Answers from a file live under the file's own model: `gnomon run` never reads them."""
    spec = write_spec(tmp_path)
    store = tmp_path / "s.sqlite"
    ok(gnomon("score", answers_file(tmp_path / "x.jsonl", OUTPUTS), "--bench", spec,
              "--store", store))  # fmt: skip
    changed = dict(OUTPUTS, a="Answer: le chien")
    proc = ok(gnomon("score", answers_file(tmp_path / "y.jsonl", changed), "--bench", spec,
                     "--store", store))  # fmt: skip
    assert summary(proc.stdout) == (4, 0, 4) and rescored(proc.stdout) == 0


@pytest.mark.parametrize(
    ("lines", "needle"),
    [
        (['{"sample_id": "a", "output": "x"}', '{"sample_id": "zz", "output": "y"}'],
         ":2: sample id 'zz' is not in my_gen"),
        (['{"sample_id": "a", "output": "x"}', '{"sample_id": "a", "output": "x"}'],
         ":2: a second answer for this sample (first at"),
        (['{"sample_id": "a", "output": "x"}', "{not json"], ":2: not valid JSON"),
        (['{"output": "x"}'], ":1: a line needs a sample id"),
        (['{"sample_id": "a", "output": null}'], ":1: `output` (the answer's text) must be"),
        ([], "no answers"),
    ],
)  # fmt: skip
def test_bad_answer_files_get_one_line(tmp_path: Path, lines: list[str], needle: str) -> None:
    spec = write_spec(tmp_path)
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    proc = gnomon("score", path, "--bench", spec, "--store", tmp_path / "s.sqlite")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and needle in last, proc.stderr


def test_a_benchmark_scored_by_logprobs_is_refused(data_root: Path, tmp_path: Path) -> None:
    path = answers_file(tmp_path / "a.jsonl", {"x": "B"})
    proc = gnomon("score", path, "--bench", "arc_easy", "--data", data_root,
                  "--store", tmp_path / "s.sqlite")  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "log-probabilities" in proc.stderr and "--choice-by generation" in proc.stderr
    rows = (data_root / "arc_easy" / "test.jsonl").read_text().splitlines()[:3]
    ids = [json.loads(r)["id"] for r in rows]
    letters = answers_file(tmp_path / "l.jsonl", {i: "The answer is B." for i in ids})
    proc = ok(gnomon("score", letters, "--bench", "arc_easy", "--data", data_root,
                     "--choice-by", "generation", "--store", tmp_path / "s.sqlite"))  # fmt: skip
    assert summary(proc.stdout) == (3, 0, 3)
