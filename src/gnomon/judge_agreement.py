"""`gnomon judge-agreement`: two judges compared on the same answers, read from the store.

A judged benchmark run with another `--judge` stores its scores under another scorer hash (the
judge is part of it), so both judges' verdicts on one model's answers are kept side by side.
Samples are paired when both judges scored the same model's same answers (the same answer keys,
the judge's own requests left out). Where a judge scored a pairing more than once (a changed
judge prompt), its newest run counts, and every judge prompt hash used is reported.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gnomon.errors import UserError
from gnomon.judge_info import judge_names, judge_prompt_hash, judge_verdict
from gnomon.scoring.agreement import (
    Figure,
    agreement_rate,
    cohen_kappa,
    mean_abs_diff,
    pearson,
    spearman,
    with_interval,
)
from gnomon.store import Store

PairKey = tuple[str, str, tuple[str, ...]]  # (model key, sample id, the model's answer keys)


@dataclass
class Judgment:
    """One judge's score of one sample's answers."""

    model: str  # the model's display name, as its run recorded it
    verdict: str  # rating / pairwise / yes_no
    metrics: dict[str, float]
    verdicts: list[Any] | None
    prompt_hash: str | None


@dataclass
class Side:
    key: str
    name: str
    prompt_hashes: dict[str, int] = field(default_factory=dict)  # hash -> paired samples
    mean: Figure | None = None  # its mean score over the paired samples
    flips: Figure | None = None  # pairwise: its share of verdicts flipping with the order

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "key": self.key, "name": self.name, "judge_prompt_hashes": self.prompt_hashes,
        }  # fmt: skip
        if self.mean is not None:
            out["mean"] = self.mean.as_dict()
        if self.flips is not None:
            out["position_flip_rate"] = self.flips.as_dict()
        return out


@dataclass
class Agreement:
    bench: str
    verdict: str
    a: Side
    b: Side
    n: int  # samples both judged
    models: list[str]
    figures: dict[str, Figure]  # in display order
    counted: dict[str, int] = field(default_factory=dict)  # how many labels a figure counts

    def as_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.bench,
            "verdict": self.verdict,
            "n": self.n,
            "models": self.models,
            "judges": {"a": self.a.as_dict(), "b": self.b.as_dict()},
            "figures": {
                name: {**f.as_dict(), "n": self.counted.get(name, self.n)}
                for name, f in self.figures.items()
            },
        }


# ------------------------------------------------------------------------------ reading


def _describe(keys: dict[str, str]) -> str:
    return "; ".join(f"{name} ({key})" if name != key else key for key, name in keys.items())


def resolve_judge(text: str, displays: dict[str, str]) -> str:
    """A judge named on the command line -> its stored model key. Accepted: the key itself, the
    name `gnomon rank` shows, the `--judge` text a run was given (`openai:gpt-4o`), or a local
    model's `--judge` (`hf:DIR`, a GGUF file, a hub id), matched in any dtype."""
    names = judge_names(displays)
    if text in displays:
        return text
    for found in (
        [k for k, name in names.items() if name == text],
        [k for k, shown in displays.items() if shown == text],
        _by_reference(text, displays),
    ):
        if len(found) == 1:
            return found[0]
        if found:
            raise UserError(
                f"judge {text!r} names {len(found)} judges: "
                f"{_describe({k: names[k] for k in found})}; give one of these keys"
            )
    raise UserError(
        f"no judge {text!r} in the store; its judges: {_describe(names)}"
        if names
        else f"no judge {text!r}: the store holds no judged scores yet"
    )


def _by_reference(text: str, displays: dict[str, str]) -> list[str]:
    """Keys of a local judge named as `--judge` names it: its key up to the dtype."""
    from gnomon.engines import engine_kind, model_key, parse_model

    try:
        ref = parse_model(text)
        if engine_kind(ref).served:
            return []
        stem = model_key(ref, "")
    except (UserError, OSError, ValueError):
        return []
    stem = stem.rsplit("|", 1)[0] + "|"
    return [key for key in displays if key.startswith(stem)]


def _judgments(
    runs: list[tuple[dict[str, Any], list[dict[str, Any]]]], judge: str, owners: dict[str, str]
) -> dict[PairKey, Judgment]:
    """The judge's newest score of every (model, sample, answers) it scored."""
    out: dict[PairKey, Judgment] = {}
    for run, scores in runs:  # oldest first: a newer score of the same answers wins
        if run["judge"] != judge:
            continue
        verdict = judge_verdict(run["spec"]) or "rating"
        prompt = judge_prompt_hash(run["spec"])
        for score in scores:
            keys = score["answer_keys"]
            if keys is None:
                continue
            mine = tuple(k for k in keys if owners.get(k) != judge)
            out[(score["model_key"], score["sample_id"], mine)] = Judgment(
                run["model"], verdict, score["metrics"], score["verdicts"], prompt
            )
    return out


def compare_judges(
    store: Store, judge_a: str, judge_b: str, bench: str, model: str | None = None
) -> Agreement:
    everything = store.judged_runs()
    displays: dict[str, str] = {}
    for run in everything:  # the newest `--judge` text of each judge names it
        displays[run["judge"]] = run["judge_display"] or run["judge"]
    names = judge_names(displays)
    key_a, key_b = resolve_judge(judge_a, displays), resolve_judge(judge_b, displays)
    if key_a == key_b:
        raise UserError(f"{judge_a!r} and {judge_b!r} are the same judge ({key_a})")
    runs = [r for r in everything if r["bench"] == bench]
    if not runs:
        judged = sorted({r["bench"] for r in everything})
        raise UserError(
            f"no judged scores of {bench!r} in {store.path}; "
            + (f"judged benchmarks there: {', '.join(judged)}" if judged else "none is judged")
        )
    by = {r["judge"] for r in runs}
    for text, key in ((judge_a, key_a), (judge_b, key_b)):
        if key not in by:
            raise UserError(
                f"judge {text!r} did not judge {bench}; its judges: "
                + _describe({k: names[k] for k in sorted(by)})
            )
    scored = [
        (r, store.judged_scores(r["run_id"], bench, r["scorer_hash"]))
        for r in runs
        if r["judge"] in (key_a, key_b) and r["scorer_hash"] is not None
    ]
    owners = store.answer_owners(
        [k for _, ss in scored for s in ss for k in s["answer_keys"] or []]
    )
    ja = _judgments(scored, key_a, owners)
    jb = _judgments(scored, key_b, owners)
    common = [k for k in ja if k in jb]
    if model is not None:
        models = {k[0]: ja[k].model for k in common}
        wanted = {m for m, shown in models.items() if model in (m, shown)}
        if not wanted:
            raise UserError(
                f"no model {model!r} was judged on {bench} by both judges; those that were: "
                + (", ".join(sorted(set(models.values()))) or "none")
            )
        common = [k for k in common if k[0] in wanted]
    if not common:
        raise UserError(
            f"{names[key_a]} and {names[key_b]} share no judged samples of {bench}: "
            f"{len(ja)} and {len(jb)} samples judged, none of the same answers"
        )
    kinds = {ja[k].verdict for k in common} | {jb[k].verdict for k in common}
    if len(kinds) > 1:
        raise UserError(
            f"{bench} was judged with different verdict kinds ({', '.join(sorted(kinds))}): "
            "not comparable"
        )
    (verdict,) = kinds
    side_a, side_b = Side(key_a, names[key_a]), Side(key_b, names[key_b])
    for side, found in ((side_a, ja), (side_b, jb)):
        side.prompt_hashes = dict(Counter(str(found[k].prompt_hash) for k in common))
    out = Agreement(
        bench, verdict, side_a, side_b, len(common),
        sorted({ja[k].model for k in common}), {},
    )  # fmt: skip
    pair = [(ja[k], jb[k]) for k in common]
    if verdict == "pairwise":
        _pairwise(out, pair)
    elif verdict == "yes_no":
        _yes_no(out, pair)
    else:
        _ratings(out, pair)
    return out


# ------------------------------------------------------------------------------ figures


def _column(values: list[float]) -> list[list[float]]:
    return [[v] for v in values]


def _outcomes(j: Judgment) -> list[float] | None:
    """The model's outcome in each order (1 win, 0.5 tie, 0 loss), from the judge's labels:
    as A, then as B (swapped back)."""
    from gnomon.modes.verdicts import PAIRWISE

    labels = j.verdicts
    if not isinstance(labels, list) or len(labels) != 2 or not all(x in PAIRWISE for x in labels):
        return None
    return [PAIRWISE[labels[0]], 1.0 - PAIRWISE[labels[1]]]


def _sign(win_rate: float) -> float:
    return 1.0 if win_rate > 0.5 else (0.0 if win_rate < 0.5 else 0.5)


def _pairwise(out: Agreement, pair: list[tuple[Judgment, Judgment]]) -> None:
    orders = [(oa, ob) for a, b in pair if (oa := _outcomes(a)) and (ob := _outcomes(b))]
    per_a = [o[0] for o in orders]
    per_b = [o[1] for o in orders]
    sample_a = _column([_sign(a.metrics.get("win_rate", 0.5)) for a, _ in pair])
    sample_b = _column([_sign(b.metrics.get("win_rate", 0.5)) for _, b in pair])
    out.figures["outcome agreement, per order"] = with_interval(agreement_rate, per_a, per_b)
    out.figures["Cohen's kappa, per order"] = with_interval(cohen_kappa, per_a, per_b)
    out.figures["outcome agreement, per sample"] = with_interval(agreement_rate, sample_a, sample_b)
    out.figures["Cohen's kappa, per sample"] = with_interval(cohen_kappa, sample_a, sample_b)
    for name in ("outcome agreement, per order", "Cohen's kappa, per order"):
        out.counted[name] = 2 * len(orders)
    win_a = _column([a.metrics.get("win_rate", 0.5) for a, _ in pair])
    win_b = _column([b.metrics.get("win_rate", 0.5) for _, b in pair])
    out.a.mean = with_interval(_mean_first, win_a, win_a)
    out.b.mean = with_interval(_mean_first, win_b, win_b)
    flips_a = _column([1.0 - a.metrics.get("position_consistency", 1.0) for a, _ in pair])
    flips_b = _column([1.0 - b.metrics.get("position_consistency", 1.0) for _, b in pair])
    out.a.flips = with_interval(_mean_first, flips_a, flips_a)
    out.b.flips = with_interval(_mean_first, flips_b, flips_b)


def _yes_no(out: Agreement, pair: list[tuple[Judgment, Judgment]]) -> None:
    ya = _column([float(a.metrics.get("yes_rate", 0.0) >= 0.5) for a, _ in pair])
    yb = _column([float(b.metrics.get("yes_rate", 0.0) >= 0.5) for _, b in pair])
    out.figures["agreement"] = with_interval(agreement_rate, ya, yb)
    out.figures["Cohen's kappa"] = with_interval(cohen_kappa, ya, yb)
    out.a.mean = with_interval(_mean_first, ya, ya)
    out.b.mean = with_interval(_mean_first, yb, yb)


def _ratings(out: Agreement, pair: list[tuple[Judgment, Judgment]]) -> None:
    both = [(a, b) for a, b in pair if "rating" in a.metrics and "rating" in b.metrics]
    ra = _column([a.metrics["rating"] for a, _ in both])
    rb = _column([b.metrics["rating"] for _, b in both])
    out.figures["Spearman's rho"] = with_interval(spearman, ra, rb)
    out.figures["Pearson's r"] = with_interval(pearson, ra, rb)
    out.figures["mean absolute difference"] = with_interval(mean_abs_diff, ra, rb)
    out.figures["exact agreement"] = with_interval(_exact, ra, rb)
    out.a.mean = with_interval(_mean_first, ra, ra)
    out.b.mean = with_interval(_mean_first, rb, rb)


def _exact(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a - b) < 1e-9)) if len(a) else float("nan")


def _mean_first(a: np.ndarray, _b: np.ndarray) -> float:
    return float(np.mean(a)) if len(a) else float("nan")
