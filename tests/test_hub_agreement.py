"""Every hub benchmark that names an lm-evaluation-harness task is that task, proven per request.

One harness for all of them: for each spec with `reference: lm-eval:TASK` and a row maker
(`gnomon.rowgen`), it writes made-up rows in the dataset's real schema, builds lm-eval's requests
from lm-eval's own YAML over the same rows (tests/lm_eval_bridge.py), and requires, per document:
- the same requests: identical context and continuation strings, stop sequences and token limit,
  the same number of shots where lm-eval's YAML fixes it, and the same gold target;
- the same loglikelihoods from the tiny model (gnomon's engine vs lm-eval's `hf` backend, 1e-4);
- the same metric values when both score the same answers: the loglikelihoods above for scored
  requests; for generated ones, the same candidate texts through lm-eval's filters and
  process_results and through gnomon's extraction and metrics.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from lm_eval_bridge import LmEvalTask, build_tasks, score_logliks, score_texts, task_name

from gnomon.data import Row, prepare_split
from gnomon.engines.base import (
    GenerateRequest,
    GenerateResult,
    RollingRequest,
    ScoreRequest,
    ScoreResult,
)
from gnomon.hub import all_specs
from gnomon.hub.spec import BenchmarkSpec
from gnomon.pipeline.plan import BenchPlan, plan_bench
from gnomon.prompts import Renderer, Sample
from gnomon.report import corpus_metrics
from gnomon.rowgen import make_rows, maker
from gnomon.scoring.metrics import lookup

TOLERANCE = 1e-4
# lm-eval sums token loglikelihoods in float32, gnomon in float64: over hundreds of tokens (a
# whole text, a sentence the tiny tokenizer spells byte by byte) float32's rounding alone drifts
# by ~1e-7 of the total, so the tolerance grows with it
RELATIVE = 2e-7
LOGLIK_CHECKS = 16  # requests per benchmark whose loglikelihoods both engines compute
LM_EVAL_MAX_GEN_TOKS = 256  # lm-eval's default `max_gen_toks` (HFLM)


def _referenced() -> list[str]:
    return [
        spec.id
        for spec in all_specs()
        if spec.reference
        and spec.reference.startswith("lm-eval:")
        and spec.mode != "code"  # lm-eval scores code with `code_eval`, a script on the HF hub
        and maker(spec.id) is not None
    ]


def test_every_lm_eval_reference_is_checked() -> None:
    """A spec that names an lm-eval task but has no rows to prove it on is a claim unproven."""
    unproven = [
        spec.id
        for spec in all_specs()
        if spec.reference
        and spec.reference.startswith("lm-eval:")
        and spec.mode != "code"  # code benchmarks are proven by the sandbox's own tests
        and maker(spec.id) is None
    ]
    assert not unproven, f"no row maker (gnomon.rowgen) for {unproven}"
    assert len(_referenced()) >= 5


# ---------------------------------------------------------------------------- engines
@pytest.fixture(scope="module")
def engines(llama_dir: Path) -> tuple[Any, Any]:
    from lm_eval.models.huggingface import HFLM

    from gnomon.engines.hf import HFEngine

    ours = HFEngine(str(llama_dir), device="cpu", dtype="float32", batch_size=8)
    theirs = HFLM(pretrained=str(llama_dir), device="cpu", dtype="float32", batch_size=8)
    return ours, theirs


def _gnomon_scores(engine: Any, requests: list[ScoreRequest]) -> list[ScoreResult]:
    got: dict[int, ScoreResult] = {}
    for batch in engine.score(requests):
        for index, result in batch:
            got[index] = result
    return [got[i] for i in range(len(requests))]


def _lm_eval_scores(lm: Any, requests: list[ScoreRequest]) -> list[tuple[float, bool]]:
    from lm_eval.api.instance import Instance

    instances = [
        Instance(request_type="loglikelihood", doc={}, arguments=(r.context, r.continuation), idx=i)
        for i, r in enumerate(requests)
    ]
    return lm.loglikelihood(instances, disable_tqdm=True)


# ---------------------------------------------------------------------------- the two sides
class Case:
    """One benchmark's rows, gnomon's plan over them and lm-eval's tasks over the same rows."""

    def __init__(self, spec: BenchmarkSpec, root: Path) -> None:
        self.spec = spec
        found = maker(spec.id)
        assert found is not None
        data = root / "data" / spec.id
        data.mkdir(parents=True)
        self.rows: dict[str, list[dict[str, Any]]] = {}
        for split in found.sizes:
            self.rows[split] = make_rows(spec.id, split)
            (data / f"{split}.jsonl").write_text(
                "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in self.rows[split]),
                encoding="utf-8",
            )
        self.plan: BenchPlan = plan_bench(spec, root / "data", None, None, "agreement")
        if spec.source.splits_are_subsets:  # MuSR: each subset is a split, its rows tagged
            field = spec.source.subset_field
            eval_rows = [{field: s, **r} for s in spec.source.subsets or () for r in self.rows[s]]
        else:
            eval_rows = self.rows[spec.source.eval_split]
        self.eval_rows = eval_rows
        fewshot_rows = self.rows.get(spec.fewshot.split or "", []) if self.plan.shots else []
        assert spec.reference is not None
        self.tasks = build_tasks(
            spec.reference, eval_rows, fewshot_rows, self.plan.shots, spec.fewshot.seed, root / "lm"
        )
        # gnomon's samples in row order, each paired with its lm-eval task and document
        self.pairs: list[tuple[Sample, LmEvalTask, int]] = []
        position: dict[str, int] = {}
        for sample in self.plan.samples:
            name = task_name(spec.reference, eval_rows[sample.index])
            k = position.get(name, 0)
            position[name] = k + 1
            self.pairs.append((sample, self.tasks[name], k))
        for name, task in self.tasks.items():
            assert position.get(name, 0) == len(task.docs), (
                f"{name}: gnomon has {position.get(name, 0)} samples, lm-eval {len(task.docs)} docs"
            )

    def shot_answer(self, index: int) -> str:
        """The row's answer as a worked example shows it: the text a model imitates."""
        renderer = Renderer(self.spec, self.plan.shots)
        # the split's rows prepared as a run prepares them (filters, split hooks), then this one
        rows = [Row(i, r, f"made-up[{i}]") for i, r in enumerate(self.eval_rows)]
        (row,) = [r for r in prepare_split(self.spec, rows) if r.index == index]
        return renderer.shot_parts(row)[1]


def _case(bench: str, root: Path) -> Case:
    spec = next(s for s in all_specs() if s.id == bench)
    return Case(spec, root)


def _compare_requests(case: Case) -> list[str]:
    problems: list[str] = []
    for sample, task, k in case.pairs:
        ours = list(case.plan.mode.requests(sample))
        doc, insts = task.docs[k]
        where = f"{task.name} doc {k} (row {sample.index})"
        if len(ours) != len(insts):
            problems.append(f"{where}: {len(ours)} requests vs lm-eval's {len(insts)}")
            continue
        for req, inst in zip(ours, insts, strict=True):
            args = inst.arguments
            if isinstance(req, ScoreRequest):
                if inst.request_type != "loglikelihood":
                    problems.append(f"{where}: scored, lm-eval asks {inst.request_type}")
                elif (req.context, req.continuation) != tuple(args):
                    problems.append(
                        f"{where}: request differs\n  gnomon:  {(req.context, req.continuation)!r}"
                        f"\n  lm-eval: {tuple(args)!r}"
                    )
            elif isinstance(req, GenerateRequest):
                context, gen_kwargs = args
                until = gen_kwargs.get("until", [])
                until = [until] if isinstance(until, str) else list(until)
                max_toks = gen_kwargs.get("max_gen_toks", LM_EVAL_MAX_GEN_TOKS)
                if inst.request_type != "generate_until":
                    problems.append(f"{where}: generated, lm-eval asks {inst.request_type}")
                elif req.context != context:
                    problems.append(
                        f"{where}: prompt differs\n  gnomon:  {req.context!r}\n"
                        f"  lm-eval: {context!r}"
                    )
                elif list(req.until) != until or req.max_tokens != max_toks:
                    problems.append(
                        f"{where}: until/max tokens {list(req.until)}/{req.max_tokens} vs "
                        f"lm-eval's {until}/{max_toks}"
                    )
            elif isinstance(req, RollingRequest):
                if inst.request_type != "loglikelihood_rolling":
                    problems.append(f"{where}: a whole text, lm-eval asks {inst.request_type}")
                elif (req.text,) != tuple(args):
                    problems.append(
                        f"{where}: text differs\n  gnomon:  {req.text[:200]!r}\n"
                        f"  lm-eval: {args[0][:200]!r}"
                    )
            else:
                problems.append(f"{where}: the harness does not know {type(req).__name__}")
        generated = task.task.config.output_type == "generate_until"
        if generated and callable(task.task.config.process_results):
            continue  # its own scorer reads the gold (DROP): the metrics below compare it
        gold = task.task.doc_to_target(doc)
        if task.task.multiple_input:  # choices are contexts: doc_to_text gives the gold index
            gold = task.task.doc_to_text(doc)
        if sample.choices and isinstance(gold, str) and task.task.config.doc_to_choice:
            choices = task.task.doc_to_choice(doc)
            gold = choices.index(gold) if gold in choices else gold
        if isinstance(gold, list) and len(gold) == 1 and not isinstance(sample.target, list):
            gold = gold[0]
        if sample.target != gold and str(sample.target) != str(gold):
            problems.append(f"{where}: target {sample.target!r} vs lm-eval's {gold!r}")
    return problems


def _same(a: Any, b: Any) -> bool:
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    except (TypeError, ValueError):
        return a == b


def _compare_metrics(
    ours: dict[str, Any], theirs: dict[str, Any], keys: dict[str, str], where: str
) -> tuple[int, list[str]]:
    """`keys`: lm-eval metric name -> gnomon's key for it. Values that lm-eval aggregates over the
    corpus (tuples: bleu, perplexity items) are compared by the corpus tests, not here."""
    compared, problems = 0, []
    for metric, value in theirs.items():
        key = keys.get(metric, metric)
        if key not in ours or isinstance(value, tuple | list | dict):
            continue
        compared += 1
        if not _same(ours[key], value):
            problems.append(f"{where}: {key} = {ours[key]!r}, lm-eval's {metric} = {value!r}")
    return compared, problems


def _scored_keys(spec: BenchmarkSpec) -> dict[str, str]:
    """lm-eval's truthfulqa_mc2 reports the true answers' probability mass under the name `acc`;
    gnomon calls it `mc2` (its `acc` is the argmax's)."""
    return {"acc": "mc2"} if "mc2" in spec.metrics else {}


def _compare_corpus(
    case: Case, task: Any, ours: list[dict[str, Any]], theirs: list[dict[str, Any]]
) -> tuple[int, list[str]]:
    """Corpus metrics (lm-eval's per-doc items and its aggregation over them): each item a mode
    writes (`corpus`) equals lm-eval's, and gnomon's corpus value over the results (as its
    reports compute it) equals lm-eval's aggregation of its own items."""
    compared, problems = 0, []
    aggregations = task.task.aggregation()
    spec = case.spec.model_dump()
    values = corpus_metrics(spec, ours)
    for name in case.spec.metrics:
        found = lookup(name)
        if found is None or found.kind != "corpus" or name not in aggregations:
            continue
        items = [t[name] for t in theirs]
        for i, (mine, item) in enumerate(zip(ours, items, strict=True)):
            given = (mine.get("corpus") or {}).get(name)
            if given is None:
                continue
            same = (
                all(_same(a, b) for a, b in zip(given, item, strict=True))
                if isinstance(item, tuple | list)
                else _same(given, item)
            )
            if not same:
                problems.append(f"{task.name} doc {i}: {name} item {given!r} vs lm-eval {item!r}")
        want = aggregations[name](items)
        got = values[name].value
        compared += 1
        if not math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9):
            problems.append(f"{task.name}: corpus {name} = {got!r}, lm-eval's = {want!r}")
    return compared, problems


def _check_rolling(case: Case, engines: tuple[Any, Any]) -> tuple[int, list[str]]:
    """Whole texts: the engine's rolling loglikelihoods are HFLM's, and both scorers turn the
    same numbers into the same corpus metrics."""
    from lm_eval.api.instance import Instance

    ours_engine, lm = engines
    requests = [r for s, _, _ in case.pairs for r in case.plan.mode.requests(s)]
    assert all(isinstance(r, RollingRequest) for r in requests)
    got: dict[int, ScoreResult] = {}
    for batch in ours_engine.score_rolling(requests):
        for index, result in batch:
            got[index] = result
    instances = [
        Instance("loglikelihood_rolling", doc={}, arguments=(r.text,), idx=i)
        for i, r in enumerate(requests)
    ]
    theirs_lls = lm.loglikelihood_rolling(instances, disable_tqdm=True)
    problems = [
        f"text {i}: rolling loglikelihood {got[i].logprob:.6f} vs lm-eval {ll:.6f}"
        for i, ll in enumerate(theirs_lls)
        if abs(got[i].logprob - ll) > TOLERANCE + RELATIVE * abs(ll)
    ]
    compared = 0
    for task in case.tasks.values():
        mine = [(s, got[i]) for i, (s, t, _) in enumerate(case.pairs) if t is task]
        scored = score_logliks(task, [[r.logprob] for _, r in mine])  # type: ignore[list-item]
        results = [case.plan.mode.result(s, [r]) for s, r in mine]
        n, bad = _compare_corpus(case, task, results, scored)
        compared += n
        problems += bad
    return compared, problems


def _check_scored(case: Case, engines: tuple[Any, Any]) -> tuple[int, list[str]]:
    ours_engine, lm = engines
    requests = [r for s, _, _ in case.pairs for r in case.plan.mode.requests(s)]
    assert all(isinstance(r, ScoreRequest) for r in requests)
    results = _gnomon_scores(ours_engine, requests)
    step = max(1, len(requests) // LOGLIK_CHECKS)
    picked = list(range(0, len(requests), step))[:LOGLIK_CHECKS]
    theirs = _lm_eval_scores(lm, [requests[i] for i in picked])
    problems = [
        f"request {i}: loglikelihood {results[i].logprob:.6f} vs lm-eval {ll:.6f}"
        for i, (ll, greedy) in zip(picked, theirs, strict=True)
        if abs(results[i].logprob - ll) > TOLERANCE + RELATIVE * abs(ll)
        or results[i].is_greedy != greedy
    ]
    # the same numbers through both scorers
    per_sample: list[list[ScoreResult]] = []
    at = 0
    for sample, _, _ in case.pairs:
        n = len(case.plan.mode.requests(sample))
        per_sample.append(results[at : at + n])
        at += n
    compared = 0
    for name, task in case.tasks.items():
        mine = [(s, r) for (s, t, _), r in zip(case.pairs, per_sample, strict=True) if t is task]
        scored = score_logliks(task, [[(r.logprob, r.is_greedy) for r in rs] for _, rs in mine])
        results = []
        for (sample, answers), theirs_metrics in zip(mine, scored, strict=True):
            results.append(case.plan.mode.result(sample, list(answers)))
            n, bad = _compare_metrics(
                results[-1]["metrics"],
                theirs_metrics,
                _scored_keys(case.spec),
                f"{name} row {sample.index}",
            )
            compared += n
            problems += bad
        n, bad = _compare_corpus(case, task, results, scored)
        compared += n
        problems += bad
    return compared, problems


def _candidates(case: Case) -> list[list[str]]:
    """Texts a model could write, each a full set of outputs (one per sample): the answer as the
    few-shot examples write it, the bare target, another row's answer, nothing, a refusal."""
    samples = [s for s, _, _ in case.pairs]
    n = len(samples)
    own = [case.shot_answer(s.index) for s in samples]
    bare = [
        str(s.target[0] if isinstance(s.target, list) and s.target else s.target) for s in samples
    ]
    return [
        [" " + a for a in own],
        own,
        [" " + b for b in bare],
        [" " + own[(i + 1) % n] for i in range(n)],
        [""] * n,
        [" I cannot answer that."] * n,
    ]


def _check_generated(case: Case) -> tuple[int, list[str]]:
    compared, problems = 0, []
    extractors = [e.name for e in case.spec.extract if e.kind != "judge"]
    for outputs in _candidates(case):
        by_sample = dict(zip([id(s) for s, _, _ in case.pairs], outputs, strict=True))
        for name, task in case.tasks.items():
            mine = [s for s, t, _ in case.pairs if t is task]
            scored = score_texts(task, [by_sample[id(s)] for s in mine])
            results = [
                case.plan.mode.result(sample, [GenerateResult(by_sample[id(sample)])])
                for sample in mine
            ]
            first = [next(iter(per_filter.values())) for per_filter in scored]
            n, bad = _compare_corpus(case, task, results, first)
            compared += n
            problems += bad
            for sample, per_filter, ours in zip(mine, scored, results, strict=True):
                for k, (filter_name, theirs) in enumerate(per_filter.items()):
                    if k and k >= len(extractors):
                        break
                    keys = {m: m if k == 0 else f"{m}_{extractors[k]}" for m in theirs}
                    where = f"{name} row {sample.index} filter {filter_name} output " + repr(
                        by_sample[id(sample)][:60]
                    )
                    n, bad = _compare_metrics(ours["metrics"], theirs, keys, where)
                    compared += n
                    problems += bad
    return compared, problems


# ---------------------------------------------------------------------------- the test
@pytest.mark.parametrize("bench", _referenced())
def test_benchmark_matches_lm_eval(bench: str, tmp_path: Path, engines: tuple[Any, Any]) -> None:
    case = _case(bench, tmp_path)
    fixed = {t.num_fewshot for t in case.tasks.values() if t.num_fewshot is not None}
    assert fixed <= {case.plan.shots}, (
        f"lm-eval's YAML sets {fixed} shots, gnomon {case.plan.shots}"
    )
    problems = _compare_requests(case)
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:12])
    if case.plan.mode.verb == "score":
        compared, problems = _check_scored(case, engines)
    elif case.plan.mode.verb == "rolling":
        compared, problems = _check_rolling(case, engines)
    else:
        compared, problems = _check_generated(case)
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:12])
    assert compared > 0, "no metric of gnomon's is one lm-eval computes: nothing was compared"
