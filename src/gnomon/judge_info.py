"""What a reader needs to trust a judged score: which judge, which judge prompt, how reliable.

Shared by `gnomon run`'s report, `results.json`, the leaderboard and `gnomon judge-agreement`,
so that each shows the same names and figures.

- The judge prompt hash is a short hash of what the judge is shown and how its reply is read:
  the spec's `judge` section as stored with the run (templates, system prompts, verdict format,
  labels, per-turn asking, token limit) less how often it is asked and at which temperature
  (`samples`, `temperature`). Those are the judge's sampling, shown beside it
  (`judge_sampling`): K ratings at a temperature ask the same prompt, and their mean rates on
  the same scale as one greedy rating, so such runs share the prompt hash and the column (the
  scorer hash, which covers the whole section, still keeps their scores apart in the store).
- Reliability: for pairwise verdicts the share of verdicts that flip when the two answers swap
  places (1 - the mean `position_consistency`); for ratings the spread of repeated judgments
  when the judge samples (`rating_spread`, when the run has it). Neither is there for others.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gnomon import text
from gnomon.hub.spec_parts import SAMPLED_JUDGE_TEMPERATURE as SAMPLED_TEMPERATURE
from gnomon.stats import Score

FLIPS = "position_flip_rate"
SPREAD = "rating_spread"


# how the judge is sampled, with each field's value for one greedy judgment: not its prompt
SAMPLING_DEFAULTS: dict[str, Any] = {"samples": 1, "temperature": None}


def judge_prompt_hash(spec: Mapping[str, Any]) -> str | None:
    """The short hash of a spec's judge section (the spec as stored, or `model_dump()`) with its
    sampling set to one greedy judgment, so a run asking K times hashes as a run asking once
    (and a stored spec hashes as it did before K existed); None for a spec without a judge."""
    judge = spec.get("judge")
    if not isinstance(judge, Mapping):
        return None
    prompt = dict(judge)
    for name, default in SAMPLING_DEFAULTS.items():
        if name in prompt:
            prompt[name] = default
    blob = json.dumps(prompt, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode(blob)).hexdigest()[:8]


def judge_sampling(spec: Mapping[str, Any]) -> str | None:
    """`3 ratings at temperature 0.7` where the judge is asked more than once or samples;
    None for one greedy judgment (or no judge)."""
    judge = spec.get("judge")
    if not isinstance(judge, Mapping):
        return None
    k = judge.get("samples") or 1
    given = judge.get("temperature")
    temperature = given if given is not None else (SAMPLED_TEMPERATURE if k > 1 else 0.0)
    if k == 1 and not temperature:
        return None
    asked = f"{k} ratings of each answer" if k > 1 else "one judgment"
    return f"{asked} at temperature {temperature:g}"


def judge_verdict(spec: Mapping[str, Any]) -> str | None:
    judge = spec.get("judge")
    return str(judge.get("verdict", "rating")) if isinstance(judge, Mapping) else None


@dataclass(frozen=True)
class Reliability:
    """A judged score's reliability figure: what it measures and its value with interval."""

    metric: str  # FLIPS or SPREAD
    value: float
    ci_low: float
    ci_high: float

    @property
    def label(self) -> str:
        if self.metric == FLIPS:
            return "verdicts that flip when the answers swap places"
        return "spread of repeated ratings"

    def shown(self) -> str:
        """`12.5% flip` / `0.40 spread`, for a table cell."""
        if self.metric == FLIPS:
            return f"{100 * self.value:.1f}% flip"
        return f"{self.value:.2f} spread"

    def as_dict(self) -> dict[str, Any]:
        def clean(x: float) -> float | None:
            return None if math.isnan(x) else x

        return {
            "metric": self.metric,
            "meaning": self.label,
            "value": clean(self.value),
            "ci95": [clean(self.ci_low), clean(self.ci_high)],
        }


def reliability(metrics: Mapping[str, Score]) -> Reliability | None:
    """From a judged score's aggregated metrics: position flips where pairwise verdicts were
    asked in both orders, the rating spread where the judge was sampled; else None."""
    consistency = metrics.get("position_consistency")
    if consistency is not None and not math.isnan(consistency.value):
        return Reliability(
            FLIPS, 1.0 - consistency.value, 1.0 - consistency.ci_high, 1.0 - consistency.ci_low
        )
    spread = metrics.get(SPREAD)
    if spread is not None and not math.isnan(spread.value):
        return Reliability(SPREAD, spread.value, spread.ci_low, spread.ci_high)
    return None


def shown_reliability(found: Reliability | None) -> str:
    return found.shown() if found is not None else "—"


def judge_names(displays: Mapping[str, str]) -> dict[str, str]:
    """Judge model key -> the name it is shown under (its `--judge` as typed, e.g.
    `openai:gpt-4o`, widened by what tells two judges of one name apart), as models are named
    on the leaderboard."""
    from gnomon.rank.names import display_names

    return display_names({key: displays.get(key) or key for key in displays})
