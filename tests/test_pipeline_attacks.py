"""Attacks on the middle of the pipeline (answers, scores, the store) that once got through:
a regex that backtracks for ever on one answer, answer files with a byte order mark or bytes
that are not UTF-8, a read-only store (one that needs upgrading, one whose finished run has no
cached sums), and two equal requests that got two keys."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from gnomon_cli import ENV, GNOMON, gnomon, ok, summary

from gnomon.engines.base import GenerateRequest, Message, ScoreRequest
from gnomon.requests import as_chat, request_key

SCHEMA1 = Path(__file__).parent / "data" / "store-schema1.sqlite"
ROWS = [
    {"qid": "a", "q": "Say a few a's", "answer": "aaa"},
    {"qid": "b", "q": "Say b", "answer": "b"},
    {"qid": "1", "q": "Half of one?", "answer": "0.5"},
]


def write_spec(root: Path, rows: list[dict[str, Any]] = ROWS, **changes: Any) -> Path:
    data = root / "data"
    data.mkdir(exist_ok=True)
    (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = {
        "id": "attack", "title": "Attack", "dimension": "language", "version": 1,
        "source": {"files": str(data), "eval_split": "test", "id_field": "qid"},
        "prompt": {"template": "{{ q }}\n", "target": "answer"},
        "mode": "generate", "generation": {"until": ["\n\n"], "max_tokens": 32},
        "extract": [{"name": "answer", "regex": "Answer: (.*)"}],
        "metrics": ["exact_match"],
    } | changes  # fmt: skip
    path = root / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


# ----------------------------------------------------------------- keys
def key(request: GenerateRequest | ScoreRequest) -> str:
    return request_key("model", request)


def test_equal_requests_get_one_key() -> None:
    """0, 0.0 and -0.0 are one temperature: equal requests must never be computed twice."""
    base = GenerateRequest("Q", ("\n",), 32)
    for same in (
        GenerateRequest("Q", ("\n",), 32, 0),
        GenerateRequest("Q", ("\n",), 32, -0.0),
    ):
        assert same == base and key(same) == key(base)
    assert key(GenerateRequest("Q", (), 8, 1)) == key(GenerateRequest("Q", (), 8, 1.0))


def test_requests_that_differ_in_any_field_get_their_own_key() -> None:
    base = GenerateRequest("Q", ("\n",), 32)
    variants = [
        base,
        GenerateRequest("Q ", ("\n",), 32),
        GenerateRequest("Q", ("\n ",), 32),
        GenerateRequest("Q", (), 32),
        GenerateRequest("Q", ("\n",), 33),
        GenerateRequest("Q", ("\n",), 32, 0.5),
        GenerateRequest("Q", ("\n",), 32, seed=1),
        GenerateRequest("Q", ("\n",), 32, tools="[]"),
        as_chat(base),
        as_chat(base, "be brief"),
        GenerateRequest("Q", ("\n",), 32, messages=(Message("user", "Q "),)),
        GenerateRequest("\ud800", ("\n",), 32),
        GenerateRequest("\ufffd", ("\n",), 32),
    ]
    keys = [key(v) for v in variants]
    assert len(set(keys)) == len(keys)
    assert key(ScoreRequest("a", " b")) != key(ScoreRequest("a ", "b"))
    assert request_key("m1", base) != request_key("m2", base)


# ----------------------------------------------------------------- scoring time
@pytest.mark.parametrize("where", ["extract", "normalize"])
def test_a_catastrophic_regex_fails_only_its_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """`(a+)+$` on many a's and a b backtracks for minutes (a day at 40 a's); that sample fails
    with the reason, its answer stays stored, the others are scored."""
    from gnomon.hub.spec import load_spec
    from gnomon.score_file import score_file
    from gnomon.scoring import deadline
    from gnomon.store import Store

    monkeypatch.setattr(deadline, "REGEX_SECONDS", 0.3)
    evil = "(a+)+$"
    if where == "extract":
        spec_path = write_spec(tmp_path, extract=[{"name": "evil", "regex": evil}])
    else:
        spec_path = write_spec(tmp_path, normalize={"regexes_to_ignore": [evil]})
    answers = tmp_path / "answers.jsonl"
    outputs = {"a": "Answer: aaa", "b": "Answer: " + "a" * 27 + "b", "1": "Answer: 0.5"}
    answers.write_text("".join(json.dumps({"sample_id": k, "output": v}) + "\n"
                               for k, v in outputs.items()))  # fmt: skip
    store = Store(tmp_path / "s.sqlite")
    try:
        started = time.monotonic()
        outcome = score_file(load_spec(spec_path), answers, store, None, lambda _: None)
        assert time.monotonic() - started < 20
        failures = store.failures(outcome.run_id)
        assert [f["sample_id"] for f in failures] == ["b"]
        assert (
            "ScoringTimeout" in failures[0]["reason"]
            and "ran for more than" in failures[0]["reason"]
        )
        assert {s["sample_id"] for s in store.samples(outcome.run_id)} == {"a", "1"}
        stored = store.conn.execute("SELECT answer FROM answers").fetchall()
        assert any("a" * 27 + "b" in row[0] for row in stored)  # the answer is kept
        assert store.run(outcome.run_id)["status"] == "incomplete"
    finally:
        store.close()


# ----------------------------------------------------------------- answer files
@pytest.mark.slow
def test_answer_file_bytes_are_kept_and_a_bom_is_skipped(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    answers = tmp_path / "answers.jsonl"
    answers.write_bytes(
        b'\xef\xbb\xbf{"sample_id": "a", "output": "Answer: aaa"}\r\n\r\n'
        b'{"sample_id": "b", "output": "Answer: b\xff\xfe"}\r\n'
        b'{"sample_id": 1, "output": "Answer: 0.5\\ud800"}\r\n'
    )
    store = tmp_path / "s.sqlite"
    proc = ok(gnomon("score", answers, "--bench", spec, "--store", store, "--out", tmp_path / "o"))
    assert summary(proc.stdout) == (3, 0, 3)
    samples = {
        s["sample_id"]: s
        for s in map(json.loads, (tmp_path / "o" / "samples.jsonl").read_text().splitlines())
    }
    assert samples["a"]["correct"] is True
    assert samples["b"]["output"] == "Answer: b\udcff\udcfe"  # the bytes, as surrogateescape
    assert samples["1"]["output"] == "Answer: 0.5\ud800"

    from gnomon.store import Store

    db = Store(store, create=False)
    try:
        texts = {json.loads(a)["text"] for a in db.answers(
            [r[0] for r in db.conn.execute("SELECT key FROM answers")]).values()}  # fmt: skip
    finally:
        db.close()
    assert texts == {"Answer: aaa", "Answer: b\udcff\udcfe", "Answer: 0.5\ud800"}
    again = ok(gnomon("score", answers, "--bench", spec, "--store", store))
    assert summary(again.stdout) == (3, 3, 0)


@pytest.mark.slow
def test_data_that_is_not_utf8_names_its_line(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    with (tmp_path / "data" / "test.jsonl").open("ab") as f:
        f.write(b'{"qid": "z", "q": "\xff", "answer": "x"}\n')
    answers = tmp_path / "a.jsonl"
    answers.write_text('{"sample_id": "a", "output": "x"}\n')
    proc = gnomon("score", answers, "--bench", spec, "--store", tmp_path / "s.sqlite")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().endswith("test.jsonl:4: not UTF-8 text (byte 20)"), proc.stderr


# ----------------------------------------------------------------- read-only stores
def as_reader(*args: object) -> subprocess.CompletedProcess[str]:
    """gnomon without the right to write files it does not own: root normally overrides file
    modes, so its bypass capabilities are dropped for the command."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("root without setpriv cannot be made to respect file modes")
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    return subprocess.run(
        [*prefix, str(GNOMON), *map(str, args)], capture_output=True, text=True, timeout=120,
        env=ENV,
    )  # fmt: skip


@pytest.mark.slow
def test_a_read_only_store_that_needs_upgrading_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    store = folder / "old.sqlite"
    shutil.copy(SCHEMA1, store)
    store.chmod(0o444)
    before = store.read_bytes()
    for command in (["rank"], ["runs", "list"]):
        proc = as_reader(*command, "--store", store)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
        assert "schema 1" in lines[0] and "write access" in lines[0], proc.stderr
    assert store.read_bytes() == before


@pytest.mark.slow
def test_a_read_only_store_is_ranked_without_caching_sums(tmp_path: Path) -> None:
    """A run stopped by Ctrl-C ends without its sums kept; a reader that cannot write them
    still shows the board."""
    rows = [{"qid": f"q{i}", "q": f"{i}+1?", "answer": str(i + 1)} for i in range(3000)]
    spec = write_spec(tmp_path, rows, extract=[{"name": "m", "kind": "math"}],
                      metrics=["math_equiv"])  # fmt: skip
    answers = tmp_path / "a.jsonl"
    answers.write_text("".join(
        json.dumps({"sample_id": r["qid"], "output": f"$\\frac{{{2 * int(r['answer'])}}}{{2}}$"})
        + "\n" for r in rows))  # fmt: skip
    store = tmp_path / "s.sqlite"
    command = [str(GNOMON), "score", answers, "--bench", spec, "--store", store]
    proc = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if store.exists():
            with sqlite3.connect(store) as conn:
                try:
                    if conn.execute("SELECT 1 FROM run_results LIMIT 1").fetchone():
                        break
                except sqlite3.OperationalError:
                    pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(60) != 0
    with sqlite3.connect(store) as conn:
        assert conn.execute("SELECT status FROM runs").fetchone()[0] != "running"
        assert conn.execute("SELECT COUNT(*) FROM run_moments_done").fetchone()[0] == 0
    store.chmod(0o444)
    for name in ("s.sqlite-wal", "s.sqlite-shm"):
        if (tmp_path / name).exists():
            (tmp_path / name).chmod(0o444)
    shown = as_reader("rank", "--store", store)
    assert shown.returncode == 0 and "Traceback" not in shown.stderr, shown.stderr
    assert "attack" in shown.stdout or "file:" in shown.stdout, shown.stdout
