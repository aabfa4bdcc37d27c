"""Plan and execute a run: render everything first, look up what is stored, compute only the rest.

Rendering comes before the model is loaded, so bad data fails fast; a run whose samples are all in
the store does not load the model at all.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gnomon import __version__
from gnomon.data import load_split
from gnomon.engines import ApiSettings, ModelRef, load_engine, model_key
from gnomon.engines.base import Engine, FailedResult
from gnomon.errors import UserError
from gnomon.hub.spec import BenchmarkSpec
from gnomon.modes import Mode, mode_for
from gnomon.prompts import ChatFormat, Renderer, Sample
from gnomon.store import ResultRow, Store, result_key


class Interrupted(UserError):
    exit_code = 130


@dataclass
class RunOptions:
    model: ModelRef
    specs: list[BenchmarkSpec]
    store_path: Path
    data_dir: Path | None = None
    shots: int | None = None
    limit: int | None = None
    batch_size: int = 8
    device: str = "auto"
    dtype: str = "auto"
    samples: int = 1  # completions per problem (code benchmarks: pass@k)
    temperature: float | None = None
    api: ApiSettings | None = None  # for `openai:` models
    choice_by_generation: bool = False  # for endpoints without prompt logprobs
    chat: bool = False  # local models: prompts through the tokenizer's chat template
    system_prompt: str | None = None


@dataclass
class BenchPlan:
    spec: BenchmarkSpec
    mode: Mode
    shots: int
    prompt_hash: str
    samples: list[Sample]
    keys: list[str]
    todo: list[int] = field(default_factory=list)  # positions in `samples` still to compute


@dataclass
class RunOutcome:
    run_id: str
    planned: int
    reused: int
    computed: int
    seconds: float
    tokens: int
    engine: dict[str, str]


# progress(bench, total) returns an `advance(n)` callback for that benchmark's work
ProgressFactory = Callable[[str, int], Callable[[int], None]]


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
) -> BenchPlan:
    renderer = Renderer(spec, shots, chat)
    rows = load_split(spec, spec.source.eval_split, data_dir)
    if limit is not None:
        rows = rows[:limit]
    if not rows:
        raise UserError(f"{spec.id}: split {spec.source.eval_split!r} has no rows")
    fewshot_rows = []
    if renderer.shots:
        split = spec.fewshot.split or spec.source.eval_split
        fewshot_rows = load_split(spec, split, data_dir)
    same_split = spec.fewshot.split == spec.source.eval_split
    samples = renderer.render(rows, fewshot_rows, same_split)
    mode = mode_for(spec, completions, temperature, choice_by_generation)
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
    return BenchPlan(spec, mode, renderer.shots, prompt_hash, samples, keys)


def resolved_dtype(device: str, dtype: str) -> str:
    from gnomon.engines.hf import resolve_device, resolve_dtype

    return str(resolve_dtype(dtype, resolve_device(device))).removeprefix("torch.")


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def execute(
    options: RunOptions,
    store: Store,
    progress: ProgressFactory,
    log: Callable[[str], None],
) -> RunOutcome:
    started = time.monotonic()
    served = options.model.engine == "openai"
    dtype = "served" if served else resolved_dtype(options.device, options.dtype)
    if not served and options.api and options.api.model_id is not None:
        raise UserError("--model-id names a served model; local models are named by their files")
    model_id = model_key(options.model, dtype, options.api)
    chat = None
    if options.chat:
        if options.model.engine != "hf":
            raise UserError("--chat formats prompts for local models; served ones use --chat-api")
        from gnomon.engines.hf import chat_format

        chat = chat_format(options.model.name, options.model.revision, options.system_prompt)
    plans = [
        plan_bench(
            s,
            options.data_dir,
            options.shots,
            options.limit,
            model_id,
            completions=options.samples,
            temperature=options.temperature,
            choice_by_generation=options.choice_by_generation,
            chat=chat,
        )
        for s in options.specs
    ]
    for plan in plans:
        stored = store.existing(plan.keys)
        plan.todo = [i for i, k in enumerate(plan.keys) if k not in stored]
    planned = sum(len(p.samples) for p in plans)
    todo = sum(len(p.todo) for p in plans)
    engine: Engine | None = None
    if todo:  # loaded before the run is recorded: a model that cannot load leaves no run behind
        log(f"loading {options.model.display} ({options.device}, {dtype})")
        engine = load_engine(
            options.model, device=options.device, dtype=dtype, batch_size=options.batch_size,
            api=options.api,
        )  # fmt: skip
    run_id = new_run_id()
    config = {
        "model": options.model.display,
        "revision": options.model.revision,
        "benches": [p.spec.id for p in plans],
        "shots": options.shots,
        "limit": options.limit,
        "data_dir": str(options.data_dir) if options.data_dir else None,
        "device": options.device,
        "dtype": dtype,
        "batch_size": options.batch_size,
        "base_url": options.api.base_url if options.api else None,
        "chat_api": options.api.chat if options.api else None,
        "served_model_id": options.api.model_id if options.api else None,
        "choice_scored_by": "generation" if options.choice_by_generation else "loglikelihood",
        "chat_template": bool(chat),
        "system_prompt": options.system_prompt,
        "samples": options.samples,
        "temperature": options.temperature,
    }
    store.begin_run(run_id, options.model.display, model_id, config, __version__)
    reused = 0
    for plan in plans:
        reused += store.add_bench(
            run_id, plan.spec.id, plan.spec.version, plan.prompt_hash, plan.shots, plan.keys,
            plan.spec.model_dump(),
        )  # fmt: skip
    log(f"run {run_id}: {planned} samples, {reused} reused from the store, {todo} to compute")

    computed = 0
    status = "failed"
    try:
        for plan in plans:
            if plan.todo and engine is not None:
                computed += _compute(plan, engine, store, run_id, model_id, progress)
        status = "incomplete" if store.failures(run_id) else "complete"
    except KeyboardInterrupt:
        status = "interrupted"
        raise Interrupted(
            f"interrupted: {reused + computed} of {planned} samples are in {store.path}; "
            "run the same command again to resume"
        ) from None
    finally:
        store.finish_run(
            run_id,
            status,
            engine=engine.describe() if engine else {},
            planned=planned,
            reused=reused,
            tokens=engine.tokens_computed if engine else 0,
            seconds=time.monotonic() - started,
        )
    store.moments([run_id])  # kept now, so the leaderboard never has to scan this run again
    return RunOutcome(
        run_id,
        planned,
        reused,
        computed,
        time.monotonic() - started,
        engine.tokens_computed if engine else 0,
        engine.describe() if engine else {},
    )


def _compute(
    plan: BenchPlan,
    engine: Engine,
    store: Store,
    run_id: str,
    model_id: str,
    progress: ProgressFactory,
) -> int:
    """Send the missing samples' requests; store each sample as soon as all its answers are in."""
    owners: list[tuple[int, int]] = []  # request -> (sample position, answer slot)
    requests: list[Any] = []
    for pos in plan.todo:
        for slot, req in enumerate(plan.mode.requests(plan.samples[pos])):
            owners.append((pos, slot))
            requests.append(req)
    expected = {pos: 0 for pos in plan.todo}
    for pos, _ in owners:
        expected[pos] += 1
    answers: dict[int, dict[int, Any]] = {pos: {} for pos in plan.todo}
    advance = progress(plan.spec.id, len(requests))
    verb = engine.score if plan.mode.verb == "score" else engine.generate
    written = 0
    for batch in verb(requests):
        done: list[int] = []
        failed: dict[int, str] = {}
        for req_index, answer in batch:
            pos, slot = owners[req_index]
            answers[pos][slot] = answer
            if len(answers[pos]) == expected[pos]:
                reasons = [a.reason for a in answers[pos].values() if isinstance(a, FailedResult)]
                if reasons:
                    failed[pos] = reasons[0]
                else:
                    done.append(pos)
        if failed:
            store.add_failures(
                run_id, plan.spec.id, [(plan.samples[p].sample_id, r) for p, r in failed.items()]
            )
            for pos in failed:
                del answers[pos]
        if done:
            got = [[answers[pos][i] for i in range(expected[pos])] for pos in done]
            results = plan.mode.results(
                [(plan.samples[p], a) for p, a in zip(done, got, strict=True)]
            )
            rows = [
                _row(plan, pos, result, model_id) for pos, result in zip(done, results, strict=True)
            ]
            written += store.add_results(run_id, rows)
            for pos in done:
                del answers[pos]
        advance(len(batch))
    if answers:
        raise RuntimeError(f"{plan.spec.id}: the engine left {len(answers)} samples unanswered")
    return written


def _row(plan: BenchPlan, pos: int, result: dict[str, Any], model_id: str) -> ResultRow:
    sample = plan.samples[pos]
    metrics = result.pop("metrics")
    return ResultRow(
        key=plan.keys[pos],
        model_key=model_id,
        bench=plan.spec.id,
        bench_version=plan.spec.version,
        prompt_hash=plan.prompt_hash,
        sample_id=sample.sample_id,
        index=sample.index,
        cluster=sample.cluster,
        correct=bool(result["correct"]),
        metrics=metrics,
        payload=result,
        prompt=sample.context,
    )
