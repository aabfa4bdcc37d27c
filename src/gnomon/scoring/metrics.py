"""Per-sample metrics, by name: what a spec's `metrics` may list, and how each one is computed.

A text metric compares one prediction with a sample's references and takes the best reference
(a question may have several acceptable answers). Metrics that a mode computes from the engine's
answers (acc from loglikelihoods, pass@k from test runs) and corpus metrics (BLEU, whose value
is not a mean of per-sample numbers) are registered too, so a spec's metric names are checked
against one list. Adding a text metric is one decorated function.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from gnomon import extract
from gnomon.errors import UserError
from gnomon.hub.spec import Normalize
from gnomon.scoring import drop, math_answers, truthfulqa
from gnomon.scoring.extractors import math_equal

__all__ = ["SAMPLE_METRICS", "SampleMetric", "TextMetric", "Unit", "is_known_metric", "lookup"]
__all__ += [
    "judge_corpus_metrics",
    "judge_metrics",
    "metrics_for_mode",
    "squad_normalize",
    "text_metric",
    "token_f1",
]

# a reference is one text, or (DROP) one answer made of several spans
Reference = str | list[str]
TextMetric = Callable[[str, list[Reference], Normalize], float]
Kind = Literal["text", "output", "mode", "corpus"]
# What a metric's number is on: "share" a 0..1 proportion (accuracy, F1, pass@k), the only kind a
# leaderboard may show as % and average with others; "points" sacreBLEU's 0..100; "perplexity"
# unbounded above 1; "bits" per byte; "rating" a judge's 1..scale (0..1, a share, when the spec
# normalises).
Unit = Literal["share", "points", "perplexity", "bits", "rating"]


@dataclass(frozen=True)
class SampleMetric:
    """One metric name. `kind`: "text" (fn compares prediction and references), "output" (fn
    compares the whole output, before any extraction, with the worked solution), "mode" (the mode
    computes it from the engine's answers), "corpus" (its aggregation reads every sample's
    prediction and references at once). `aggregation` names the entry of
    `gnomon.scoring.aggregate.AGGREGATIONS` that turns samples into a score."""

    name: str
    kind: Kind
    modes: frozenset[str]
    aggregation: str = "mean"
    fn: TextMetric | None = None
    description: str = ""
    higher_is_better: bool = True  # False for errors and perplexities (TER, word_perplexity)
    unit: Unit = "share"


SAMPLE_METRICS: dict[str, SampleMetric] = {}
# Families of names, e.g. pass@1, pass@10: (pattern, metric that stands for the family).
_PATTERNS: list[tuple[re.Pattern[str], SampleMetric]] = []


def _register(metric: SampleMetric, pattern: str | None = None) -> None:
    if pattern is not None:
        _PATTERNS.append((re.compile(pattern), metric))
        return
    if metric.name in SAMPLE_METRICS:
        raise ValueError(f"metric {metric.name!r} is registered twice")
    SAMPLE_METRICS[metric.name] = metric


def text_metric(
    name: str, *, modes: Iterable[str] = ("generate",), description: str = "", kind: Kind = "text"
) -> Callable[[Callable[[str, Any, Normalize], float]], TextMetric]:
    """Register `fn(prediction, reference, normalize) -> float` as a text metric, scored as its
    best value over the references (`kind="output"`: the prediction is the whole output)."""

    def decorate(fn: Callable[[str, Any, Normalize], float]) -> TextMetric:
        def best(prediction: str, references: list[Reference], normalize: Normalize) -> float:
            if isinstance(references, str):
                references = [references]
            if not references:
                raise ValueError(f"{name}: a sample needs at least one reference")
            return max(fn(prediction, ref, normalize) for ref in references)

        best.__name__ = best.__qualname__ = fn.__name__
        best.__doc__ = fn.__doc__
        doc = description or next(iter((fn.__doc__ or "").strip().splitlines()), "")
        _register(SampleMetric(name, kind, frozenset(modes), "mean", best, doc))
        return best

    return decorate


def target_metric(
    name: str,
    *,
    modes: Iterable[str] = ("generate",),
    description: str = "",
    unit: Unit = "share",
) -> Callable[[Callable[[str, Any, Normalize], float]], TextMetric]:
    """Register `fn(prediction, target, normalize) -> float` as a text metric that reads the
    sample's whole target (e.g. TruthfulQA's correct and incorrect answers) rather than taking
    its best over references."""

    def decorate(fn: Callable[[str, Any, Normalize], float]) -> TextMetric:
        doc = description or next(iter((fn.__doc__ or "").strip().splitlines()), "")
        _register(SampleMetric(name, "text", frozenset(modes), "mean", fn, doc, unit=unit))
        return fn

    return decorate


def lookup(name: str) -> SampleMetric | None:
    """The metric a name refers to (a family member such as pass@10 gives the family's)."""
    if name in SAMPLE_METRICS:
        return SAMPLE_METRICS[name]
    return next((m for pattern, m in _PATTERNS if pattern.fullmatch(name)), None)


def text_fn(name: str) -> TextMetric:
    """The function of a text metric; a name that is not one is a programming error."""
    metric = lookup(name)
    if metric is None or metric.fn is None:
        raise KeyError(f"{name!r} is not a text metric")
    return metric.fn


def is_known_metric(name: str, mode: str) -> bool:
    """Whether a spec in `mode` may list `name` among its metrics."""
    metric = lookup(name)
    return metric is not None and mode in metric.modes


def metrics_for_mode(mode: str) -> list[str]:
    """Names a spec in `mode` may list, for error messages; a family shows as its pattern name
    (`pass@k`: any k >= 1)."""
    names = [m.name for m in SAMPLE_METRICS.values() if mode in m.modes]
    return names + [m.name for _, m in _PATTERNS if mode in m.modes]


# --- computed by modes or by corpus aggregations -------------------------------------------

_register(
    SampleMetric(
        "acc",
        "mode",
        frozenset({"choice", "target"}),
        description="the argmax choice (target mode: every target token the argmax)",
    )
)
_register(
    SampleMetric(
        "acc_norm", "mode", frozenset({"choice"}), description="argmax of logprob per character"
    )
)
_register(
    SampleMetric(
        "mc2",
        "mode",
        frozenset({"choice"}),
        description="probability mass of the true choices over all (TruthfulQA MC2)",
    )
)
_register(
    SampleMetric("pass@k", "mode", frozenset({"code"}), description="unbiased pass@k (Codex)"),
    pattern=r"pass@[1-9][0-9]*",
)
_register(
    SampleMetric(
        "bleu",
        "corpus",
        frozenset({"generate"}),
        "bleu",
        description="sacreBLEU corpus BLEU, 0-100",
        unit="points",
    )
)
_register(
    SampleMetric(
        "chrf",
        "corpus",
        frozenset({"generate"}),
        "chrf",
        description="sacreBLEU corpus chrF, 0-100",
        unit="points",
    )
)
_register(
    SampleMetric(
        "ter",
        "corpus",
        frozenset({"generate"}),
        "ter",
        description="sacreBLEU corpus TER, 0-100",
        higher_is_better=False,
        unit="points",
    )
)
_register(
    SampleMetric(
        "perplexity",
        "corpus",
        frozenset({"target"}),
        "perplexity",
        description="exp of minus the mean target loglikelihood over the corpus",
        higher_is_better=False,
        unit="perplexity",
    )
)
_PER_UNIT: list[tuple[str, str, Unit, str]] = [
    (
        "word_perplexity",
        "weighted_perplexity",
        "perplexity",
        "exp of minus the loglikelihood per word",
    ),
    (
        "byte_perplexity",
        "weighted_perplexity",
        "perplexity",
        "exp of minus the loglikelihood per byte",
    ),
    ("bits_per_byte", "bits_per_byte", "bits", "minus the loglikelihood per byte, in bits"),
]
for _name, _aggregation_name, _unit, _doc in _PER_UNIT:
    _register(
        SampleMetric(
            _name,
            "corpus",
            frozenset({"rolling"}),
            _aggregation_name,
            description=_doc,
            higher_is_better=False,
            unit=_unit,
        )
    )
_register(
    SampleMetric(
        "corpus_f1",
        "corpus",
        frozenset({"generate", "choice"}),
        "corpus_f1",
        description="F1 of the positive label over the corpus",
    )
)
_register(
    SampleMetric(
        "macro_f1",
        "corpus",
        frozenset({"generate", "choice"}),
        "macro_f1",
        description="mean over labels of each label's F1",
    )
)


# --- computed by a registered scorer (`gnomon.scoring.scorers`, a spec's `scorer:`) ----------

_SCORER_METRICS = {
    "exact_match_original": "MATH-hard's Minerva answer after 'Final Answer:', equal as text "
    "or by sympy (the leaderboard_math scorer)",
}
_SCORER_METRICS |= {
    "prompt_level_strict_acc": "IFEval: every instruction of the prompt followed (ifeval scorer)",
    "prompt_level_loose_acc": "IFEval: every instruction followed by some loose variant of the "
    "response (first/last line dropped, asterisks removed)",
}
for _name, _doc in _SCORER_METRICS.items():
    _register(SampleMetric(_name, "mode", frozenset({"generate"}), description=_doc))
# per instruction, not per sample: the scorer writes each sample's verdicts as a corpus item
_SCORER_CORPUS_METRICS = {
    "inst_level_strict_acc": "IFEval: share of all instructions followed (ifeval scorer)",
    "inst_level_loose_acc": "IFEval: share of all instructions followed, loosely",
}
for _name, _doc in _SCORER_CORPUS_METRICS.items():
    _register(
        SampleMetric(_name, "corpus", frozenset({"generate"}), "instruction_mean", description=_doc)
    )


def is_scorer_metric(name: str) -> bool:
    """Whether only a registered scorer computes this metric (no extraction pipeline can)."""
    return name in _SCORER_METRICS or name in _SCORER_CORPUS_METRICS


# --- computed from a judge model's verdicts (judged mode), by verdict kind -------------------

_JUDGE_METRICS = {
    "rating": (("rating", "the judge's rating (1..scale, or 0..1 when the spec normalises)"),),
    "pairwise": (
        ("win_rate", "win 1, tie 0.5, loss 0 against the baseline, averaged over both orders"),
        ("position_consistency", "1 when the judge's two orders agree once swapped back"),
    ),
    "yes_no": (("yes_rate", "1 when the judge answered yes"),),
}
for _kind in _JUDGE_METRICS.values():
    for _name, _doc in _kind:
        _judged: Unit = "rating" if _name == "rating" else "share"
        _register(
            SampleMetric(_name, "mode", frozenset({"judged"}), description=_doc, unit=_judged)
        )
        # a judge asked once per turn of a conversation (`judge.per_turn`): each turn's score
        _register(
            SampleMetric(
                f"{_name}_turnN", "mode", frozenset({"judged"}), unit=_judged,
                description=f"{_name} of turn N alone (a judge asked once per turn)",
            ),
            pattern=rf"{_name}_turn[1-9][0-9]?",
        )  # fmt: skip
_register(
    SampleMetric(
        "rating_spread", "mode", frozenset({"judged"}), unit="rating", higher_is_better=False,
        description="the standard deviation of the judge's ratings of one answer, judged "
        "`judge.samples` times (population form; averaged over judged turns)",
    )
)  # fmt: skip


def judge_metrics(verdict: str, turns: int = 0, samples: int = 1) -> list[str]:
    """The metrics a judge of this verdict kind produces, the score first; `turns` > 0 when it
    is asked once per turn (each turn's score too), `samples` > 1 when it rates each answer
    several times (their spread too)."""
    names = [name for name, _ in _JUDGE_METRICS.get(verdict, ())]
    names += [f"{names[0]}_turn{t}" for t in range(1, turns + 1)] if names else []
    return names + (["rating_spread"] if verdict == "rating" and samples > 1 else [])


# Corpus statistics of pairwise verdicts (`scoring.pairwise`, each aggregation named as its
# metric): judged mode writes each sample's item for those its spec lists.
_PAIRWISE_CORPUS = {
    "pairwise_win_rate": "share of wins against the baseline, ties half (bootstrap interval)",
    "lc_win_rate": "AlpacaEval 2.0's length-controlled win rate against the baseline",
    "arena_hard": "Arena-Hard's Bradley-Terry win probability against the baseline",
    "arena_hard_style": "Arena-Hard's style-controlled (length, markdown) Bradley-Terry score",
}
for _name, _doc in _PAIRWISE_CORPUS.items():
    _register(SampleMetric(_name, "corpus", frozenset({"judged"}), _name, description=_doc))


def judge_corpus_metrics(verdict: str) -> list[str]:
    """The corpus metrics a spec with a judge of this verdict kind may list."""
    return list(_PAIRWISE_CORPUS) if verdict == "pairwise" else []


# --- text metrics ---------------------------------------------------------------------------


@text_metric("exact_match")
def exact_match(prediction: str, reference: str, normalize: Normalize) -> float:
    """1 when prediction and reference are equal after the spec's normalisation (`math`: as a
    published math scorer compares answers)."""
    if normalize.math == "minerva":
        return float(math_answers.minerva_equiv(prediction, reference))
    if normalize.math == "hendrycks":
        return float(math_answers.hendrycks_equiv(prediction, reference))
    return extract.exact_match(prediction, reference, normalize)


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def squad_normalize(text: str) -> str:
    """SQuAD's answer normalisation: lower case, no ASCII punctuation, no articles, single
    spaces."""
    text = text.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


@text_metric("token_f1")
def token_f1(prediction: str, reference: str, normalize: Normalize) -> float:
    """SQuAD-style F1 over the bags of words of prediction and reference."""
    pred = squad_normalize(extract.normalize(prediction, normalize)).split()
    ref = squad_normalize(extract.normalize(reference, normalize)).split()
    if not pred or not ref:
        return float(pred == ref)  # both empty: they agree; one empty: nothing in common
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


@text_metric("contains")
def contains(prediction: str, reference: str, normalize: Normalize) -> float:
    """1 when the normalised reference occurs in the normalised prediction."""
    return float(
        extract.normalize(reference, normalize) in extract.normalize(prediction, normalize)
    )


@text_metric("math_equiv")
def math_equiv(prediction: str, reference: str, normalize: Normalize) -> float:
    """1 when the prediction's answer equals the reference mathematically (math-verify); the
    spec's normalisation does not apply (math-verify has its own)."""
    del normalize
    return float(math_equal(prediction, reference))


@text_metric("em", description="DROP's exact match: the answer's spans, normalised, as a set")
def drop_em(prediction: str, reference: Reference, normalize: Normalize) -> float:
    """DROP's exact match (lm-evaluation-harness's `drop` `em`); its own normalisation."""
    del normalize
    return drop.drop_em(prediction, reference)


@text_metric("f1", description="DROP's F1: bags of words aligned span to span, numbers matched")
def drop_f1(prediction: str, reference: Reference, normalize: Normalize) -> float:
    """DROP's F1 (lm-evaluation-harness's `drop` `f1`), rounded to two decimals as it is."""
    del normalize
    return drop.drop_f1(prediction, reference)


def _truthfulqa(name: str) -> None:
    kind, part = name.rsplit("_", 1)
    what = {"max": "best over the correct answers", "acc": "1 when a correct answer scores best",
            "diff": "best correct minus best incorrect"}[part]  # fmt: skip

    def fn(prediction: str, target: Any, normalize: Normalize) -> float:
        del normalize
        if not isinstance(target, dict) or not {"correct", "incorrect"} <= set(target):
            raise UserError(
                f"metric {name} needs a target with `correct` and `incorrect` answer lists, "
                f"got {target!r:.60}"
            )
        correct, incorrect = tuple(target["correct"]), tuple(target["incorrect"])
        return truthfulqa.scores(prediction, correct, incorrect)[name]

    fn.__name__ = name
    # BLEU and ROUGE are on 0..100 as lm-eval has them; only `_acc` is a 0..1 share
    unit: Unit = "share" if part == "acc" else "points"
    target_metric(name, description=f"TruthfulQA: {kind} {what}", unit=unit)(fn)


for _name in truthfulqa.METRICS:
    _truthfulqa(_name)


@text_metric("math_verify", kind="output")
def math_verify(prediction: str, reference: str, normalize: Normalize) -> float:
    """1 when math-verify finds the gold answer of the worked solution (`prompt.solution`, else
    the target) equal to the answer it finds in the whole output (lm-eval's `math_verify`)."""
    del normalize
    return float(math_answers.math_verify_whole(prediction, reference))
