"""The language benchmarks (LAMBADA, WikiText-2, WMT16) agree with lm-evaluation-harness.

- Rolling loglikelihoods: gnomon's windows are lm-eval's (`get_rolling_token_windows` made
  disjoint), and `HFEngine.score_rolling` gives `HFLM.loglikelihood_rolling`'s numbers on the
  tiny model, for texts inside one window and texts over many (a copy with a small window).
- Requests: gnomon's requests for every made-up row are the ones lm-eval builds from its own
  task YAML pointed at the same rows as JSONL.
- Metrics: from the same engine numbers (or the same generated texts), gnomon's per-sample
  items and corpus aggregations equal lm-eval's process_results and aggregation functions.
- A run end to end through the CLI, and the ways these benchmarks refuse what they cannot do.
"""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path
from typing import Any

import lm_eval
import pytest
import yaml
from gnomon_cli import gnomon, ok, summary
from lm_eval import utils as lm_utils
from lm_eval.api import metrics as lm_metrics
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager

from gnomon.engines.base import GenerateResult, RollingRequest, ScoreRequest, ScoreResult
from gnomon.engines.hf import HFEngine
from gnomon.engines.planning import rolling_windows, token_chunks
from gnomon.hub import resolve
from gnomon.rowgen import make_rows, maker
from gnomon.run import BenchPlan, plan_bench
from gnomon.scoring.aggregate import aggregate
from gnomon_testing.windows import small_window_copy

LM_EVAL_TASKS = Path(lm_eval.__file__).parent / "tasks"
BATCH_SIZE = 3
WINDOW = 48  # the small-window copy: every made-up WikiText page spans several windows
# lm-eval sums a text's token log-probabilities in float32, gnomon in float64: over hundreds of
# tokens the float32 sum alone drifts by ~1e-7 of the total
TOLERANCE = 1e-4
RELATIVE = 2e-7

BENCHES = {  # gnomon id -> (lm-eval task yaml, its splits)
    "lambada_openai": ("lambada/lambada_openai.yaml", ("test",)),
    "wikitext": ("wikitext/wikitext.yaml", ("train", "validation", "test")),
    "wmt16_de_en": ("translation/wmt16_de-en.yaml", ("train", "validation", "test")),
    "wmt16_en_de": ("translation/wmt16_en-de.yaml", ("train", "validation", "test")),
    "wmt16_ro_en": ("translation/wmt16_ro-en.yaml", ("train", "validation", "test")),
    "wmt16_en_ro": ("translation/wmt16_en-ro.yaml", ("train", "validation", "test")),
}


def _close(mine: float, theirs: float) -> bool:
    return abs(mine - theirs) <= TOLERANCE + RELATIVE * abs(theirs)


# ---------------------------------------------------------------------------- data
@pytest.fixture(scope="module")
def lang_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`<root>/<bench>/<split>.jsonl`: each benchmark's made-up rows in its real schema."""
    root = tmp_path_factory.mktemp("lang_data")
    for bench in BENCHES:
        found = maker(bench)
        assert found is not None, bench
        (root / bench).mkdir()
        for split in found.sizes:
            lines = [json.dumps(r, ensure_ascii=False) for r in make_rows(bench, split)]
            (root / bench / f"{split}.jsonl").write_text("\n".join(lines) + "\n", "utf-8")
    return root


def _plan(bench: str, data_root: Path) -> BenchPlan:
    return plan_bench(resolve(bench), data_root / bench, None, None, "lang-test")


@pytest.fixture(scope="module")
def small_window(llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Llama with a `WINDOW`-token window."""
    return small_window_copy(llama_dir, tmp_path_factory.mktemp("small") / "model", WINDOW)


# ---------------------------------------------------------------------------- rolling windows
def test_rolling_windows_are_lm_evals() -> None:
    """Every length against every window size around it: lm-eval's windows, made disjoint."""
    rng = random.Random(0)
    for n in range(0, 40):
        for window in range(1, 12):
            tokens = [rng.randrange(3, 500) for _ in range(n)]
            theirs = [
                lm_utils.make_disjoint_window(w)
                for w in lm_utils.get_rolling_token_windows(tokens, 1, window, 1)
            ]
            assert rolling_windows(tokens, 1, window) == theirs, (n, window)
    with pytest.raises(ValueError, match="at least 1"):
        rolling_windows([5, 6], 1, 0)


def test_token_chunks_bound_rows_and_tokens() -> None:
    """Long continuations (a rolling window each) run a few at a time, not four batches' worth
    of full windows at once; one longer than the budget still runs, alone."""
    sizes = [5, 1, 40, 3, 3, 3, 3, 90, 2]
    chunks = token_chunks(list(range(len(sizes))), sizes, 4, 48)
    assert [i for c in chunks for i in c] == list(range(len(sizes)))
    assert chunks == [[0, 1, 2], [3, 4, 5, 6], [7], [8]]
    assert token_chunks([], [], 4, 48) == []


def _edge_texts(model_dir: Path) -> list[str]:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    words = ["The", "river", "moves", "the", "heavy", "stone", "across", "the", "valley"]
    texts = ["", "The", " ", "The river.\n", " = Title = \n \n The river moves . \n"]
    # texts of exactly WINDOW - 1 .. WINDOW + 2 tokens (with the tokenizer's own BOS)
    wanted = set(range(WINDOW - 1, WINDOW + 3))
    for n in range(1, 400):
        text = " ".join(words[i % len(words)] for i in range(n))
        size = len(tok(text)["input_ids"])
        if size in wanted:
            texts.append(text)
            wanted.discard(size)
    assert not wanted, f"no text of {sorted(wanted)} tokens"
    if tok.bos_token:
        texts.append(tok.bos_token + " The river moves.")  # an explicit BOS: none is added
    return texts


def _rolling_agree(model_dir: Path, texts: list[str]) -> list[ScoreResult]:
    engine = HFEngine(str(model_dir), device="cpu", dtype="float32", batch_size=BATCH_SIZE)
    got: dict[int, ScoreResult] = {}
    for batch in engine.score_rolling([RollingRequest(t) for t in texts]):
        for index, result in batch:
            assert index not in got, f"text {index} answered twice"
            got[index] = result
    assert sorted(got) == list(range(len(texts)))
    lm = HFLM(pretrained=str(model_dir), device="cpu", dtype="float32", batch_size=BATCH_SIZE)
    instances = [
        Instance("loglikelihood_rolling", doc={}, arguments=(t,), idx=i)
        for i, t in enumerate(texts)
    ]
    theirs = lm.loglikelihood_rolling(instances, disable_tqdm=True)
    problems = [
        f"#{i} {texts[i][:40]!r}: gnomon {got[i].logprob:.6f} vs lm-eval {ll:.6f}"
        for i, ll in enumerate(theirs)
        if not _close(got[i].logprob, ll)
    ]
    assert not problems, "\n".join(problems)
    return [got[i] for i in range(len(texts))]


@pytest.mark.parametrize("window", ["model", "small"])
def test_rolling_loglikelihoods_match_lm_eval(
    window: str, llama_dir: Path, small_window: Path, lang_data: Path
) -> None:
    model_dir = llama_dir if window == "model" else small_window
    pages = [str(s.target) for s in _plan("wikitext", lang_data).samples]
    texts = pages + _edge_texts(model_dir)
    _rolling_agree(model_dir, texts)
    if window == "small":  # every page really spans several windows
        engine_tokens = HFEngine(str(model_dir), device="cpu", dtype="float32").encode
        assert all(len(engine_tokens(p)) > 3 * WINDOW for p in pages)


# ---------------------------------------------------------------------------- requests
def _write_task(root: Path, name: str, bench: str, data_root: Path) -> None:
    """A task that includes lm-eval's own YAML unchanged and only swaps the dataset for JSONL."""
    yaml_rel, splits = BENCHES[bench]
    config = {
        "include": str(LM_EVAL_TASKS / yaml_rel),
        "task": name,
        "dataset_path": "json",
        "dataset_name": None,
        "dataset_kwargs": {
            "data_files": {s: str(data_root / bench / f"{s}.jsonl") for s in splits},
            "cache_dir": str(root / "hf_cache"),
        },
    }
    (root / "tasks" / f"{name}.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")


@pytest.fixture(scope="module")
def lm_eval_tasks(lang_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """lm-eval's task objects over the made-up rows, keyed by gnomon benchmark id, with their
    requests built as lm-eval's evaluator builds them (0-shot, the default seed)."""
    root = tmp_path_factory.mktemp("lm_eval_lang")
    (root / "tasks").mkdir()
    names = {f"gnomon_{bench}": bench for bench in BENCHES}
    for name, bench in names.items():
        _write_task(root, name, bench, lang_data)
    manager = TaskManager(include_path=str(root / "tasks"), include_defaults=False)
    loaded = manager.load(sorted(names))["tasks"]
    assert sorted(loaded) == sorted(names)
    out = {}
    for name, bench in names.items():
        task = loaded[name]
        task.set_config(key="num_fewshot", value=0)
        task.set_fewshot_seed(seed=1234)
        task.build_all_requests()
        out[bench] = task
    return out


def _docs(task: Any) -> list[tuple[Any, list[Instance]]]:
    per_doc: dict[int, list[Instance]] = {}
    for inst in task.instances:
        per_doc.setdefault(inst.doc_id, []).append(inst)
    ordered = sorted(per_doc.items())
    return [(insts[0].doc, sorted(insts, key=lambda i: i.idx)) for _, insts in ordered]


@pytest.mark.parametrize("bench", sorted(BENCHES))
def test_requests_match_lm_eval(bench: str, lang_data: Path, lm_eval_tasks: dict) -> None:
    plan = _plan(bench, lang_data)
    docs = _docs(lm_eval_tasks[bench])
    assert len(docs) == len(plan.samples) > 0
    for sample, (doc, insts) in zip(plan.samples, docs, strict=True):
        where = f"{bench} row {sample.index}"
        (inst,) = insts
        (req,) = plan.mode.requests(sample)
        if isinstance(req, ScoreRequest):
            assert inst.request_type == "loglikelihood"
            assert inst.arguments == (req.context, req.continuation), where
        elif isinstance(req, RollingRequest):
            assert inst.request_type == "loglikelihood_rolling"
            assert inst.arguments == (req.text,), where
        else:
            assert inst.request_type == "generate_until"
            context, kwargs = inst.arguments
            assert context == req.context, where
            assert list(kwargs["until"]) == list(req.until), where
            assert kwargs.get("max_gen_toks", 256) == req.max_tokens  # 256: HFLM's default
        assert lm_eval_tasks[bench].doc_to_target(doc) == sample.target, where


# ---------------------------------------------------------------------------- metrics
def _corpus(bench: str, results: list[dict[str, Any]], metric: str) -> float:
    """gnomon's corpus value, from the items its mode wrote (as `gnomon.report` reads them)."""
    from gnomon.scoring.metrics import lookup

    found = lookup(metric)
    assert found is not None and found.kind == "corpus", metric
    if found.aggregation in ("bleu", "chrf", "ter"):
        items = [(str(r["prediction"]), [str(r["target"])]) for r in results]
    else:
        items = [r["corpus"][metric] for r in results]
    return aggregate(found.aggregation, items, n_boot=2).value


def _fake_loglikelihoods(n: int) -> list[tuple[float, bool]]:
    rng = random.Random(7)
    return [(-rng.uniform(0.01, 40.0), rng.random() < 0.4) for _ in range(n)]


def test_lambada_metrics_match_lm_eval(lang_data: Path, lm_eval_tasks: dict) -> None:
    task = lm_eval_tasks["lambada_openai"]
    plan = _plan("lambada_openai", lang_data)
    answers = _fake_loglikelihoods(len(plan.samples))
    ours = [
        plan.mode.result(s, [ScoreResult(ll, greedy)])
        for s, (ll, greedy) in zip(plan.samples, answers, strict=True)
    ]
    theirs = [
        task.process_results(doc, [(ll, greedy)])
        for (doc, _), (ll, greedy) in zip(_docs(task), answers, strict=True)
    ]
    assert [r["metrics"]["acc"] for r in ours] == [t["acc"] for t in theirs]
    assert [r["corpus"]["perplexity"] for r in ours] == [t["perplexity"] for t in theirs]
    assert len({t["acc"] for t in theirs}) == 2  # greedy and not: acc can disagree
    want = lm_metrics.perplexity([t["perplexity"] for t in theirs])
    assert _corpus("lambada_openai", ours, "perplexity") == pytest.approx(want, rel=1e-12)
    assert "perplexity" not in ours[0]["metrics"]  # a corpus value, never a per-sample mean


def test_wikitext_metrics_match_lm_eval(lang_data: Path, lm_eval_tasks: dict) -> None:
    task = lm_eval_tasks["wikitext"]
    plan = _plan("wikitext", lang_data)
    answers = [-abs(ll) * 30 for ll, _ in _fake_loglikelihoods(len(plan.samples))]
    ours = [
        plan.mode.result(s, [ScoreResult(ll, False)])
        for s, ll in zip(plan.samples, answers, strict=True)
    ]
    theirs = [
        task.process_results(doc, [ll]) for (doc, _), ll in zip(_docs(task), answers, strict=True)
    ]
    for name, agg in (
        ("word_perplexity", lm_metrics.weighted_perplexity),
        ("byte_perplexity", lm_metrics.weighted_perplexity),
        ("bits_per_byte", lm_metrics.bits_per_byte),
    ):
        items = [t[name] for t in theirs]
        assert [tuple(r["corpus"][name]) for r in ours] == [tuple(i) for i in items], name
        assert _corpus("wikitext", ours, name) == pytest.approx(agg(items), rel=1e-12), name
    # the words are counted on the page as published, not on the detokenised text scored
    sample = plan.samples[0]
    assert ours[0]["words"] == len(re.split(r"\s+", sample.context))
    assert ours[0]["words"] != len(re.split(r"\s+", str(sample.target)))


def test_translation_metrics_match_lm_eval(lang_data: Path, lm_eval_tasks: dict) -> None:
    task = lm_eval_tasks["wmt16_de_en"]
    plan = _plan("wmt16_de_en", lang_data)
    rng = random.Random(3)
    outputs = []
    for sample in plan.samples:  # exact, partly right, wrong, empty, with stray spaces
        words = str(sample.target).split()
        pick = rng.randrange(4)
        if pick == 0:
            outputs.append(str(sample.target))
        elif pick == 1:
            outputs.append(" " + " ".join(w for w in words if rng.random() < 0.6) + "  ")
        elif pick == 2:
            outputs.append(" Die Brücke hält.")
        else:
            outputs.append("")
    ours = [
        plan.mode.result(s, [GenerateResult(o)]) for s, o in zip(plan.samples, outputs, strict=True)
    ]
    theirs = [
        task.process_results(doc, [o]) for (doc, _), o in zip(_docs(task), outputs, strict=True)
    ]
    aggregations = (("bleu", lm_metrics.bleu), ("chrf", lm_metrics.chrf), ("ter", lm_metrics.ter))
    for name, agg in aggregations:
        want = agg([t[name] for t in theirs])
        assert _corpus("wmt16_de_en", ours, name) == pytest.approx(want, abs=1e-9), name
    assert 0 < lm_metrics.bleu([t["bleu"] for t in theirs]) < 100  # not a degenerate corpus


@pytest.mark.parametrize("bench", ["lambada_openai", "wikitext", "wmt16_de_en"])
def test_metrics_point_the_way_lm_eval_says(bench: str, lm_eval_tasks: dict) -> None:
    from gnomon.scoring.metrics import lookup

    theirs = lm_eval_tasks[bench].higher_is_better()
    for name in resolve(bench).metrics:
        found = lookup(name)
        assert found is not None
        assert found.higher_is_better == theirs[name], name


def test_perplexity_aggregations_refuse_bad_items() -> None:
    with pytest.raises(ValueError, match="item 1: the loglikelihood must be a number"):
        aggregate("perplexity", [-1.0, "x"])
    with pytest.raises(ValueError, match=r"item 0: expected a \(loglikelihood, count\) pair"):
        aggregate("weighted_perplexity", [-1.0])
    with pytest.raises(ValueError, match="item 0: the count must be a number >= 0"):
        aggregate("bits_per_byte", [(-1.0, -3)])
    score = aggregate("weighted_perplexity", [(-2.0, 4), (-6.0, 4)])
    assert score.value == pytest.approx(math.exp(1.0))
    assert score.ci_low <= score.value <= score.ci_high


# ---------------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_run_end_to_end(
    small_window: Path, llama_dir: Path, lang_data: Path, tmp_path: Path
) -> None:
    """Through the CLI on the tiny model: WikiText over many windows equals lm-eval's
    numbers aggregated by lm-eval; a second run reuses every score without the model."""
    store, out = tmp_path / "store.sqlite", tmp_path / "out"
    args = ["--data", lang_data, "--store", store, "--device", "cpu", "--dtype", "float32"]
    proc = ok(gnomon("run", "--model", f"hf:{small_window}", "--bench", "wikitext", *args,
                     "--out", out))  # fmt: skip
    assert summary(proc.stdout) == (6, 0, 6)
    got = json.loads((out / "results.json").read_text())["benchmarks"]["wikitext"]
    lm = HFLM(pretrained=str(small_window), device="cpu", dtype="float32", batch_size=BATCH_SIZE)
    rows = make_rows("wikitext", "test")
    plan = _plan("wikitext", lang_data)
    texts = [(str(s.target),) for s in plan.samples]
    lls = lm.loglikelihood_rolling(
        [Instance("loglikelihood_rolling", {}, t, i) for i, t in enumerate(texts)],
        disable_tqdm=True,
    )
    words = [(ll, len(re.split(r"\s+", r["page"]))) for ll, r in zip(lls, rows, strict=True)]
    n_bytes = [(ll, len(r["page"].encode("utf-8"))) for ll, r in zip(lls, rows, strict=True)]
    metrics = got["metrics"]
    assert got["headline"] == "word_perplexity"
    want_words = lm_metrics.weighted_perplexity(words)
    assert metrics["word_perplexity"]["value"] == pytest.approx(want_words, rel=1e-5)
    assert metrics["byte_perplexity"]["value"] == pytest.approx(
        lm_metrics.weighted_perplexity(n_bytes), rel=1e-5
    )
    assert metrics["bits_per_byte"]["value"] == pytest.approx(
        lm_metrics.bits_per_byte(n_bytes), rel=1e-5
    )
    benches = "lambada_openai,wmt16_de_en,wmt16_en_ro"
    proc = ok(gnomon("run", "--model", f"hf:{llama_dir}", "--bench", benches, *args,
                     "--limit", 4, "--out", out))  # fmt: skip
    assert summary(proc.stdout) == (12, 0, 12)
    got = json.loads((out / "results.json").read_text())["benchmarks"]
    assert set(got["lambada_openai"]["metrics"]) == {"perplexity", "acc"}
    assert got["lambada_openai"]["metrics"]["perplexity"]["value"] > 1
    assert set(got["wmt16_de_en"]["metrics"]) == {"bleu", "ter", "chrf"}
    again = ok(gnomon("run", "--model", f"hf:{small_window}", "--bench", "wikitext", *args))
    assert summary(again.stdout) == (6, 6, 0)
    assert "loading" not in again.stderr + again.stdout


def test_what_these_benchmarks_refuse(lang_data: Path, tmp_path: Path, llama_dir: Path) -> None:
    store = tmp_path / "store.sqlite"
    served = gnomon("run", "--model", "openai:some-model", "--base-url", "http://127.0.0.1:9",
                    "--bench", "wikitext", "--data", lang_data, "--store", store)  # fmt: skip
    assert served.returncode == 2 and "Traceback" not in served.stderr
    assert "error: wikitext scores whole texts" in served.stderr
    shots = gnomon("run", "--model", f"hf:{llama_dir}", "--bench", "wikitext", "--shots", "2",
                   "--data", lang_data, "--store", store)  # fmt: skip
    assert shots.returncode == 2 and "takes no few-shot examples" in shots.stderr
    answers = tmp_path / "answers.jsonl"
    answers.write_text(json.dumps({"sample_id": "0", "output": "Lena"}) + "\n")
    scored = gnomon("score", "--bench", "lambada_openai", answers, "--data", lang_data,
                    "--store", store)  # fmt: skip
    assert scored.returncode == 2 and "scored from log-probabilities" in scored.stderr
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "test.jsonl").write_text(json.dumps({"page": 3}) + "\n")
    wrong = gnomon("run", "--model", f"hf:{llama_dir}", "--bench", "wikitext", "--data", bad,
                   "--store", store)  # fmt: skip
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
    assert "cannot prepare row" in wrong.stderr and "loading" not in wrong.stderr
