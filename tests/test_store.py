"""The result store: content keys, the run bookkeeping, refusing foreign files, atomic batches."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from gnomon.errors import UserError
from gnomon.store import ResultRow, Store, result_key

BASE: dict[str, Any] = {
    "model_key": "hf:org/model@main|float32",
    "bench": "arc_easy",
    "bench_version": 1,
    "prompt_hash": "0123456789abcdef",
    "sample_id": "Mercury_123",
    "content_hash": "fedcba9876543210",
    "settings": {"greedy": True, "max_tokens": 256},
}


def key(**changes: Any) -> str:
    return result_key(**(BASE | changes))


def test_result_key_is_deterministic() -> None:
    assert key() == key() == result_key(*BASE.values())
    assert len(key()) == 64
    # settings are compared as data, not by insertion order
    assert key(settings={"max_tokens": 256, "greedy": True}) == key()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("model_key", "hf:org/model@main|bfloat16"),
        ("model_key", "hf:local:0011223344556677|float32"),
        ("bench", "arc_challenge"),
        ("bench_version", 2),
        ("prompt_hash", "0123456789abcdee"),
        ("sample_id", "Mercury_124"),
        ("content_hash", "fedcba9876543211"),
        ("settings", {"greedy": True, "max_tokens": 128}),
        ("settings", {}),
    ],
)
def test_result_key_changes_with_each_part(field: str, value: Any) -> None:
    assert key(**{field: value}) != key()


def row(n: int, run_tag: str = "", **changes: Any) -> ResultRow:
    fields: dict[str, Any] = {
        "key": key(sample_id=f"s{n}{run_tag}"),
        "model_key": BASE["model_key"],
        "bench": "arc_easy",
        "bench_version": 1,
        "prompt_hash": BASE["prompt_hash"],
        "sample_id": f"s{n}",
        "index": n,
        "cluster": None if n % 2 else "physics",
        "correct": n % 2 == 0,
        "metrics": {"acc": float(n % 2 == 0), "acc_norm": 1.0},
        "payload": {"prediction": n, "choice_logprobs": [-1.5, -2.0], "output": "é ✓"},
        "prompt": f"Question: {n}?\nAnswer:",
    }
    return ResultRow(**(fields | changes))


def begin(store: Store, run_id: str) -> None:
    store.begin_run(run_id, "hf:org/model", BASE["model_key"], {"limit": 3}, "0.1.0")


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "gnomon.db"
    store = Store(path)
    begin(store, "20260101-000000-aaaaaa")
    first = [row(i) for i in range(3)]
    reused = store.add_bench(
        "20260101-000000-aaaaaa", "arc_easy", 1, BASE["prompt_hash"], 0, [r.key for r in first],
        {"id": "arc_easy"},
    )  # fmt: skip
    assert reused == 0
    assert store.add_results("20260101-000000-aaaaaa", first) == 3
    store.finish_run("20260101-000000-aaaaaa", "done", planned=3, reused=0, engine={"x": "y"})

    samples = list(store.samples("20260101-000000-aaaaaa"))
    assert [s["sample_id"] for s in samples] == ["s0", "s1", "s2"]
    s0 = samples[0]
    assert s0["key"] == first[0].key and s0["index"] == 0 and s0["cluster"] == "physics"
    assert s0["correct"] is True and s0["metrics"] == {"acc": 1.0, "acc_norm": 1.0}
    assert s0["prediction"] == 0 and s0["choice_logprobs"] == [-1.5, -2.0]
    assert s0["output"] == "é ✓" and s0["prompt"] == "Question: 0?\nAnswer:"
    assert samples[1]["cluster"] is None and samples[1]["correct"] is False
    assert list(store.samples("20260101-000000-aaaaaa", "arc_challenge")) == []
    store.close()

    # a second run, in a fresh connection, reuses two results and computes one more
    store = Store(path)
    begin(store, "20260101-000100-bbbbbb")
    keys = [first[1].key, first[2].key, row(3).key]
    reused = store.add_bench(
        "20260101-000100-bbbbbb", "arc_easy", 1, BASE["prompt_hash"], 0, keys, {"id": "arc_easy"}
    )
    assert reused == 2
    assert store.existing(keys) == set(keys[:2])
    assert list(store.samples("20260101-000100-bbbbbb")) == samples[1:]
    store.add_results("20260101-000100-bbbbbb", [row(3)])
    assert [s["sample_id"] for s in store.samples("20260101-000100-bbbbbb")] == ["s1", "s2", "s3"]
    (bench,) = store.run_benches("20260101-000100-bbbbbb")
    assert (bench["bench"], bench["planned"], bench["done"]) == ("arc_easy", 3, 3)
    assert bench["spec"] == {"id": "arc_easy"}

    runs = store.runs()
    assert [r["run_id"] for r in runs] == ["20260101-000100-bbbbbb", "20260101-000000-aaaaaa"]
    done = store.run("20260101-000000-aaaaaa")
    assert done["status"] == "done" and done["computed"] == 3 and done["planned"] == 3
    assert done["config"] == {"limit": 3} and done["engine"] == {"x": "y"}
    running = store.run("20260101-000100")  # a unique prefix
    assert running["run_id"] == "20260101-000100-bbbbbb"
    assert running["status"] == "running" and running["computed"] == 1
    with pytest.raises(UserError, match="matches 2 runs"):
        store.run("20260101-000")
    with pytest.raises(UserError, match="no run"):
        store.run("20270101")
    store.close()


def test_add_results_is_idempotent_per_key(tmp_path: Path) -> None:
    store = Store(tmp_path / "g.db")
    begin(store, "r1")
    store.add_results("r1", [row(0)])
    store.add_results("r1", [row(0, payload={"prediction": 99})])  # same key: kept as first
    (sample,) = store.samples("r1")
    assert sample["prediction"] == 0


def test_add_results_is_all_or_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "g.db")
    begin(store, "r1")
    store.add_results("r1", [row(0)])
    batch = [row(1), row(2, payload={"bad": object()}), row(3)]
    with pytest.raises(TypeError):
        store.add_results("r1", batch)
    assert store.existing([r.key for r in batch]) == set()
    assert [s["sample_id"] for s in store.samples("r1")] == ["s0"]
    assert store.run("r1")["computed"] == 1
    # the store is still usable afterwards
    store.add_results("r1", [row(1), row(3)])
    assert [s["sample_id"] for s in store.samples("r1")] == ["s0", "s1", "s3"]
    store.close()
    reopened = Store(tmp_path / "g.db")
    assert reopened.run("r1")["computed"] == 3
    reopened.close()


def test_not_an_sqlite_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database\n" * 200)
    before = path.read_bytes()
    with pytest.raises(UserError, match="not a usable gnomon store"):
        Store(path)
    assert path.read_bytes() == before


def test_foreign_sqlite_file_is_refused_and_left_byte_identical(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE people (name TEXT)")
    conn.execute("INSERT INTO people VALUES ('ada')")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(UserError, match="an SQLite database, but not a gnomon store"):
        Store(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.sqlite"]


def test_foreign_sqlite_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE people (name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(UserError, match="an SQLite database, but not a gnomon store"):
        Store(path)
    conn = sqlite3.connect(path)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    conn.close()
    assert tables == ["people"]  # no gnomon tables were added


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    conn.commit()
    conn.close()
    with pytest.raises(UserError, match="newer"):
        Store(path)
