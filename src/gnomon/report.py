"""Scores of a run, computed from the store alone, and the files `--out` writes."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gnomon import text
from gnomon.judge_info import Reliability, judge_prompt_hash, judge_sampling, reliability
from gnomon.stats import Moments, Score, summarize_moments
from gnomon.store import Store


@dataclass
class BenchReport:
    bench: str
    version: int
    prompt_hash: str
    shots: int
    planned: int
    done: int
    truncated: int
    metrics: dict[str, Score]
    clusters: dict[str, dict[str, Score]] = field(
        default_factory=dict
    )  # metric -> cluster -> score
    cluster_by: str | None = None
    headline: str | None = None  # the metric this run reports, one it produced
    headline_note: str | None = None  # why it is not the spec's headline
    judge: str | None = None  # the judge's model key
    no_answer: int = 0  # generations with nothing to extract, scored as wrong
    cut_at_max_tokens: int = 0  # generations that ran out of their token budget
    normalised: float | None = None  # the Open LLM Leaderboard's, where the spec has a baseline
    judge_name: str | None = None  # the judge as the run was given it (`openai:gpt-4o`)
    judge_prompt_hash: str | None = None  # `judge_info.judge_prompt_hash` of the spec
    judge_sampling: str | None = None  # `judge_info.judge_sampling`: K ratings at a temperature
    judge_reliability: Reliability | None = None  # position flips, or the rating spread

    @property
    def complete(self) -> bool:
        return self.done >= self.planned

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": self.version,
            "prompt_hash": self.prompt_hash,
            "shots": self.shots,
            "n": self.done,
            "planned": self.planned,
            "complete": self.complete,
            "truncated": self.truncated,
            "no_answer": self.no_answer,
            "cut_at_max_tokens": self.cut_at_max_tokens,
            "headline": self.headline,
            "metrics": {name: _score_dict(s) for name, s in self.metrics.items()},
        }
        if self.headline_note:
            out["headline_note"] = self.headline_note
        if self.judge:
            out["judge"] = self.judge
            out["judge_name"] = self.judge_name or self.judge
            out["judge_prompt_hash"] = self.judge_prompt_hash
            if self.judge_sampling:  # only where the judge samples: others read as before
                out["judge_sampling"] = self.judge_sampling
            out["judge_reliability"] = (
                self.judge_reliability.as_dict() if self.judge_reliability else None
            )
        if self.normalised is not None:
            out["normalised"] = self.normalised
        if self.clusters:
            out["cluster_by"] = self.cluster_by
            out["clusters"] = {
                metric: {c: _score_dict(s) for c, s in per.items()}
                for metric, per in self.clusters.items()
            }
        return out


def _clean(x: float) -> float | None:
    return None if isinstance(x, float) and math.isnan(x) else x


def _score_dict(score: Score) -> dict[str, Any]:
    return {
        "value": _clean(score.value),
        "stderr": _clean(score.stderr),
        "ci95": [_clean(score.ci_low), _clean(score.ci_high)],
        "n": score.n,
        "n_clusters": score.n_clusters,
        "method": score.method,
    }


def produced_headline(wanted: str, spec: dict[str, Any], metrics: dict[str, Any]) -> str:
    """The metric a run reports: `wanted` when the run produced it, else the first of its spec's
    metrics it did produce (a run stored before headlines were recorded, answered by generation,
    has `acc` where its benchmark's headline is `acc_norm`)."""
    if wanted in metrics or not metrics:
        return wanted
    return next((m for m in spec.get("metrics", []) if m in metrics), min(metrics))


def scores_from_moments(
    rows: list[dict[str, Any]], cluster_by: str | None
) -> tuple[dict[str, Score], dict[str, dict[str, Score]]]:
    """A benchmark's scores (and per-cluster scores when it clusters) from its moments rows."""
    by_metric: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_metric[row["metric"]].append(row)
    metrics: dict[str, Score] = {}
    per_cluster: dict[str, dict[str, Score]] = {}
    for name, groups in by_metric.items():
        binary = not any(g["nonbinary"] for g in groups)
        moments = [Moments(g["n"], g["total"], g["total_sq"]) for g in groups]
        if cluster_by:
            metrics[name] = summarize_moments(moments, binary, clustered=True)
            per_cluster[name] = {
                str(g["cluster"]): summarize_moments([m], binary, clustered=False)
                for g, m in sorted(
                    zip(groups, moments, strict=True), key=lambda gm: str(gm[0]["cluster"])
                )
            }
        else:
            metrics[name] = summarize_moments(moments, binary, clustered=False)
    return metrics, per_cluster


def corpus_scores(store: Store, run_id: str, bench: str, spec: dict[str, Any]) -> dict[str, Score]:
    """Corpus-level metrics (BLEU, chrF, corpus F1, perplexities) of a benchmark in a run. They
    have no per-sample value, so they are read from the samples rather than the moments."""
    return corpus_metrics(spec, store.samples(run_id, bench))


def corpus_metrics(spec: dict[str, Any], samples: Iterable[dict[str, Any]]) -> dict[str, Score]:
    """The spec's corpus metrics over all its samples' results at once, with a bootstrap
    interval: from each sample's prediction and references, or from the item its mode wrote
    for the metric (`corpus`, as lm-evaluation-harness's process_results gives a
    loglikelihood and its word count)."""
    from gnomon.scoring.metrics import lookup

    wanted = [m for m in spec.get("metrics", []) if (found := lookup(m)) and found.kind == "corpus"]
    if not wanted:
        return {}
    from gnomon.scoring.aggregate import aggregate  # sacreBLEU: only when a corpus metric is due

    items, labels, clusters = [], [], []
    given: dict[str, list[Any]] = defaultdict(list)  # items a mode wrote per metric
    for sample in samples:
        target, prediction = sample.get("target"), sample.get("prediction")
        references = target if isinstance(target, list) else [str(target)]
        items.append((str(prediction), references))
        labels.append((prediction, target))  # labels as the mode wrote them (choice: indexes)
        clusters.append(sample.get("cluster"))
        corpus = sample.get("corpus")
        for name, item in corpus.items() if isinstance(corpus, dict) else ():
            given[name].append(item)
    by_cluster = clusters if spec.get("cluster_by") else None
    out = {}
    for name in wanted:
        metric = lookup(name)
        assert metric is not None
        if name in given and len(given[name]) == len(items):
            out[name] = aggregate(metric.aggregation, given[name], by_cluster)
        elif name in ("corpus_f1", "macro_f1"):
            out[name] = aggregate(metric.aggregation, labels, by_cluster)
        elif metric.aggregation in ("bleu", "chrf", "ter"):
            out[name] = aggregate(metric.aggregation, items, by_cluster)
    return out


def position_flips(metrics: dict[str, Score]) -> dict[str, Score]:
    """A pairwise judge's reliability, `position_flip_rate`: the share of questions whose
    verdict changes when the two answers swap places (1 - position_consistency, its interval
    mirrored), shown beside the score it qualifies."""
    consistent = metrics.get("position_consistency")
    if consistent is None:
        return {}
    flipped = replace(
        consistent,
        value=1.0 - consistent.value,
        ci_low=1.0 - consistent.ci_high,
        ci_high=1.0 - consistent.ci_low,
    )
    return {"position_flip_rate": flipped}


def bench_reports(store: Store, run_id: str) -> list[BenchReport]:
    """Scores are aggregated in SQL (Store.moments), so a report costs the same whether the run
    holds a hundred samples or a hundred thousand."""
    moments: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in store.moments([run_id]):
        moments[row["bench"]].append(row)
    truncated = store.truncated_counts(run_id)
    no_answer = store.no_answer_counts(run_id)
    cut = store.cut_counts(run_id)
    reports = []
    specs: dict[str, dict[str, Any]] = {}
    for bench in store.run_benches(run_id):
        spec = specs[bench["bench"]] = bench["spec"]
        cluster_by = spec.get("cluster_by")
        metrics, per_cluster = scores_from_moments(moments[bench["bench"]], cluster_by)
        metrics |= corpus_scores(store, run_id, bench["bench"], spec)
        metrics |= position_flips(metrics)
        order = {name: i for i, name in enumerate(spec.get("metrics", []))}
        metrics = dict(sorted(metrics.items(), key=lambda kv: (order.get(kv[0], 99), kv[0])))
        reports.append(
            BenchReport(
                bench["bench"],
                bench["bench_version"],
                bench["prompt_hash"],
                bench["shots"],
                bench["planned"],
                bench["done"],
                truncated.get(bench["bench"], 0),
                metrics,
                per_cluster,
                cluster_by,
                produced_headline(
                    bench.get("headline") or spec.get("headline") or spec["metrics"][0],
                    spec,
                    metrics,
                ),
                bench.get("headline_note"),
                bench.get("judge"),
                no_answer.get(bench["bench"], 0),
                cut.get(bench["bench"], 0),
            )  # fmt: skip
        )
    judge_name = None
    if any(r.judge for r in reports):
        judge_name = (store.run(run_id)["config"] or {}).get("judge")
    for report in reports:
        report.normalised = _normalised(report, specs[report.bench])
        if report.judge:
            report.judge_name = judge_name or report.judge
            report.judge_prompt_hash = judge_prompt_hash(specs[report.bench])
            report.judge_sampling = judge_sampling(specs[report.bench])
            report.judge_reliability = reliability(report.metrics)
    return reports


def _normalised(report: BenchReport, spec: dict[str, Any]) -> float | None:
    """The headline rescaled from the spec's random baseline (`gnomon.scoring.normalised`)."""
    baseline = spec.get("baseline")
    score = report.metrics.get(report.headline or "")
    if baseline is None or score is None:
        return None
    from gnomon.scoring.normalised import normalised_score

    clusters = {c: s.value for c, s in report.clusters.get(report.headline or "", {}).items()}
    return normalised_score(baseline, score.value, clusters)


def write_outputs(store: Store, run_id: str, out_dir: Path, reports: list[BenchReport]) -> None:
    """`results.json` (scores with intervals) and `samples.jsonl` (one line per sample)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    run = store.run(run_id)
    results = {
        "run_id": run_id,
        "model": run["model"],
        "model_key": run["model_key"],
        "status": run["status"],
        "gnomon_version": run["gnomon_version"],
        "store": str(store.path),
        "config": run["config"],
        "engine": run["engine"],
        "benchmarks": {r.bench: r.as_dict() for r in reports},
    }
    failures = store.failures(run_id)
    if failures:  # unscored samples and why (a judgment that failed: the judge's raw replies)
        results["failures"] = failures
    (out_dir / "results.json").write_text(text.dumps(results, indent=2) + "\n", encoding="utf-8")
    tmp = out_dir / "samples.jsonl.tmp"
    with tmp.open("w", encoding="utf-8") as handle:
        for sample in store.samples(run_id):
            line = {
                "benchmark": sample["bench"],
                "sample_id": sample["sample_id"],
                "index": sample["index"],
                "prediction": sample["prediction"],
                "target": sample["target"],
                "correct": sample["correct"],
                "metrics": sample["metrics"],
                "prompt_hash": sample["prompt_hash"],
                "truncated": sample.get("truncated", False),
            }
            for extra in (
                "choice_logprobs",
                "output",
                "extracted",
                "cluster",
                "n",
                "passed",
                "runs",
                "extractor",
                "judge_replies",
                "verdicts",
                "turn_outputs",
                "turn_questions",
                "judge_retries",
                "tool_calls",
                "error",
                "reasoning",
                "cut_at_max_tokens",
                "answers",
            ):
                if sample.get(extra) is not None:
                    line[extra] = sample[extra]
            handle.write(text.dumps(line) + "\n")
    tmp.replace(out_dir / "samples.jsonl")
