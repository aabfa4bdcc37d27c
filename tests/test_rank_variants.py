"""A benchmark run in several settings (0-shot and 5-shot, chat and plain, choices scored by
loglikelihood or by generation) stands on the leaderboard as variants side by side: no setting
silently replaces another, the standard one keeps the benchmark's column and alone counts in the
means, and a comparison pairs runs of the same setting only."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from gnomon_cli import gnomon, ok
from loopback import running

from gnomon.rank.board import Board, load_board
from gnomon.rank.compare import compare
from gnomon.rank.export import export_site
from gnomon.rank.links import name_of
from gnomon.rank.serialize import board_json
from gnomon.rank.web import create_app
from gnomon.store import Store
from gnomon_testing.synthetic import write_run

N = 60


def _models(board: Board) -> dict:
    return {m.name: m for m in board.models}


KINDS = {
    "mm": ("clustered", "knowledge"),
    "arc": ("choice", "reasoning"),
    "gm": ("generate", "math"),
}


def _run(store: Store, model: str, bench: str, ability: float, **setting: object) -> str:
    """A synthetic run through the real store API: `mm` is MMLU-like (the spec's own count is 5
    shots), `arc` ARC-like (0 shots, a choice benchmark), `gm` GSM8K-like (generation)."""
    kind, dimension = KINDS.get(bench, ("clustered", "knowledge"))
    samples = int(setting.pop("samples", N))  # type: ignore[call-overload]
    return write_run(
        store, model=model, ability=ability, bench=bench, kind=kind, dimension=dimension,
        samples=samples, **setting,  # type: ignore[arg-type]
    ).run_id  # fmt: skip


@pytest.fixture
def shots_store(tmp_path: Path) -> dict:
    """`five` ran MMLU 5-shot (standard) and later 0-shot, scoring far lower 0-shot; `zero` ran
    MMLU only 0-shot; both ran ARC in its standard setting."""
    path = tmp_path / "store.sqlite"
    store = Store(path)
    runs = {
        "five": _run(store, "five", "mm", 2.0),
        "five@0": _run(store, "five", "mm", -2.0, shots=0, seed=1, created_offset=30.0),
        "five@arc": _run(store, "five", "arc", 0.0),
        "zero@0": _run(store, "zero", "mm", 0.5, shots=0),
        "zero@arc": _run(store, "zero", "arc", 0.5),
    }
    store.close()
    return {"path": path, "runs": runs}


def test_five_and_zero_shot_stand_side_by_side(shots_store: dict) -> None:
    board = load_board(Store(shots_store["path"], create=False))
    runs = shots_store["runs"]
    assert list(board.benches) == ["mm", "mm@0shot", "arc"]  # the variant beside its benchmark
    main, variant = board.benches["mm"], board.benches["mm@0shot"]
    assert main.standard and not variant.standard
    assert (variant.title, variant.bench, variant.setting.shots) == ("Mm · 0-shot", "mm", 0)
    five = _models(board)["five"]
    # the newer 0-shot run did not replace the 5-shot one: both cells, each its own run
    assert five.entries["mm"].run_id == runs["five"] and five.entries["mm"].shots == 5
    assert five.entries["mm@0shot"].run_id == runs["five@0"]
    assert five.entries["mm@0shot"].shots == 0 and five.entries["mm@0shot"].bench == "mm"
    # the dimension and overall means use the standard run alone: the variant never counts
    standard, arc = five.entries["mm"].score, five.entries["arc"].score
    knowledge = five.dimensions["knowledge"]
    assert knowledge.value == pytest.approx(standard.value)
    assert (knowledge.ci_low, knowledge.ci_high) == (standard.ci_low, standard.ci_high)
    assert five.overall.value == pytest.approx((standard.value + arc.value) / 2)
    assert five.complete and five.entries["mm@0shot"].score.value < standard.value
    # only a 0-shot run: shown in the variant column, missing the standard one
    zero = _models(board)["zero"]
    assert set(zero.entries) == {"mm@0shot", "arc"}
    assert zero.missing["knowledge"] == ["mm"] and "knowledge" not in zero.dimensions
    assert not zero.complete
    assert zero.overall.value == pytest.approx(zero.entries["arc"].score.value)
    assert [m.name for m in board.models] == ["five", "zero"]


def test_newest_wins_within_one_setting(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.sqlite")
    old0 = _run(store, "m", "mm", 0.0, shots=0, seed=1)
    new0 = _run(store, "m", "mm", 1.0, shots=0, seed=2, created_offset=20.0)
    old5 = _run(store, "m", "mm", 0.0, seed=3, created_offset=-20.0)
    new5 = _run(store, "m", "mm", 1.0, shots=5, seed=4, created_offset=10.0)  # 5 is standard
    limited = _run(store, "m", "mm", -3.0, shots=0, seed=5, limit=10, samples=10,
                   created_offset=60.0)  # fmt: skip
    board = load_board(store)
    assert list(board.benches) == ["mm", "mm@0shot"]
    m = board.models[0]
    assert m.entries["mm"].run_id == new5 and m.entries["mm@0shot"].run_id == new0
    assert {old0, old5, limited}.isdisjoint(e.run_id for e in m.entries.values())


def test_chat_and_generation_are_their_own_columns(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.sqlite")
    plain = _run(store, "m", "arc", 1.0)
    chat = _run(store, "m", "arc", 0.0, chat=True, seed=1, created_offset=10.0)
    gen = _run(store, "m", "arc", -1.0, choice_scored_by="generation", seed=2, created_offset=20.0)
    both = _run(store, "m", "arc", -1.0, chat=True, shots=3, choice_scored_by="generation")
    # a generation benchmark has no choices to score another way: `choice_scored_by` is moot
    math_gen = _run(store, "m", "gm", 0.0, choice_scored_by="generation")
    board = load_board(store)
    assert list(board.benches) == [
        "arc", "arc@chat", "arc@generation", "arc@3shot+chat+generation", "gm"
    ]  # fmt: skip
    titles = {b.id: b.title for b in board.benches.values()}
    assert titles["arc@chat"] == "Arc · chat"
    assert titles["arc@generation"] == "Arc · by generation"
    assert titles["arc@3shot+chat+generation"] == "Arc · 3-shot · chat · by generation"
    m = board.models[0]
    assert {c: e.run_id for c, e in m.entries.items()} == {
        "arc": plain, "arc@chat": chat, "arc@generation": gen,
        "arc@3shot+chat+generation": both, "gm": math_gen,
    }  # fmt: skip
    assert m.dimensions["reasoning"].value == pytest.approx(m.entries["arc"].score.value)
    described = board_json(board)["benchmarks"]
    assert described["arc@chat"]["setting"] == {
        "shots": None, "chat": True, "choices_scored_by": "loglikelihood", "standard": False
    }  # fmt: skip
    assert described["arc@chat"]["benchmark"] == "arc"
    assert described["arc"]["setting"]["standard"] is True


def test_a_variant_id_taken_by_another_benchmark(tmp_path: Path) -> None:
    """Benchmark ids are data: one literally named like a variant keeps its column."""
    store = Store(tmp_path / "store.sqlite")
    taken = _run(store, "m", "mm@0shot", 0.0)
    zero = _run(store, "m", "mm", 0.0, shots=0)
    board = load_board(store)
    m = board.models[0]
    assert m.entries["mm@0shot"].run_id == taken and board.benches["mm@0shot"].standard
    assert m.entries["mm@0shot@"].run_id == zero and m.entries["mm@0shot@"].bench == "mm"


def test_comparison_pairs_like_with_like(shots_store: dict) -> None:
    store = Store(shots_store["path"], create=False)
    runs = shots_store["runs"]
    board = load_board(store)
    five, zero = _models(board)["five"], _models(board)["zero"]
    cmp = compare(store, board, five, zero)
    by_column = {bc.bench: bc for bc in cmp.benches}
    assert set(by_column) == {"mm@0shot", "arc"}  # never five's 5-shot against zero's 0-shot
    assert (by_column["mm@0shot"].run_a, by_column["mm@0shot"].run_b) == (
        runs["five@0"],
        runs["zero@0"],
    )
    assert by_column["mm@0shot"].result.n == N and not by_column["mm@0shot"].standard
    assert cmp.only_a == ["mm"]
    # overall: the standard columns alone (arc), as the overall score is built
    assert cmp.overall.mean_diff == pytest.approx(by_column["arc"].result.mean_diff)


def test_terminal_web_and_export_show_variants(shots_store: dict, tmp_path: Path) -> None:
    path, runs = shots_store["path"], shots_store["runs"]
    table = ok(gnomon("rank", "--benchmarks", "--store", path)).stdout
    header = next(line for line in table.splitlines() if "mm@0shot" in line)
    assert header.index(" mm ") < header.index("mm@0shot") < header.index("arc")
    board = load_board(Store(path, create=False))
    five, zero = _models(board)["five"], _models(board)["zero"]
    variant_url = f"/bench/{name_of('mm@0shot')}"
    with running(create_app(path)) as base, httpx.Client(base_url=base) as client:
        home = client.get("/").text
        assert "Mm · 0-shot" in home and f'href="{variant_url}"' in home
        assert "on 2 benchmarks, plus 1 column of them run in other settings" in home
        page = client.get(variant_url)
        assert page.status_code == 200
        # its samples are the store's `mm` of the 0-shot run
        assert f"/run/{name_of(runs['five@0'])}/mm?" in page.text
        assert f"/run/{name_of(runs['five'])}/mm?" not in page.text
        assert 'id="bench-settings"' in page.text and 'id="example-prompt"' in page.text
        model = client.get(f"/model/{five.slug}").text
        assert 'data-bench="mm@0shot"' in model and "0-shot" in model
        samples = client.get(f"/run/{name_of(runs['five@0'])}/mm")
        assert samples.status_code == 200 and f'href="{variant_url}"' in samples.text
        compared = client.get(f"/compare?a={five.slug}&b={zero.slug}&bench={name_of('mm@0shot')}")
        assert compared.status_code == 200 and 'data-bench="mm@0shot"' in compared.text
        api = client.get("/api/board.json").json()
    five_json = next(m for m in api["models"] if m["name"] == "five")
    assert five_json["benchmarks"]["mm@0shot"]["run_id"] == runs["five@0"]
    assert five_json["benchmarks"]["mm"]["run_id"] == runs["five"]
    out = tmp_path / "site"
    export_site(Store(path, create=False), out)
    assert (out / "bench" / f"{name_of('mm@0shot')}.html").is_file()
    assert (out / "run" / name_of(runs["five@0"]) / "mm" / "all-1.html").is_file()
    assert (
        json.loads((out / "board.json").read_text())["benchmarks"]["mm@0shot"]["benchmark"] == "mm"
    )


@pytest.mark.slow
def test_real_runs_in_three_settings(tmp_path: Path, chat_llama_dir: Path, data_root: Path) -> None:
    """The tiny model through `gnomon run` on MMLU rows: the spec's 5 shots, `--shots 0`, and
    through its chat template; each keeps its own column, none replaces another."""
    path = tmp_path / "store.sqlite"
    model = f"hf:{chat_llama_dir}"
    common = ["--model", model, "--store", path, "--device", "cpu", "--dtype", "float32",
              "--bench", "mmlu", "--data", data_root, "--limit", "2"]  # fmt: skip
    for extra in ([], ["--shots", "0"], ["--chat"]):
        ok(gnomon("run", *common, *extra))
    board = load_board(Store(path, create=False))
    assert list(board.benches) == ["mmlu", "mmlu@chat", "mmlu@0shot"]
    (model,) = board.models
    assert {c: (e.shots, e.setting.chat) for c, e in model.entries.items()} == {
        "mmlu": (5, False), "mmlu@0shot": (0, False), "mmlu@chat": (5, True)
    }  # fmt: skip
    assert len({e.run_id for e in model.entries.values()}) == 3
    assert model.overall.value == pytest.approx(model.entries["mmlu"].score.value)


def test_sampling_is_a_setting_only_where_the_benchmark_samples() -> None:
    """`--samples k` / `--temperature` change what code and chat benchmarks measure (pass@k over
    k completions, avg@k); a choice, base-generation or judged benchmark answered greedily all
    the same stands with the greedy runs."""
    from gnomon.rank.settings import setting_of

    code = {"mode": "code", "generation": {"max_tokens": 512}}
    chat = {"mode": "generate", "prompt": {"chat": True}, "generation": {"max_tokens": 64}}
    sampled = {"samples": 10, "temperature": None}
    assert setting_of(None, code, sampled, "hf:m").suffix == "n10"
    assert setting_of(None, code, {"samples": 10, "temperature": 0.2}, "hf:m").suffix == "n10t0.2"
    assert setting_of(None, chat, {"samples": 1, "temperature": 0.7}, "hf:m").suffix == "t0.7"
    assert setting_of(None, chat, {"samples": 1, "temperature": 0.0}, "hf:m").standard
    assert setting_of(None, chat, {"samples": 8}, "file:a.jsonl").label == "avg@8"
    for greedy in (
        {"mode": "choice"},
        {"mode": "generate", "generation": {"max_tokens": 64}},
        {"mode": "judged", "prompt": {"chat": True}},
        {**chat, "extract": [{"name": "judge", "kind": "judge"}]},
    ):
        assert setting_of(None, greedy, sampled, "hf:m").standard, greedy
