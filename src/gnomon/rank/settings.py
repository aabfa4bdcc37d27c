"""The setting a benchmark was run in (few-shot count, chat formatting, how choices were scored,
a generation budget given with `--max-tokens`, sampled answers with `--samples k` /
`--temperature`, the judge), and the leaderboard column each setting gets.

0-shot and 5-shot MMLU, or ARC scored by loglikelihood and by a written letter, are different
measurements: the board keeps each one in its own column instead of letting the newest run
replace another. So are scores of one benchmark by two judges: a judged benchmark's standard
setting has its usual judge (the one that judged most models), and each other judge gets a
column of its own, never averaged in. The benchmark's standard setting (its spec's own few-shot
count, no chat template, loglikelihood for choices; for a conversation by nature, a benchmark
judged by a model or asked in turns, chat formatting or none) keeps the benchmark id as its
column id, so links and anything else keyed by the id stay as they were; every other setting is
a variant beside it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Setting:
    """What about a run changes the measurement, relative to its benchmark's standard."""

    shots: int | None = None  # None: the spec's own few-shot count
    chat: bool = False  # a chat template or a chat API formatted the prompts
    by_generation: bool = False  # a choice benchmark answered by writing a letter
    judge: str | None = None  # another judge than the benchmark's usual one (its shown name)
    max_tokens: int | None = None  # None: the spec's own generation budget (`--max-tokens`)
    # answers drawn at a temperature where the benchmark samples (`--samples k` / --temperature`:
    # code pass@k, chat avg@k): `samples` k (1 for one sampled answer), `averaged` for avg@k,
    # `temperature` None where unknown (answers from a file)
    samples: int | None = None
    temperature: float | None = None
    averaged: bool = False

    @property
    def standard(self) -> bool:
        return self == STANDARD

    @property
    def order(self) -> tuple[bool, int, bool, bool, str, int, int, float]:
        """Variants sort after the standard: by shots; chat before scoring by generation; then
        by judge, then by token budget, then by samples and temperature."""
        return (
            self.shots is not None, self.shots or 0, self.by_generation, self.chat,
            self.judge or "", self.max_tokens or 0, self.samples or 0, self.temperature or 0.0,
        )  # fmt: skip

    def _parts(self) -> list[tuple[str, str]]:
        """(in the column id, in the title) for each way this differs from the standard."""
        parts = []
        if self.shots is not None:
            parts.append((f"{self.shots}shot", f"{self.shots}-shot"))
        if self.chat:
            parts.append(("chat", "chat"))
        if self.by_generation:
            parts.append(("generation", "by generation"))
        if self.judge is not None:
            parts.append((f"judge={self.judge}", f"judged by {self.judge}"))
        if self.max_tokens is not None:
            parts.append((f"{self.max_tokens}tok", f"max {self.max_tokens} tokens"))
        if self.samples is not None:
            parts.append(self._sampling())
        return parts

    def _sampling(self) -> tuple[str, str]:
        """`avg8` (avg@8 at the default 0.8), `avg8t0.6`, `n10` (pass@k over 10 completions),
        `t0.7` (one answer sampled)."""
        k = self.samples or 1
        ident = (f"avg{k}" if self.averaged else f"n{k}") if k > 1 else ""
        title = (f"avg@{k}" if self.averaged else f"{k} samples") if k > 1 else "sampled"
        if self.temperature is not None:
            if k == 1 or self.temperature != DEFAULT_TEMPERATURE:
                ident += f"t{self.temperature:g}"
            title += f" at temperature {self.temperature:g}"
        return ident or "sampled", title

    @property
    def label(self) -> str:
        """`0-shot · chat`; empty for the standard setting."""
        return " · ".join(title for _, title in self._parts())

    @property
    def suffix(self) -> str:
        """`0shot+chat`: the column id's part after `@`; empty for the standard setting."""
        return "+".join(ident for ident, _ in self._parts())

    def describe(self) -> dict[str, Any]:
        """For the JSON board: what a reader needs without knowing the spec."""
        described: dict[str, Any] = {
            "shots": self.shots,
            "chat": self.chat,
            "choices_scored_by": "generation" if self.by_generation else "loglikelihood",
            "standard": self.standard,
        }
        if self.judge is not None:  # only where set: boards before it read the same
            described["judge"] = self.judge
        if self.max_tokens is not None:  # likewise
            described["max_tokens"] = self.max_tokens
        if self.samples is not None:  # likewise
            described["samples"] = self.samples
            described["temperature"] = self.temperature
            described["averaged"] = self.averaged
        return described


STANDARD = Setting()
DEFAULT_TEMPERATURE = 0.8  # what `--samples k` samples at unless `--temperature` says (modes/)


def setting_of(
    shots: int | None, spec: dict[str, Any], config: dict[str, Any], model_key: str
) -> Setting:
    """The setting of one run on one benchmark, from what the store recorded: the shots it
    used (`run_benches.shots`) against the spec stored with it, and the run's config."""
    own = (spec.get("fewshot") or {}).get("count", 0)
    # a conversation by nature is asked through a chat template or API in its standard
    # setting: that is no variant of it
    chat = not chat_is_standard(spec) and bool(
        config.get("chat_template") or config.get("chat_api")
    )
    by_generation = False
    if spec.get("mode") == "choice":
        scored_by = config.get("choice_scored_by")
        # a file of answers (`gnomon score`) can only be scored by the letter written
        by_generation = scored_by == "generation" or (
            scored_by is None and model_key.startswith("file:")
        )
    shots = None if shots is None or shots == own else shots
    # a budget given with --max-tokens, where it differs from the spec's: another measurement
    # (a reasoning model cut at 256 tokens is not the one given 32768)
    budget = config.get("max_tokens")
    own_budget = (spec.get("generation") or {}).get("max_tokens")
    # every spec with a generation budget takes the override (`pipeline.plan.with_budget`)
    max_tokens = budget if own_budget is not None and budget not in (None, own_budget) else None
    return Setting(
        shots, chat, by_generation, max_tokens=max_tokens, **_sampling(spec, config, model_key)
    )


def _sampling(spec: dict[str, Any], config: dict[str, Any], model_key: str) -> dict[str, Any]:
    """Where the benchmark samples its answers (`modes.mode_for`: code, and chat benchmarks
    answered by generation, never judged) and this run did (k > 1, or a temperature above 0):
    k answers at a temperature are another measurement than one greedy answer (avg@8 of a
    reasoning model is not its greedy pass@1), so they never share its column. Elsewhere
    `--samples` changed nothing and the run stands with the greedy ones."""
    mode = spec.get("mode")
    prompt = spec.get("prompt") or {}
    judged = any(
        isinstance(e, dict) and e.get("kind") == "judge" for e in spec.get("extract") or ()
    )
    chat = mode == "generate" and isinstance(prompt, dict) and bool(prompt.get("chat"))
    if not (mode == "code" or (chat and not judged)):
        return {}
    k = config.get("samples") or 1
    if model_key.startswith("file:"):  # answers from a file: k of them, drawn how, unknown
        return {"samples": k, "averaged": chat} if k > 1 else {}
    given = config.get("temperature")
    temperature = given if given is not None else (DEFAULT_TEMPERATURE if k > 1 else 0.0)
    if k == 1 and not temperature:
        return {}
    return {"samples": k, "temperature": float(temperature), "averaged": chat}


def chat_is_standard(spec: dict[str, Any]) -> bool:
    """Whether the benchmark is a conversation by nature: judged answers (chat models' subjective
    benchmarks), turns, a chat benchmark (`prompt.chat`, the reasoning-model forms), or tool
    calling (a served model must answer it through its chat API). Asked through a chat template
    or API is then its standard setting."""
    prompt = spec.get("prompt") or {}
    talks = isinstance(prompt, dict) and bool(prompt.get("turns") or prompt.get("chat"))
    return spec.get("mode") in ("judged", "tool_call") or talks


def column_id(bench: str, setting: Setting, taken: Collection[str]) -> str:
    """`mmlu` for the standard setting, `mmlu@0shot` for a variant; a store may hold any
    benchmark id, so a variant id another column already has is extended until it is free."""
    if setting.standard:
        return bench
    ident = f"{bench}@{setting.suffix}"
    while ident in taken:
        ident += "@"
    return ident
