"""A run, start to end: plan, look up, load, record, compute, finish.

Rendering comes before the model is loaded, so bad data fails fast. Stored answers are reused
and stored scores too; answers whose scorer changed are re-scored without the model, and a run
whose answers are all stored does not load the model at all.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gnomon import __version__
from gnomon.engines import ApiSettings, ModelRef, load_engine, model_key
from gnomon.engines.devices import dtype_name
from gnomon.engines.refs import check_threads
from gnomon.errors import UserError
from gnomon.hub.spec import BenchmarkSpec
from gnomon.pipeline.compute import compute, rescore
from gnomon.pipeline.executor import Executor, InProcess
from gnomon.pipeline.judging import Judge
from gnomon.pipeline.lookup import PlanState, look_up
from gnomon.pipeline.plan import BenchPlan, check_judge, check_sampling, plan_bench
from gnomon.requests import Request, as_chat
from gnomon.store import Store

__all__ = ["BenchPlan", "RunOptions", "RunOutcome", "execute", "make_judge", "new_run_id"]
__all__ += ["plan_bench"]


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
    judge: ModelRef | None = None  # the model judged benchmarks ask for verdicts
    judge_api: ApiSettings | None = None  # for an `openai:` judge
    threads: int | None = None  # torch threads of a local model or judge (None: engine's choice)
    max_tokens: int | None = None  # every generating benchmark's token budget (None: its spec's)

    def __post_init__(self) -> None:
        check_threads(self.threads)  # now, not at load: a stored run loads nothing
        check_max_tokens(self.max_tokens)


@dataclass
class RunOutcome:
    run_id: str
    planned: int
    reused: int
    computed: int
    seconds: float
    tokens: int
    engine: dict[str, str]
    rescored: int = 0  # scored from answers already stored


# progress(bench, total) returns an `advance(n)` callback for that benchmark's work
ProgressFactory = Callable[[str, int], Callable[[int], None]]


def resolved_dtype(device: str, dtype: str) -> str:
    """The dtype part of a local model's key; torch is imported only if a GPU may decide it."""
    return dtype_name(device, dtype)


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def _shaper(options: RunOptions) -> Callable[[Request], Request] | None:
    """A chat API is sent conversations: the request (and so the answer's key) says so."""
    if options.api is None or not options.api.chat or options.model.engine != "openai":
        return None

    def shape(request: Request) -> Request:
        from gnomon.engines.base import GenerateRequest

        return as_chat(request) if isinstance(request, GenerateRequest) else request

    return shape


def _judge(options: RunOptions) -> Judge | None:
    if options.judge is None:
        return None
    return make_judge(
        options.judge, options.judge_api, options.store_path, device=options.device,
        dtype=options.dtype, batch_size=options.batch_size, threads=options.threads,
    )  # fmt: skip


def make_judge(
    ref: ModelRef,
    api: ApiSettings | None,
    store_path: Path,
    *,
    device: str = "auto",
    dtype: str = "auto",
    batch_size: int = 8,
    threads: int | None = None,
) -> Judge:
    """The judge, named for the store without loading it: loaded on the first verdict that is
    not stored yet. A served judge is asked through the chat API."""
    served = ref.engine == "openai"
    if not served and api is not None and api.model_id is not None:
        raise UserError("--judge-model-id names a served judge; local ones are named by files")
    check_threads(threads)
    dtype = "served" if served else resolved_dtype(device, dtype)
    api = api or ApiSettings()
    if served and not api.chat:
        api = dataclasses.replace(api, chat=True)

    def load() -> Executor:
        engine = load_engine(
            ref, device=device, dtype=dtype, batch_size=batch_size, api=api, threads=threads
        )
        return InProcess(engine)

    # a local judge decodes greedily as a function of its prompt: asking again changes nothing
    return Judge(model_key(ref, dtype, api), load, store_path, greedy_repeats=not served)


def _plans(options: RunOptions, model_id: str) -> list[BenchPlan]:
    check_judge(options.specs, options.judge)  # a suite's judged benchmarks too, up front
    check_sampling(options.specs, options.samples, options.temperature)
    chat = None
    if options.chat:
        if options.model.engine != "hf":
            raise UserError("--chat formats prompts for local models; served ones use --chat-api")
        from gnomon.engines.hf import chat_format

        chat = chat_format(options.model.name, options.model.revision, options.system_prompt)
    talks = [s for s in options.specs if s.conversation]
    if talks and options.model.engine == "openai" and not (options.api and options.api.chat):
        raise UserError(
            f"{talks[0].id} is {_conversation(talks[0])}: a served model answers it through "
            "its chat API; add --chat-api"
        )
    tooled = [s.id for s in options.specs if s.mode == "tool_call"]
    if tooled and options.model.engine == "openai" and not (options.api and options.api.chat):
        raise UserError(
            f"{tooled[0]} gives the model tools to call: a served model answers it through its "
            "chat API; add --chat-api"
        )
    chats = [s for s in options.specs if s.conversation or s.mode == "tool_call"]
    if chats and options.model.engine == "hf" and chat is None:
        from gnomon.engines.hf import chat_format

        try:  # before any model loads: a base model cannot take a chat benchmark, nor tools
            chat_format(options.model.name, options.model.revision, None)
        except UserError as exc:
            raise UserError(
                f"{chats[0].id} is {_conversation(chats[0])}, asked through the model's chat "
                f"template, and {options.model.display} has none ({exc}); use a chat model"
            ) from None
    rolling = [s.id for s in options.specs if s.mode == "rolling"]
    if rolling and options.model.engine == "openai":
        raise UserError(
            f"{rolling[0]} scores whole texts in windows of the model's tokens, which a served "
            "model does not expose; run the model locally with --model hf:..."
        )
    shape = _shaper(options)
    judge = _judge(options)
    return [
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
            shape=shape,
            judge=judge,
            max_tokens=options.max_tokens,
        )  # fmt: skip
        for s in options.specs
    ]


def _conversation(spec: BenchmarkSpec) -> str:
    if spec.mode == "tool_call":
        return "a conversation with tools to call (mode: tool_call)"
    if spec.prompt.turns:
        return "a conversation (prompt.turns)"
    return "a chat benchmark (prompt.chat)"


def check_max_tokens(value: int | None) -> None:
    """`--max-tokens` is a whole number of tokens to generate, at least one."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise UserError(f"--max-tokens {value!r}: give a whole number of tokens, at least 1")


def _config(options: RunOptions, plans: list[BenchPlan], dtype: str) -> dict[str, object]:
    return {
        "model": options.model.display,
        "revision": options.model.revision,
        "benches": [p.spec.id for p in plans],
        "shots": options.shots,
        "limit": options.limit,
        "data_dir": str(options.data_dir) if options.data_dir else None,
        "device": options.device,
        "dtype": dtype,
        "batch_size": options.batch_size,
        "threads": options.threads,
        "base_url": options.api.base_url if options.api else None,
        "chat_api": options.api.chat if options.api else None,
        "served_model_id": options.api.model_id if options.api else None,
        "choice_scored_by": "generation" if options.choice_by_generation else "loglikelihood",
        "chat_template": options.chat,
        "system_prompt": options.system_prompt,
        "samples": options.samples,
        "temperature": options.temperature,
        "max_tokens": options.max_tokens,
        "judge": options.judge.display if options.judge else None,
        "judge_base_url": options.judge_api.base_url if options.judge_api else None,
    }


def record_plans(store: Store, run_id: str, plans: list[BenchPlan], states: list[PlanState]) -> int:
    """The run's benchmarks, and links to the scores it reuses; returns how many."""
    reused = 0
    for plan, state in zip(plans, states, strict=True):
        reused += store.add_bench(
            run_id, plan.spec.id, plan.spec.version, plan.prompt_hash, plan.shots,
            state.reused_keys, plan.spec.model_dump(), planned=len(plan.samples),
            scorer_hash=plan.scorer_hash, headline=plan.headline,
            headline_note=plan.headline_note, judge=plan.judge,
        )  # fmt: skip
    return reused


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
    plans = _plans(options, model_id)  # plan
    chat_api = bool(options.api and options.api.chat and served)
    states = [look_up(plan, store, chat_api=chat_api) for plan in plans]  # look up
    planned = sum(len(p.samples) for p in plans)
    todo = sum(len(s.lookup.todo) for s in states)
    to_rescore = sum(len(s.lookup.rescore) for s in states)
    executor: Executor | None = None
    if todo:  # load, before the run is recorded: a model that cannot load leaves no run behind
        log(f"loading {options.model.display} ({options.device}, {dtype})")
        engine = load_engine(
            options.model, device=options.device, dtype=dtype, batch_size=options.batch_size,
            api=options.api, threads=options.threads,
        )  # fmt: skip
        executor = InProcess(engine)
    run_id = new_run_id()  # record
    store.begin_run(run_id, options.model.display, model_id, _config(options, plans, dtype),
                    __version__)  # fmt: skip
    reused = record_plans(store, run_id, plans, states)
    log(
        f"run {run_id}: {planned} samples, {reused} scores reused from the store, "
        f"{to_rescore} to re-score from stored answers, {todo} to compute"
    )
    computed = rescored = 0
    status = "failed"
    try:  # compute
        for plan, state in zip(plans, states, strict=True):
            if state.lookup.rescore:
                rescored += rescore(plan, state, store, run_id)
            if state.lookup.todo and executor is not None:
                computed += compute(
                    plan, state, executor, store, run_id,
                    progress,
                )  # fmt: skip
        status = "incomplete" if store.failures(run_id) else "complete"
    except KeyboardInterrupt:
        status = "interrupted"
        raise Interrupted(
            f"interrupted: {reused + rescored + computed} of {planned} samples are in "
            f"{store.path}; run the same command again to resume"
        ) from None
    finally:  # finish
        store.finish_run(
            run_id,
            status,
            engine=executor.describe() if executor else {},
            planned=planned,
            reused=reused,
            tokens=executor.tokens_computed if executor else 0,
            seconds=time.monotonic() - started,
        )
    store.moments([run_id])  # kept now, so the leaderboard never has to scan this run again
    return RunOutcome(
        run_id, planned, reused, computed, time.monotonic() - started,
        executor.tokens_computed if executor else 0,
        executor.describe() if executor else {}, rescored,
    )  # fmt: skip
