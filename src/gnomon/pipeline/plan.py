"""Planning: rows become rendered samples, a mode (requests + scorer) and the keys they go under.

Everything here runs before a model is loaded, so bad data fails fast and a run whose answers
are all stored never loads the model.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gnomon import text
from gnomon.data import load_fewshot, load_split
from gnomon.errors import UserError
from gnomon.hub.spec import BenchmarkSpec
from gnomon.modes import Mode, mode_for
from gnomon.pipeline.judging import Judge
from gnomon.prompts import ChatFormat, Renderer, Sample
from gnomon.requests import Request
from gnomon.store import result_key

# How the requests of a run are sent: a chat API gets each prompt as a conversation
RequestShaper = Callable[[Request], Request]


@dataclass
class BenchPlan:
    spec: BenchmarkSpec
    mode: Mode
    shots: int
    prompt_hash: str
    samples: list[Sample]
    sample_keys: list[str]  # what the sample is, whoever answers it (the legacy result key)
    scorer_hash: str
    model_key: str
    shape: RequestShaper | None = None
    headline: str = ""
    headline_note: str | None = None
    judge: str | None = None  # the judge's model key, when the scorer asks one
    judge_runner: Judge | None = None

    def requests(self, sample: Sample, answers: list) -> list[Request]:
        requests = self.mode.stage_requests(sample, answers)
        return [self.shape(r) for r in requests] if self.shape else requests


@dataclass
class Lookup:
    """Where each sample of a plan stands after the store has been read (see `lookup.py`)."""

    reused: list[int] = field(default_factory=list)  # positions whose score is stored
    rescore: list[int] = field(default_factory=list)  # answered, but not by this scorer
    todo: list[int] = field(default_factory=list)  # some answer still to compute


def scorer_hash(mode: Mode, judge: str | None = None) -> str:
    config = {"scorer": mode.scorer_config(), "judge": judge}
    blob = json.dumps(config, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode(blob)).hexdigest()[:16]


def plan_bench(
    spec: BenchmarkSpec,
    data_dir: Path | None,
    shots: int | None,
    limit: int | None,
    model_id: str,
    *,
    completions: int = 1,
    temperature: float | None = None,
    choice_by_generation: bool = False,
    chat: ChatFormat | None = None,
    shape: RequestShaper | None = None,
    judge: Judge | None = None,
    max_tokens: int | None = None,
) -> BenchPlan:
    """`max_tokens` replaces the spec's generation budget (`--max-tokens`): a setting of the
    requests, so it keys new answers and scores, but not the prompt."""
    if spec.mode == "rolling" and (shots or chat is not None):
        raise UserError(
            f"{spec.id} scores each text as it is (a rolling loglikelihood): it takes no "
            "few-shot examples (--shots) and no chat template (--chat)"
        )
    renderer = Renderer(spec, shots, chat)
    rows = load_split(spec, spec.source.eval_split, data_dir)
    if limit is not None:
        rows = rows[:limit]
    if not rows:
        raise UserError(f"{spec.id}: split {spec.source.eval_split!r} has no rows")
    fewshot_rows = []
    if renderer.shots:
        fewshot_rows = load_fewshot(spec, data_dir)
    same_split = spec.fewshot.split == spec.source.eval_split
    samples = renderer.render(rows, fewshot_rows, same_split)
    check_sampling([spec], completions, temperature)
    mode = mode_for(with_budget(spec, max_tokens), completions, temperature, choice_by_generation)
    settings = mode.settings()
    variant = "|".join(
        v for v in (settings.get("variant"), chat and f"chat:{chat.fingerprint}") if v
    )
    prompt_hash = spec.prompt_hash(renderer.shots, variant or None)
    keys = [
        result_key(
            model_id, spec.id, spec.version, prompt_hash, s.sample_id, s.content_hash, settings
        )
        for s in samples
    ]
    if len(set(keys)) != len(keys):
        raise UserError(f"{spec.id}: two rows share a sample id and content; ids must be unique")
    headline, note = mode.headline()
    if mode.judged and judge is None:
        raise UserError(f"{spec.id} is scored by a judge model: name one with --judge")
    judge_key = judge.model_key if mode.judged and judge else None
    return BenchPlan(
        spec, mode, renderer.shots, prompt_hash, samples, keys, scorer_hash(mode, judge_key),
        model_id, shape, headline, note, judge_key, judge if judge_key else None,
    )  # fmt: skip


def check_judge(specs: Sequence[BenchmarkSpec], judge: object | None) -> None:
    """Benchmarks scored by a judge model need one (`--judge`): said for all of them at once,
    before any data is read or any model loads."""
    judged = [s.id for s in specs if s.asks_judge]
    if judged and judge is None:
        are = "is" if len(judged) == 1 else "are"
        raise UserError(f"{', '.join(judged)} {are} scored by a judge model: name one with --judge")


def check_sampling(specs: Sequence[BenchmarkSpec], samples: int, temperature: float | None) -> None:
    """`--samples k` / `--temperature` sample the model's answers where a benchmark averages
    them (code: pass@k, chat: avg@k); a judge scores one greedy answer per prompt, so on a judged
    benchmark they would be ignored, and a run that says it sampled would not have: refused up
    front, naming the option that does repeat there (the judge's own samples)."""
    sampled = samples > 1 or bool(temperature)
    judged = [s.id for s in specs if s.asks_judge]
    if not (sampled and judged):
        return
    given = f"--samples {samples}" if samples > 1 else f"--temperature {temperature:g}"
    are = "is" if len(judged) == 1 else "are"
    raise UserError(
        f"{', '.join(judged)} {are} scored by a judge from one greedy answer per prompt, so "
        f"{given} would be ignored there: run {'it' if len(judged) == 1 else 'them'} without it "
        "(--judge-samples K rates each answer K times, for the judge's spread)"
    )


def with_budget(spec: BenchmarkSpec, max_tokens: int | None) -> BenchmarkSpec:
    """The spec with another generation budget, where it generates and one is given."""
    if max_tokens is None or spec.generation is None:
        return spec
    generation = spec.generation.model_copy(update={"max_tokens": max_tokens})
    return spec.model_copy(update={"generation": generation})


def score_key(plan: BenchPlan, pos: int, answer_keys: list[str]) -> str:
    """A score is named by what was scored (the sample and its exact answers) and how."""
    sample = plan.samples[pos]
    blob = json.dumps(
        [
            "score", plan.spec.id, plan.spec.version, plan.prompt_hash, sample.sample_id,
            sample.content_hash, answer_keys, plan.scorer_hash,
        ],
        ensure_ascii=False,
    )  # fmt: skip
    return hashlib.sha256(text.encode(blob)).hexdigest()
