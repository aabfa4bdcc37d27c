"""Arbitrary text in every field: the codec, the store's round trip, names and file modes."""

from __future__ import annotations

import json
import os
import random
import re
import stat
from pathlib import Path

import pytest

from gnomon import text
from gnomon.prompts import Sample
from gnomon.rank.board import load_board
from gnomon.rank.names import display_names, slugs
from gnomon.store import ResultRow, Store, result_key
from gnomon_testing.synthetic import write_run

# pieces hostile text is made of: lone and paired surrogates, the codec's own escape, NUL and
# control characters, emoji, markup for HTML and rich, backslashes and JSON quotes
ATOMS = [
    "\ud800", "\udfff", "\udcff", "\udc80", "\ud83d", "\ude00", text.ESC, text.ESC * 2,
    "\U000f0000", "\U000f07ff", "\x00", "\x1b[31m", "\r\n", "😀", "\ufffd", "<script>",
    "[bold]", "[/x]", "\\", '"', "%", "_", "a", "é", " ", "\u202e",
]  # fmt: skip


PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")


def hostile(rng: random.Random, n: int = 12) -> str:
    return "".join(rng.choice(ATOMS) for _ in range(rng.randint(0, n)))


def test_codec_round_trips_any_text_as_valid_unicode() -> None:
    rng = random.Random(9)
    for _ in range(3000):
        s, t = hostile(rng), hostile(rng)
        stored = text.to_store(s)
        stored.encode("utf-8")  # valid Unicode: SQLite and any tool can hold it
        assert text.from_store(stored) == s
        assert text.to_store(s + t) == stored + text.to_store(t)  # char by char: LIKE works
        assert text.decode(text.encode(s)) == s
        text.shown(s).encode("utf-8")
        assert "\ufffd" in text.shown(s) or text.shown(s) == s
        dumped = text.dumps({s: [s]})
        dumped.encode("utf-8")
        if not PAIR.search(s):  # JSON reads an escaped high+low pair as one character
            assert json.loads(dumped) == {s: [s]}


def test_codec_leaves_valid_text_and_its_hashes_alone() -> None:
    for s in ["", "plain", "é😀\x00<b>", "\U000f0000 private use"]:
        assert text.to_store(s) == s and text.encode(s) == s.encode("utf-8")
        assert text.shown(s) == s and text.dumps(s) == json.dumps(s, ensure_ascii=False)
    assert text.from_store("stray \ufdd0 from another tool\ufdd0") == (
        "stray \ufdd0 from another tool\ufdd0"
    )


def test_encode_is_injective_where_surrogates_meet_their_utf8_lookalikes() -> None:
    seen = {text.encode(s) for s in ["\ud800", "\udced\udca0\udc80", "\udcff", "ÿ", "\ufffd"]}
    assert len(seen) == 5


def test_hashes_take_any_text() -> None:
    sample = Sample("b", "q \ud800", 0, "q \ud800", ("a\udcff", "b"), 0, None, "row")
    other = Sample("b", "q \ud801", 0, "q \ud801", ("a\udcff", "b"), 0, None, "row")
    assert sample.content_hash != other.content_hash
    keys = {result_key(m, "b", 1, "h", "s", "c", {}) for m in ["m\udcff", "m\udcfe", "mÿ"]}
    assert len(keys) == 3


def _row(store: Store, rng: random.Random, i: int) -> ResultRow:
    payload = {"output": hostile(rng), "extracted": {hostile(rng): hostile(rng)}, "target": "t"}
    return ResultRow(
        key=f"k{i}\ud800", model_key="m\udcff", bench="b\ud800", bench_version=1,
        prompt_hash="h", sample_id=hostile(rng), index=i, cluster=hostile(rng), correct=True,
        metrics={"acc\ud800": 1.0}, payload=payload, prompt=hostile(rng, 40),
    )  # fmt: skip


def test_store_round_trips_any_text(tmp_path: Path) -> None:
    rng = random.Random(3)
    store = Store(tmp_path / "s.sqlite")
    run_id = "run \ud800/../x"
    config = {"model": "/models/\udcff", hostile(rng): hostile(rng)}
    store.begin_run(run_id, "model \udcff", "m\udcff", config, "0")
    rows = [_row(store, rng, i) for i in range(50)]
    spec = {"id": "b\ud800", "title": hostile(rng)}
    store.add_bench(run_id, "b\ud800", 1, "h", 0, [r.key for r in rows], spec)
    store.add_results(run_id, rows)
    store.add_failures(run_id, "b\ud800", [("s\ud800", "reason \udcff")])
    store.finish_run(run_id, "done", engine={"name": "e\ud800"})
    store.close()

    back = Store(tmp_path / "s.sqlite", create=False)
    run = back.run(run_id)
    assert (run["model"], run["model_key"], run["config"]) == ("model \udcff", "m\udcff", config)
    assert run["engine"] == {"name": "e\ud800"}
    assert back.run_benches(run_id)[0]["spec"] == spec
    assert back.failures(run_id) == [
        {"bench": "b\ud800", "sample_id": "s\ud800", "reason": "reason \udcff"}
    ]
    got = {s["key"]: s for s in back.samples(run_id)}
    assert back.existing([r.key for r in rows]) == {r.key for r in rows}
    for r in rows:
        s = got[r.key]
        assert (s["sample_id"], s["cluster"], s["prompt"]) == (r.sample_id, r.cluster, r.prompt)
        assert s["metrics"] == r.metrics and s["output"] == r.payload["output"]
        assert s["extracted"] == r.payload["extracted"]
    needle = rows[7].prompt[2:5]  # a search in SQL finds text holding lone surrogates
    if needle:
        found = back.conn.execute(
            "SELECT COUNT(*) FROM results WHERE instr(prompt, ?) > 0", (needle,)
        ).fetchone()[0]
        assert found >= 1


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_store_is_owner_only_with_its_wal_and_folder(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "store.sqlite"
    old = os.umask(0o022)
    try:
        store = Store(path)
        write_run(store, model="m", ability=0.0, bench="b", kind="choice",
                  dimension="knowledge", samples=5)  # fmt: skip
        wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
        assert wal.exists() and shm.exists()
        assert {_mode(path), _mode(wal), _mode(shm)} == {0o600}
        assert _mode(path.parent) == 0o700
        store.close()
    finally:
        os.umask(old)


def test_an_existing_store_keeps_the_mode_its_owner_chose(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    Store(path).close()
    path.chmod(0o640)
    store = Store(path)
    write_run(store, model="m", ability=0.0, bench="b", kind="choice",
              dimension="knowledge", samples=5)  # fmt: skip
    assert _mode(path) == 0o640 and _mode(Path(f"{path}-wal")) == 0o640
    store.close()


ADVERSARIAL_KEYS = [
    "openai:m@http://a:1/v1", "openai:m@http://b:1/v1", "openai:m@http://a:2/v1",
    "openai:m@https://a:1/v1", "hf:m@main|float32", "hf:m@main|bfloat16",
    "x-12345678", "y-12345678", "12345678", "prefix-long-shared|12345678",
    "prefix-long-shared|22345678", "m\udc80", "m\udc81", "m\ud800", "m", "M", "",
]  # fmt: skip


@pytest.mark.parametrize("same", ["m", "m [a:1]", "m\ud800", "", "M"])
def test_shown_names_are_distinct_for_distinct_keys(same: str) -> None:
    names = {key: same for key in ADVERSARIAL_KEYS}
    names["lone"] = "m [a:1] #2"  # a name that looks like a suffixed one
    shown = display_names(names)
    assert len(set(shown.values())) == len(shown)
    assert all("\ud800" not in n for n in shown.values())
    slug = slugs(shown)
    assert len({s.lower() for s in slug.values()}) == len(slug)


def test_served_models_of_one_name_show_their_hosts(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    keys = ["openai:m@http://a:1/v1", "openai:m@http://b:1/v1", "z-abcdefgh", "y-abcdefgh"]
    for seed, key in enumerate(keys):
        run = write_run(store, model="m", ability=0.0, bench="b", kind="choice",
                        dimension="knowledge", samples=5, seed=seed)  # fmt: skip
        store.conn.execute("UPDATE runs SET model_key = ? WHERE run_id = ?", (key, run.run_id))
    names = sorted(m.name for m in load_board(store).models)
    assert len(set(names)) == 4
    assert "m [a:1]" in names and "m [b:1]" in names
