"""The leaderboard with benchmarks whose headline is not a share: BLEU (sacreBLEU points, 0..100)
and perplexity (lower is better, unbounded) are computed over the corpus as `gnomon run`'s report
computes them, shown in their own units, sorted best first, never averaged into a dimension or
the overall, and never make a model "missing"; a comparison does not pair them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from gnomon_cli import ENV, gnomon, ok
from loopback import running
from rank_stores import build_corpus_synthetic, write_corpus_run

from gnomon.rank.board import Board, Model, load_board
from gnomon.rank.compare import compare
from gnomon.rank.export import export_site
from gnomon.rank.pages import bench_page
from gnomon.rank.scale import scale_of
from gnomon.rank.web import create_app
from gnomon.report import bench_reports
from gnomon.rowgen import make_rows, maker
from gnomon.scoring.aggregate import aggregate
from gnomon.scoring.metrics import SAMPLE_METRICS
from gnomon.store import Store

CORPUS = {"wmt16_de_en", "wikitext"}  # headlines bleu (points) and word_perplexity (lower)
REAL = "wmt16_de_en,wikitext,lambada_openai,arc_easy"
WIDE = {**ENV, "COLUMNS": "400"}


def _expected_overall(board: Board, model: Model) -> float:
    """Overall as defined, over the standard columns whose score is a share only."""
    per_dim: dict[str, list[float]] = {}
    for bid, entry in model.entries.items():
        bench = board.benches[bid]
        if bench.standard and bench.scale.share and entry.score is not None:
            per_dim.setdefault(bench.dimension, []).append(entry.score.value)
    return sum(sum(v) / len(v) for v in per_dim.values()) / len(per_dim)


# ------------------------------------------------------------------ the registry's units
def test_every_metric_knows_its_scale() -> None:
    """BLEU, chrF and TER come out of gnomon's aggregate on sacreBLEU's 0..100; perplexities
    and bits are lower-is-better; nothing lower-is-better passes for a share."""
    assert aggregate(
        "bleu", [("the cat sat on the mat", ["the cat sat on the mat"])]
    ).value == pytest.approx(100)
    assert aggregate(
        "chrf", [("the cat sat on the mat", ["the cat sat on the mat"])]
    ).value == pytest.approx(100)
    assert {n: SAMPLE_METRICS[n].unit for n in ("bleu", "chrf", "ter")} == dict.fromkeys(
        ("bleu", "chrf", "ter"), "points"
    )
    for name in ("perplexity", "word_perplexity", "byte_perplexity", "bits_per_byte", "ter"):
        assert not scale_of(name).higher_is_better and not scale_of(name).share, name
    for name, metric in SAMPLE_METRICS.items():
        assert metric.unit == "share" or not scale_of(name).share, name
        if not metric.higher_is_better:
            assert not scale_of(name).share, name
    # TruthfulQA generation: BLEU/ROUGE best and difference are on 0..100, `_acc` a share
    assert scale_of("bleu_max").unit == scale_of("rouge1_diff").unit == "points"
    assert scale_of("rougeL_acc").share and not scale_of("bleu_diff").share
    for name in ("acc", "acc_norm", "exact_match", "pass@1", "corpus_f1", "win_rate", "f1"):
        assert scale_of(name).share, name
    assert not scale_of("rating", {"judge": {"normalize": False}}).share
    assert scale_of("rating", {"judge": {"normalize": True}}).share
    assert scale_of("word_perplexity").format(31.234) == "31.23"
    assert scale_of("bleu").format(23.44) == "23.4"
    assert scale_of("acc").format(0.5) == "50.0"


# ------------------------------------------------------------------ real runs of tiny models
@pytest.fixture(scope="module")
def real_corpus(tmp_path_factory: pytest.TempPathFactory, llama_dir: Path, qwen2_dir: Path) -> dict:
    """The tiny Llama on a BLEU, a perplexity and two accuracy benchmarks; the tiny Qwen2 on
    the accuracy ones only. Each run's `--out` report is kept to compare with the board."""
    root = tmp_path_factory.mktemp("corpus")
    data = root / "data"
    for bench in REAL.split(","):
        found = maker(bench)
        assert found is not None, bench
        (data / bench).mkdir(parents=True)
        for split in found.sizes:
            lines = [json.dumps(r, ensure_ascii=False) for r in make_rows(bench, split)]
            (data / bench / f"{split}.jsonl").write_text("\n".join(lines) + "\n", "utf-8")
    store = root / "store.sqlite"
    reports = {}
    for name, model, benches in (("llama", llama_dir, REAL), ("qwen2", qwen2_dir, "arc_easy")):
        out = root / name
        ok(gnomon(
            "run", "--model", f"hf:{model}", "--store", store, "--device", "cpu", "--dtype",
            "float32", "--bench", benches + ",lambada_openai" * (name == "qwen2"), "--data",
            data, "--limit", 6, "--out", out,
        ))  # fmt: skip
        results = json.loads((out / "results.json").read_text())
        reports[results["model_key"]] = results
    return {"path": store, "reports": reports}


def test_corpus_headlines_equal_the_run_report(real_corpus: dict) -> None:
    board = load_board(Store(real_corpus["path"], create=False))
    assert {b.id for b in board.unaveraged} == CORPUS
    checked = set()
    for key, results in real_corpus["reports"].items():
        model = next(m for m in board.models if m.key == key)
        for bench, report in results["benchmarks"].items():
            entry = model.entries[bench]
            want = report["metrics"][report["headline"]]
            assert entry.headline == report["headline"]
            assert entry.score is not None, bench
            assert entry.score.value == pytest.approx(want["value"], rel=1e-12)
            assert [entry.score.ci_low, entry.score.ci_high] == pytest.approx(want["ci95"])
            assert entry.done == report["n"] == 6
            checked.add((bench, entry.scale.unit))
        # a model without the BLEU and perplexity benchmarks lacks nothing
        assert model.complete, (model.name, model.missing)
        assert model.overall is not None
        assert model.overall.value == pytest.approx(_expected_overall(board, model), rel=1e-12)
    assert checked >= {("wmt16_de_en", "points"), ("wikitext", "perplexity")}
    assert ("lambada_openai", "share") in checked and ("arc_easy", "share") in checked


def test_terminal_shows_each_unit(real_corpus: dict) -> None:
    board = load_board(Store(real_corpus["path"], create=False))
    llama = next(m for m in board.models if "wikitext" in m.entries)
    ppl = llama.entries["wikitext"]
    shown = ok(gnomon("rank", "--benchmarks", "--store", real_corpus["path"], env=WIDE)).stdout
    assert ppl.scale.format(ppl.score.value) + " ↓" in shown  # as it is, not x100
    assert f"{100 * ppl.score.value:,.0f}" not in shown
    assert "not averaged" in shown and "wikitext" in shown and "wmt16_de_en" in shown


def test_model_page_lists_corpus_metrics_in_their_units(real_corpus: dict) -> None:
    """LAMBADA's headline is acc (a share, averaged); its corpus perplexity is listed beside it
    on the model page, as the run's report gives it, in its own unit."""
    board = load_board(Store(real_corpus["path"], create=False))
    llama = next(m for m in board.models if "wikitext" in m.entries)
    report = real_corpus["reports"][llama.key]["benchmarks"]
    ppl = report["lambada_openai"]["metrics"]["perplexity"]["value"]
    word_ppl = report["wikitext"]["metrics"]["word_perplexity"]["value"]
    with running(create_app(real_corpus["path"])) as base:
        page = httpx.get(f"{base}/model/{llama.slug}").text
    assert f"perplexity {scale_of('perplexity').format(ppl)} ↓" in page
    assert f"word_perplexity {scale_of('word_perplexity').format(word_ppl)} ↓" in page
    assert "not averaged" in page


# ------------------------------------------------------------------ a synthetic store
@pytest.fixture(scope="module")
def syn_corpus(tmp_path_factory: pytest.TempPathFactory) -> dict:
    path = tmp_path_factory.mktemp("syn-corpus") / "store.sqlite"
    return {"path": path, "runs": build_corpus_synthetic(path)}


def test_units_means_and_order(syn_corpus: dict) -> None:
    store = Store(syn_corpus["path"], create=False)
    board = load_board(store)
    by_name = {m.name: m for m in board.models}
    for (name, bench), run_id in syn_corpus["runs"].items():
        (report,) = [r for r in bench_reports(store, run_id) if r.bench == bench]
        entry = by_name[name].entries[bench]
        assert entry.score == report.metrics[report.headline]
    good, poor = by_name["good"], by_name["poor"]
    assert 1 < poor.entries["wmt16_de_en"].score.value < good.entries["wmt16_de_en"].score.value
    assert good.entries["wikitext"].score.value < poor.entries["wikitext"].score.value
    for model in board.models:
        assert model.complete and not any(model.missing.values())
        assert model.overall == model.dimensions["knowledge"]
        assert model.overall.value == model.entries["bench_a"].score.value
        assert "language" not in model.dimensions  # WMT16 and WikiText are not averaged
    assert [m.name for m, _ in bench_page(store, board, "wikitext").context["rows"]] == [
        "good", "poor"
    ]  # fmt: skip
    assert [m.name for m, _ in bench_page(store, board, "wmt16_de_en").context["rows"]] == [
        "good", "poor"
    ]  # fmt: skip

    cmp = compare(store, board, good, poor)
    assert [bc.bench for bc in cmp.benches] == ["bench_a"]
    assert {u.bench for u in cmp.unpaired} == CORPUS
    assert cmp.overall is not None
    assert cmp.overall.mean_diff == pytest.approx(cmp.benches[0].result.mean_diff)
    shown = ok(gnomon("rank", "compare", "good", "poor", "--store", syn_corpus["path"], env=WIDE))
    assert "not paired" in shown.stdout


def test_pages_json_and_export(syn_corpus: dict, tmp_path: Path) -> None:
    path = syn_corpus["path"]
    store = Store(path, create=False)
    board = load_board(store)
    by_name = {m.name: m for m in board.models}
    bleu = by_name["good"].entries["wmt16_de_en"]
    with running(create_app(path)) as base, httpx.Client(base_url=base) as client:
        home = client.get("/").text
        assert "Not averaged" in home
        wiki_th = re.search(r'<th [^>]*data-bench="wikitext"[^>]*>', home)
        assert wiki_th and 'data-lower="1"' in wiki_th.group(0)
        bench_a_th = re.search(r'<th [^>]*data-bench="bench_a"[^>]*>', home)
        assert bench_a_th and "data-lower" not in bench_a_th.group(0)
        cell = re.search(
            r'<tr[^>]*data-slug="{}".*?<td[^>]*data-bench="wmt16_de_en">(.*?)</td>'.format(
                by_name["good"].slug
            ),
            home,
            re.S,
        )
        assert cell, "no WMT16 cell for good"
        score = re.search(r'<span class="score"[^>]*>([^<]*)</span>', cell.group(1))
        assert score and score.group(1) == f"{bleu.score.value:.1f}"  # BLEU points, not x100
        page = client.get("/bench/wikitext").text
        slugs = re.findall(r'<tr data-slug="([^"]+)"', page)
        assert slugs == [by_name["good"].slug, by_name["poor"].slug]
        assert "lower is better" in page
        run = syn_corpus["runs"][("good", "wmt16_de_en")]
        samples = client.get(f"/run/{run}/wmt16_de_en").text
        assert 'id="corpus-note"' in samples  # BLEU judges no single sample
        assert ">wrong" not in samples and 'data-filter="wrong"' not in samples
        assert (
            ">wrong" in client.get(f"/run/{syn_corpus['runs'][('good', 'bench_a')]}/bench_a").text
        )
        api = client.get("/api/board.json").json()
        cmp = client.get(
            f"/compare?a={by_name['good'].slug}&b={by_name['poor'].slug}"
        ).text  # fmt: skip
    wiki = api["benchmarks"]["wikitext"]
    assert (wiki["unit"], wiki["higher_is_better"], wiki["averaged"]) == (
        "perplexity",
        False,
        False,
    )
    assert api["benchmarks"]["wmt16_de_en"]["unit"] == "points"
    assert api["benchmarks"]["bench_a"]["averaged"] is True
    for model in api["models"]:
        assert model["complete"] is True and model["missing"] == {}
    assert 'id="unpaired"' in cmp
    rows = re.findall(r'<tr data-bench="([^"]+)"', cmp.split('id="compare-table"')[1])
    assert rows == ["bench_a"]

    export_site(store, tmp_path / "site", samples=False)
    exported = json.loads((tmp_path / "site" / "board.json").read_text())
    assert exported["benchmarks"] == api["benchmarks"]
    assert "Not averaged" in (tmp_path / "site" / "index.html").read_text()


def test_corpus_run_in_progress(tmp_path: Path) -> None:
    """A BLEU run that has written nothing yet is a dash, not a NaN; part-way, its BLEU over
    the samples so far, marked with its progress; neither makes the model missing anything."""
    path = tmp_path / "store.sqlite"
    store = Store(path)
    write_corpus_run(store, "slow", "wmt16_de_en", 0.7, samples=10, written=0)
    (model,) = load_board(store).models
    entry = model.entries["wmt16_de_en"]
    assert entry.score is None and entry.partial and entry.done == 0
    assert model.complete and model.overall is None
    run_id = write_corpus_run(store, "slower", "wmt16_de_en", 0.7, samples=10, written=3)
    board = load_board(store)
    entry = next(m for m in board.models if m.name == "slower").entries["wmt16_de_en"]
    assert (entry.done, entry.planned, entry.run_id) == (3, 10, run_id)
    (report,) = bench_reports(store, run_id)
    assert entry.score == report.metrics["bleu"]
    shown = ok(gnomon("rank", "--benchmarks", "--store", path, env=WIDE)).stdout
    assert "nan" not in shown.lower()
    store.close()
