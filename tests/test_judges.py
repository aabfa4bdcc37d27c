"""Judges: a model's answers scored by another model's verdicts, over real HTTP and a real local
model, stored and never asked twice.

One scripted OpenAI-compatible server on loopback plays both the model under test (`subject`)
and the judge (`judge`); it answers from what it is sent and counts every request, so the tests
can tell what was asked, in which order, and what was never asked again.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gnomon_cli import ENV, gnomon, ok, rescored, summary
from loopback import chat_app, running

from gnomon.engines.base import GenerateResult
from gnomon.errors import UserError
from gnomon.hub.spec import load_spec
from gnomon.modes import mode_for
from gnomon.modes.judge_extract import read_reply
from gnomon.modes.verdicts import VerdictError, parse_pairwise, parse_rating, parse_yes_no
from gnomon.pipeline.judging import Judge
from gnomon.pipeline.plan import plan_bench, scorer_hash

# --------------------------------------------------------------------------------- parsers


def test_rating_parser() -> None:
    assert parse_rating("Good answer. Rating: [[7]]") == 7
    assert parse_rating("Rating: 8") == 8
    assert parse_rating("rating = 3.5 out of 10") == 3.5
    # the format quoted first, the verdict last: the last one counts
    assert parse_rating('Format: "[[5]]". My verdict: [[9]]') == 9
    assert parse_rating("[[4]]", scale=5) == 4
    with pytest.raises(VerdictError, match="outside 1-5"):
        parse_rating("[[7]]", scale=5)
    with pytest.raises(VerdictError, match=r"no rating .*'I cannot judge this\.'"):
        parse_rating("I cannot judge this.")
    with pytest.raises(VerdictError, match="outside 1-10"):
        parse_rating("[[0]]")


def test_pairwise_parser() -> None:
    for label in ("A>>B", "A>B", "A=B", "B>A", "B>>A"):
        assert parse_pairwise(f"Reasons...\nMy final verdict is [[{label}]].") == label
    assert parse_pairwise("[[ A > B ]]") == "A>B"
    assert parse_pairwise("[[A<B]]") == "B>A"  # the same verdict, written the other way
    assert parse_pairwise("[[C]]") == "C" and parse_pairwise("[[A]]") == "A"
    assert parse_pairwise("[[A>B]] ... so [[A>>B]]") == "A>>B"  # A wins either way
    with pytest.raises(VerdictError, match="conflicting"):
        parse_pairwise("[[A>B]] or maybe [[B>A]]")
    with pytest.raises(VerdictError, match="no verdict"):
        parse_pairwise("Both are fine. [[7]]")


def test_yes_no_parser_and_extraction_reply() -> None:
    assert parse_yes_no("Yes, it is correct.") is True
    assert parse_yes_no("The answer is no; yes would be wrong") is False
    assert parse_yes_no("Answer: NO.") is False
    with pytest.raises(VerdictError, match="no yes or no"):
        parse_yes_no("Yesterday nobody knew")  # words, not parts of words
    assert read_reply(" 42.\n") == "42" and read_reply("The answer:\n`6`") == "6"
    assert read_reply("NONE") is None and read_reply("") is None


# ---------------------------------------------------------------------------------- specs

ROWS = [
    {"id": f"q{i}", "question": f"What is 2+{i}?", "reference": str(2 + i), "topic": "sums",
     "baseline": f"I believe 2+{i} is {3 + i}."}
    for i in range(1, 5)
]  # fmt: skip
# The subject's answers: q4 gives its answer in words, which the regex below cannot read.
SUBJECT = {f"What is 2+{i}?": f"The answer is {2 + i}." for i in range(1, 4)}
SUBJECT["What is 2+4?"] = "Hmm, I'd say it is six."

RATING_TEMPLATE = """[Question]
{{ question }}
[Reference] {{ reference }} ({{ topic }})
[Answer]
{{ answer }}
Rate the answer from 1 to 10, in the format [[rating]]."""
PAIRWISE_TEMPLATE = """[User Question]
{{ question }}
<<A>>{{ answer_a }}<</A>>
<<B>>{{ answer_b }}<</B>>
Which is better? Answer [[A>>B]], [[A>B]], [[A=B]], [[B>A]] or [[B>>A]]."""


def spec_yaml(bench: str, mode: str, metrics: list[str], extra: dict[str, Any]) -> str:
    spec: dict[str, Any] = {
        "id": bench,
        "title": bench,
        "dimension": "instruction-following",
        "version": 1,
        "source": {"files": "data", "eval_split": "test", "id_field": "id"},
        "prompt": {"template": "{{ question }}", "target": "reference"},
        "mode": mode,
        "metrics": metrics,
        "generation": {"until": [], "max_tokens": 32},
        **extra,
    }
    return json.dumps(spec)  # JSON is YAML


@pytest.fixture
def bench_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    specs = {
        "rating": spec_yaml("rated", "judged", ["rating"], {
            "judge": {"template": RATING_TEMPLATE, "system": "You are a fair judge.",
                      "max_tokens": 16}}),
        "pairwise": spec_yaml("paired", "judged", ["win_rate"], {
            "judge": {"template": PAIRWISE_TEMPLATE, "verdict": "pairwise",
                      "baseline": "baseline"}}),
        "yes_no": spec_yaml("yesno", "judged", ["yes_rate"], {
            "judge": {"template": "Is {{ answer }} right for {{ question }}? yes or no",
                      "verdict": "yes_no"}}),
        "extract": spec_yaml("extracted", "generate", ["exact_match"], {
            "extract": [{"name": "strict", "regex": r"The answer is (\d+)"},
                        {"name": "judge", "kind": "judge"}]}),
    }  # fmt: skip
    for name, text in specs.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    return tmp_path


# ------------------------------------------------------------------------ scripted server


class Scripted:
    """Answers as `subject` (from SUBJECT) and as `judge` (verdicts read off the prompt).

    The judge is inconsistent on purpose where the question is 2+1 (it always prefers A,
    whichever answer A is), says nothing readable when rating 2+3 (`garble`), and rates 9 a
    right answer and 2 a wrong one."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []  # (model, the whole conversation's text)
        self.lock = threading.Lock()
        self.garble = True

    def answer(self, model: str, text: str) -> str:
        if model == "subject":
            return SUBJECT[text.strip()]
        if "<<A>>" in text:  # pairwise
            a = re.search(r"<<A>>(.*)<</A>>", text, re.S).group(1)  # type: ignore[union-attr]
            if "2+1?" in text:
                return "Position matters to me. [[A>B]]"
            subject_is_a = a.startswith(("The answer", "Hmm"))
            subject_wins = "six" not in text
            return "[[A>>B]]" if subject_is_a == subject_wins else "Verdict: [[B>A]]"
        if "Rate the answer" in text:
            if self.garble and "2+3?" in text:
                return "I cannot decide about this one."
            right = re.search(r"\[Reference\] (\d+)", text).group(1)  # type: ignore[union-attr]
            return "Rating: [[9]]" if f"is {right}." in text else "Explanation. [[2]]"
        if "yes or no" in text:
            return "Yes." if "answer is" in text else "No"
        if "final answer" in text:
            return "6" if "six" in text else "NONE"
        return "?"

    def app(self) -> Any:
        return chat_app(self.reply, ("subject", "judge"))

    def reply(self, body: dict) -> str:
        text = "\n\n".join(m["content"] for m in body["messages"])
        with self.lock:
            self.requests.append((body["model"], text))
        return self.answer(body["model"], text)

    def count(self, model: str) -> int:
        return sum(1 for m, _ in self.requests if m == model)

    def asked(self, model: str) -> list[str]:
        return [t for m, t in self.requests if m == model]


@pytest.fixture
def server() -> Iterator[tuple[Scripted, str]]:
    scripted = Scripted()
    with running(scripted.app()) as url:
        yield scripted, f"{url}/v1"


def run_args(bench_dir: Path, url: str, spec: str, *judge: str) -> list[str]:
    return [
        "run", "--model", "openai:subject", "--base-url", url, "--chat-api", "--bench",
        bench_dir / f"{spec}.yaml", "--store", bench_dir / "store.sqlite", "--out",
        bench_dir / "out", "--max-retries", "0", *judge,
    ]  # fmt: skip


def served_judge(url: str) -> list[str]:
    return ["--judge", "openai:judge", "--judge-base-url", url]


KEYED = {**ENV, "OPENAI_API_KEY": "sk-test", "COLUMNS": "200"}  # a wide table, unwrapped


def gn(*args: object) -> Any:
    return gnomon(*args, env=KEYED)


def results(bench_dir: Path) -> dict[str, Any]:
    return json.loads((bench_dir / "out" / "results.json").read_text())


def out_samples(bench_dir: Path) -> dict[str, dict]:
    lines = (bench_dir / "out" / "samples.jsonl").read_text().splitlines()
    return {s["sample_id"]: s for s in map(json.loads, lines)}


def db(bench_dir: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(bench_dir / "store.sqlite")
    conn.row_factory = sqlite3.Row
    return conn


def failures(bench_dir: Path, run_id: str) -> dict[str, str]:
    with db(bench_dir) as conn:
        sql = "SELECT sample_id, reason FROM run_failures WHERE run_id = ?"
        rows = conn.execute(sql, (run_id,))
        return {r["sample_id"]: r["reason"] for r in rows}


def payloads(bench_dir: Path, run_id: str) -> dict[str, dict]:
    with db(bench_dir) as conn:
        rows = conn.execute(
            "SELECT r.sample_id, r.payload FROM results r JOIN run_results l ON l.key = r.key "
            "WHERE l.run_id = ?",
            (run_id,),
        )
        return {r["sample_id"]: json.loads(r["payload"]) for r in rows}


def bench_row(bench_dir: Path, run_id: str) -> sqlite3.Row:
    with db(bench_dir) as conn:
        return conn.execute("SELECT * FROM run_benches WHERE run_id = ?", (run_id,)).fetchone()


def run_id_of(bench_dir: Path) -> str:
    """The run that last wrote `--out`."""
    return results(bench_dir)["run_id"]


# --------------------------------------------------------------------------------- rating


def test_rating_judge_over_http_stored_and_rescored(
    bench_dir: Path, server: tuple[Scripted, str]
) -> None:
    scripted, url = server
    # without a judge: one line, before anything is asked
    proc = gn(*run_args(bench_dir, url, "rating"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "rated is scored by a judge model: name one with --judge" in proc.stderr
    assert not scripted.requests

    first = ok(gn(*run_args(bench_dir, url, "rating", *served_judge(url))))
    run1 = run_id_of(bench_dir)
    assert summary(first.stdout) == (4, 0, 3)  # scores written: one sample failed
    # 2+3's unreadable reply was asked twice more (RETRIES) before the sample failed
    assert scripted.count("subject") == 4 and scripted.count("judge") == 4 + 2
    # the judge saw the system message, the row's own field and the model's answer
    asked = scripted.asked("judge")
    assert all(t.startswith("You are a fair judge.") and "(sums)" in t for t in asked)
    assert any("The answer is 5.\nRate the answer" in t for t in asked)
    # 2+3 got no readable verdict: a failure with the reason, not a score
    reasons = failures(bench_dir, run1)
    assert list(reasons) == ["q3"] and "no rating in the judge's reply" in reasons["q3"]
    assert "failed after 3 attempts" in reasons["q3"]
    assert reasons["q3"].count('"I cannot decide about this one."') == 3  # each raw reply
    assert "1 samples could not be answered" in first.stdout
    row = bench_row(bench_dir, run1)
    assert row["judge"] == f"openai:judge@{url}"
    report = results(bench_dir)["benchmarks"]["rated"]
    assert report["judge"] == row["judge"]
    assert report["metrics"]["rating"]["value"] == pytest.approx((9 + 9 + 2) / 3)
    stored = payloads(bench_dir, run1)
    assert stored["q1"]["judge_replies"] == ["Rating: [[9]]"] and stored["q1"]["verdicts"] == [9]
    assert stored["q4"]["verdicts"] == [2] and stored["q4"]["extractor"] == "judge"
    assert stored["q1"]["correct"] and not stored["q4"]["correct"]

    # the same command: nothing is asked again, of either model; the failed sample's verdict
    # is read back from the store (and fails the same way)
    again = ok(gn(*run_args(bench_dir, url, "rating", *served_judge(url))))
    assert summary(again.stdout) == (4, 3, 0) and rescored(again.stdout) == 0
    assert list(failures(bench_dir, run_id_of(bench_dir))) == ["q3"]
    assert scripted.count("subject") == 4 and scripted.count("judge") == 6

    # a changed judge prompt re-scores every sample from the stored answers: only the judge is
    # asked, and only about the new prompt
    spec_path = bench_dir / "rating.yaml"
    spec = json.loads(spec_path.read_text())
    spec["judge"]["template"] += "\nBe strict."
    spec_path.write_text(json.dumps(spec))
    scripted.garble = False
    third = ok(gn(*run_args(bench_dir, url, "rating", *served_judge(url))))
    run3 = run_id_of(bench_dir)
    assert summary(third.stdout) == (4, 0, 0) and rescored(third.stdout) == 4
    assert scripted.count("subject") == 4 and scripted.count("judge") == 10
    assert all(t.endswith("Be strict.") for t in scripted.asked("judge")[6:])
    assert bench_row(bench_dir, run3)["scorer_hash"] != bench_row(bench_dir, run1)["scorer_hash"]
    assert not failures(bench_dir, run3)
    assert results(bench_dir)["benchmarks"]["rated"]["metrics"]["rating"]["value"] == (
        pytest.approx((9 + 9 + 9 + 2) / 4)
    )


def test_unreadable_local_judge_fails_samples_then_a_fixed_judge_rescores(
    bench_dir: Path, server: tuple[Scripted, str], chat_llama_dir: Path
) -> None:
    """A tiny random chat model as the judge writes noise: every sample fails with the reason, the
    answers stay; a run with a working judge scores them without asking the subject again."""
    scripted, url = server
    local = ["--judge", f"hf:{chat_llama_dir}", "--device", "cpu", "--dtype", "float32"]
    first = ok(gn(*run_args(bench_dir, url, "rating", *local)))
    run1 = run_id_of(bench_dir)
    assert summary(first.stdout) == (4, 0, 0)
    reasons = failures(bench_dir, run1)
    assert sorted(reasons) == ["q1", "q2", "q3", "q4"]
    assert all("no rating in the judge's reply" in r for r in reasons.values())
    assert bench_row(bench_dir, run1)["judge"].startswith("hf:local:")
    assert scripted.count("subject") == 4 and scripted.count("judge") == 0
    with db(bench_dir) as conn:  # the subject's answers and the judge's noise are both kept
        kept = Counter(r[0].split(":")[0] for r in conn.execute("SELECT model_key FROM answers"))
    assert kept == {"openai": 4, "hf": 4}  # a local greedy judge is not asked the same again
    assert all("failed after 1 attempt:" in r for r in reasons.values())

    fixed = ok(gn(*run_args(bench_dir, url, "rating", *served_judge(url))))
    assert summary(fixed.stdout) == (4, 0, 0) and rescored(fixed.stdout) == 3
    assert scripted.count("subject") == 4 and scripted.count("judge") == 4 + 2  # 2+3 retried


# ------------------------------------------------------------------------------- pairwise


def test_pairwise_both_orders_and_position_consistency(
    bench_dir: Path, server: tuple[Scripted, str]
) -> None:
    scripted, url = server
    proc = ok(gn(*run_args(bench_dir, url, "pairwise", *served_judge(url))))
    assert summary(proc.stdout) == (4, 0, 4)
    asked = scripted.asked("judge")
    assert len(asked) == 8
    for i in range(1, 5):
        mine = [t for t in asked if f"What is 2+{i}?" in t]
        baseline = ROWS[i - 1]["baseline"]
        pairs = {
            (re.search(r"<<A>>(.*)<</A>>", t).group(1), re.search(r"<<B>>(.*)<</B>>", t).group(1))  # type: ignore[union-attr]
            for t in mine
        }
        answer = SUBJECT[f"What is 2+{i}?"]
        assert pairs == {(answer, baseline), (baseline, answer)}  # both orders, swapped
    samples = out_samples(bench_dir)
    # 2+1: the judge always prefers A, so one order is a win and the other a loss
    assert samples["q1"]["metrics"] == {"win_rate": 0.5, "position_consistency": 0.0}
    assert samples["q2"]["metrics"] == {"win_rate": 1.0, "position_consistency": 1.0}
    assert samples["q4"]["metrics"] == {"win_rate": 0.0, "position_consistency": 1.0}
    stored = payloads(bench_dir, run_id_of(bench_dir))
    assert stored["q1"]["verdicts"] == ["A>B", "A>B"]
    assert stored["q2"]["verdicts"] == ["A>>B", "B>A"]
    report = results(bench_dir)["benchmarks"]["paired"]
    assert report["metrics"]["win_rate"]["value"] == pytest.approx(0.625)
    assert report["metrics"]["position_consistency"]["value"] == pytest.approx(0.75)
    assert re.search(r"position_consistency\s*│\s*0\.7500", proc.stdout)  # shown with the score
    # verdicts are stored: a re-run asks nobody
    again = ok(gn(*run_args(bench_dir, url, "pairwise", *served_judge(url))))
    assert summary(again.stdout) == (4, 4, 0) and len(scripted.requests) == 12


# ------------------------------------------------------------------ score a file, yes/no


def test_score_file_with_a_judge(bench_dir: Path, server: tuple[Scripted, str]) -> None:
    scripted, url = server
    answers = bench_dir / "answers.jsonl"
    lines = [{"sample_id": "q1", "output": "The answer is 3."}, {"sample_id": "q2", "output": "7"}]
    answers.write_text("".join(json.dumps(x) + "\n" for x in lines))
    store = bench_dir / "store.sqlite"
    args = ["score", "--bench", bench_dir / "yes_no.yaml", answers, "--store", store, "--out",
            bench_dir / "out"]  # fmt: skip
    proc = gn(*args)
    assert proc.returncode == 2 and "name one with --judge" in proc.stderr
    proc = ok(gn(*args, *served_judge(url)))
    assert summary(proc.stdout) == (2, 0, 2) and scripted.count("judge") == 2
    samples = out_samples(bench_dir)
    assert samples["q1"]["metrics"] == {"yes_rate": 1.0} and samples["q1"]["correct"]
    assert samples["q2"]["metrics"] == {"yes_rate": 0.0}
    assert bench_row(bench_dir, run_id_of(bench_dir))["judge"] == f"openai:judge@{url}"
    ok(gn(*args, *served_judge(url)))
    assert scripted.count("judge") == 2  # the file's verdicts are stored too
    bad = gn(*args, "--judge-base-url", url)
    assert bad.returncode == 2 and "add --judge" in bad.stderr


# ----------------------------------------------------------- the judge as last extractor


def test_judge_extracts_only_what_no_regex_found(
    bench_dir: Path, server: tuple[Scripted, str]
) -> None:
    scripted, url = server
    proc = ok(gn(*run_args(bench_dir, url, "extract", *served_judge(url))))
    assert summary(proc.stdout) == (4, 0, 4)
    asked = scripted.asked("judge")
    assert len(asked) == 1 and "Hmm, I'd say it is six." in asked[0]  # q4 alone
    assert "Reply with only the final answer" in asked[0]
    stored = payloads(bench_dir, run_id_of(bench_dir))
    assert {k: v["extractor"] for k, v in stored.items()} == {
        "q1": "regex:strict", "q2": "regex:strict", "q3": "regex:strict", "q4": "judge",
    }  # fmt: skip
    assert stored["q4"]["prediction"] == "6" and stored["q4"]["correct"]
    assert stored["q1"]["prediction"] == "3" and "judge_replies" not in stored["q1"]
    assert results(bench_dir)["benchmarks"]["extracted"]["metrics"]["exact_match"]["value"] == 1


# ------------------------------------------------------------------- spec and scorer hash


def test_spec_validation(tmp_path: Path, bench_dir: Path) -> None:
    base = json.loads((bench_dir / "rating.yaml").read_text())

    def bad(change: dict[str, Any], message: str) -> None:
        path = tmp_path / "bad.yaml"
        path.write_text(json.dumps({**base, **change}))
        with pytest.raises(UserError, match=message):
            load_spec(path)

    bad({"judge": None}, "judged mode needs a `judge` section")
    bad({"generation": None}, "judged mode needs a `generation` section")
    bad({"metrics": ["exact_match"]}, "not available in judged mode")
    bad({"metrics": ["win_rate"]}, "not produced by a rating judge")
    bad({"judge": {"template": "x", "verdict": "pairwise"}}, "needs `baseline`")
    bad({"judge": {"template": "x", "verdict": "maybe"}}, "judge.verdict")
    bad({"mode": "generate", "metrics": ["exact_match"]}, "needs `mode: judged`")
    bad({"mode": "generate", "judge": None, "metrics": ["exact_match"],
         "extract": [{"name": "j", "kind": "judge"}, {"name": "s", "regex": "x"}]},
        "comes once, last")  # fmt: skip
    bad({"mode": "generate", "judge": None, "metrics": ["exact_match"],
         "extract": [{"name": "j", "kind": "judge", "regex": "x"}]},
        "a judge extractor takes no `regex`")  # fmt: skip


def test_template_errors_name_row_and_field(bench_dir: Path) -> None:
    path = bench_dir / "rating.yaml"
    spec = json.loads(path.read_text())
    spec["judge"]["template"] = "{{ answer }} {{ no_such_field }}"
    path.write_text(json.dumps(spec))
    with pytest.raises(UserError, match=r"test\.jsonl:1: the row has no field `no_such_field`"):
        plan_bench(load_spec(path), None, None, None, "m", judge=None)
    proc = gn("run", "--model", "openai:x", "--bench", path, "--judge", "openai:j",
              "--store", bench_dir / "s.sqlite")  # fmt: skip
    assert proc.returncode == 2 and "judge.template uses" in proc.stderr


def test_scorer_hash_follows_judge_prompt_and_parser(bench_dir: Path) -> None:
    spec = load_spec(bench_dir / "rating.yaml")
    hashes = {scorer_hash(mode_for(spec), "judge-a")}
    hashes.add(scorer_hash(mode_for(spec), "judge-b"))
    for change in ({"template": spec.judge.template + "!"}, {"system": None}, {"scale": 5},
                   {"normalize": True}):  # fmt: skip
        other = spec.model_copy(update={"judge": spec.judge.model_copy(update=change)})
        hashes.add(scorer_hash(mode_for(other), "judge-a"))
    assert len(hashes) == 6


def test_normalised_rating_and_midpoint(bench_dir: Path) -> None:
    spec = load_spec(bench_dir / "rating.yaml")
    spec = spec.model_copy(update={"judge": spec.judge.model_copy(update={"normalize": True})})
    mode = mode_for(spec)
    judge = Judge("judge", lambda: None, bench_dir / "s.sqlite")  # type: ignore[arg-type,return-value]
    sample = plan_bench(spec, None, None, None, "m", judge=judge).samples[0]
    answer = [GenerateResult("The answer is 3.")]
    (request,) = mode.judge_requests(sample, answer)
    assert request.temperature == 0 and request.max_tokens == 16
    assert [m.role for m in request.messages] == ["system", "user"]
    high = mode.judged_result(sample, answer, [GenerateResult("[[10]]")])
    assert high["metrics"] == {"rating": 1.0} and high["correct"]
    mid = mode.judged_result(sample, answer, [GenerateResult("Rating: 5")])
    assert mid["metrics"]["rating"] == pytest.approx(4 / 9) and not mid["correct"]
