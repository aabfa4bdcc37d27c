"""The `gnomon` command: parse, call the library, print. User errors are one line, no traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.text import Text

from gnomon import cli_judge_options as judging
from gnomon.cli_browse import hub_app, runs_app
from gnomon.cli_judges import judge_agreement
from gnomon.cli_output import print_reports, quiet_libraries
from gnomon.console import StoreOpt, default_store, err, out
from gnomon.errors import UserError
from gnomon.rank.commands import rank_app
from gnomon.serve import DEFAULT_MAX_QUEUE, DEFAULT_QUEUE_TIMEOUT, check_port

if TYPE_CHECKING:  # the CLI imports the heavy modules lazily, per command
    from rich.progress import Progress

    from gnomon.run import RunOptions, RunOutcome
    from gnomon.store import Store

app = typer.Typer(
    help="Evaluate foundation models on benchmarks; every sample is stored, runs resume.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(hub_app, name="hub")
app.add_typer(runs_app, name="runs")
app.add_typer(rank_app, name="rank")
app.command("judge-agreement")(judge_agreement)


JudgeOpt = Annotated[
    str | None,
    typer.Option(
        help="the judge model for judged benchmarks: openai:NAME, hf:DIR, hf:FILE.gguf, a hub id"
    ),
]
JudgeBaseUrlOpt = Annotated[
    str | None, typer.Option(help="an openai: judge's server, e.g. http://host:8000/v1")
]
JudgeKeyEnvOpt = Annotated[
    str, typer.Option(help="an openai: judge's API key: the environment variable holding it")
]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(
        min=1, help="torch intra-op threads; default: chosen from the cores other work leaves free"
    ),
]
JudgeModelIdOpt = Annotated[
    str | None,
    typer.Option(help="an openai: judge's identity in the store, wherever it is served"),
]
JudgeRetriesOpt = Annotated[
    int | None,
    typer.Option(
        min=0,
        help="an openai: judge's retries of a failed request \\[run: --max-retries; score: 6]",
    ),
]
JudgeTimeoutOpt = Annotated[
    float | None,
    typer.Option(
        min=0.001, help="an openai: judge's seconds for one request \\[run: --timeout; score: 60]"
    ),
]
JudgeSamplesOpt = Annotated[
    int | None,
    typer.Option(
        min=1, max=100, help="rating judges: rate each answer K times, sampling, and report "
        "the ratings' mean and their spread (rating_spread) \\[the spec's, default 1]",
    ),
]  # fmt: skip


def _progress_factory(progress: Progress) -> Callable[[str, int], Callable[[int], None]]:
    def start(bench: str, total: int) -> Callable[[int], None]:
        task = progress.add_task(bench, total=total)
        return lambda n: progress.advance(task, n)

    return start


@app.command()
def run(
    model: Annotated[str, typer.Option("--model", "-m", help="hf:HUB_ID, hf:DIR, hf:FILE.gguf")],
    bench: Annotated[str, typer.Option("--bench", "-b", help="comma-separated ids or spec files")],
    data: Annotated[
        Path | None, typer.Option(help="read rows from DIR/<split>.jsonl (or DIR/<bench>/)")
    ] = None,
    shots: Annotated[int | None, typer.Option(min=0, help="override the few-shot count")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="first N rows of each benchmark")] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 8,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N")] = "auto",
    dtype: Annotated[str, typer.Option(help="auto, float32, bfloat16, float16")] = "auto",
    threads: ThreadsOpt = None,
    revision: Annotated[str | None, typer.Option(help="hub revision of the model")] = None,
    samples: Annotated[
        int,
        typer.Option(
            min=1,
            help="completions per problem: code benchmarks (pass@k), chat benchmarks (avg@k)",
        ),
    ] = 1,
    temperature: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="sampling temperature for code and chat benchmarks [0 if --samples 1, else 0.8]",
        ),
    ] = None,
    max_tokens: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="tokens each generation may use, for every generating benchmark of the run "
            "\\[each spec's own budget]",
        ),
    ] = None,
    store: StoreOpt = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="write results.json and samples.jsonl here")
    ] = None,
    base_url: Annotated[
        str | None, typer.Option(help="openai: models: the server, e.g. http://host:8000/v1")
    ] = None,
    api_key_env: Annotated[
        str, typer.Option(help="openai: models: environment variable holding the API key")
    ] = "OPENAI_API_KEY",
    api_key_file: Annotated[
        Path | None, typer.Option(help="openai: models: a file holding the API key")
    ] = None,
    chat_api: Annotated[
        bool, typer.Option("--chat-api", help="openai: models: use chat completions")
    ] = False,
    concurrency: Annotated[int, typer.Option(min=1, help="openai: requests in flight")] = 8,
    rpm: Annotated[float | None, typer.Option(min=0.001, help="openai: requests/minute")] = None,
    tpm: Annotated[float | None, typer.Option(min=0.001, help="openai: tokens/minute")] = None,
    max_retries: Annotated[
        int, typer.Option(min=0, help="openai: retries of a failed request before it is a failure")
    ] = 6,
    timeout: Annotated[
        float,
        typer.Option(
            min=0.001, help="openai: seconds for one request, sent to fully answered (not queued)"
        ),
    ] = 60.0,
    model_id: Annotated[
        str | None,
        typer.Option(
            help="openai: the served model's identity in the store (e.g. the checkpoint it "
            "serves); results are reused wherever it is served [NAME@URL]"
        ),
    ] = None,
    choice_by: Annotated[
        str,
        typer.Option(
            help="choice benchmarks: loglikelihood, or generation (the model writes a letter; "
            "for endpoints without prompt logprobs) [auto: generation with --chat-api]"
        ),
    ] = "auto",
    chat: Annotated[
        bool, typer.Option("--chat", help="local models: use the tokenizer's chat template")
    ] = False,
    system_prompt: Annotated[
        str | None, typer.Option(help="with --chat: a system message before the examples")
    ] = None,
    judge: JudgeOpt = None,
    judge_base_url: JudgeBaseUrlOpt = None,
    judge_api_key_env: JudgeKeyEnvOpt = "OPENAI_API_KEY",
    judge_model_id: JudgeModelIdOpt = None,
    judge_samples: JudgeSamplesOpt = None,
    judge_max_retries: JudgeRetriesOpt = None,
    judge_timeout: JudgeTimeoutOpt = None,
) -> None:
    """Evaluate a model on benchmarks; finished samples are reused, never recomputed."""
    from gnomon.engines import ApiSettings, parse_model
    from gnomon.hub import resolve_many
    from gnomon.run import RunOptions

    api = ApiSettings(base_url, api_key_env, api_key_file, chat_api, concurrency, rpm, tpm,
                      max_retries=max_retries, timeout=timeout, model_id=model_id)  # fmt: skip
    judge_ref, judge_api = judging.judge_options(
        judge, judge_base_url, judge_api_key_env, judge_model_id,
        max_retries=max_retries if judge_max_retries is None else judge_max_retries,
        timeout=timeout if judge_timeout is None else judge_timeout,
        own_limits=judge_max_retries is not None or judge_timeout is not None,
    )  # fmt: skip
    options = RunOptions(
        model=parse_model(model, revision),
        specs=judging.judge_samples(resolve_many(bench), judge_samples),
        store_path=store or default_store(),
        data_dir=data,
        shots=shots,
        limit=limit,
        batch_size=batch_size,
        device=device,
        dtype=dtype,
        samples=samples,
        temperature=temperature,
        api=api,
        choice_by_generation=_choice_by_generation(choice_by, chat_api),
        chat=chat,
        system_prompt=system_prompt,
        judge=judge_ref,
        judge_api=judge_api,
        threads=threads,
        max_tokens=max_tokens,
    )
    if data is not None and not data.is_dir():
        raise UserError(f"--data {data}: not a directory")
    hub_data = data is None and any(s.source.files is None for s in options.specs)
    local_judge = options.judge is None or options.judge.local or options.judge.engine == "openai"
    quiet_libraries(needs_hub=hub_data or not options.model.local or not local_judge)
    _run_and_report(options, out_dir)


def _choice_by_generation(choice_by: str, chat_api: bool) -> bool:
    if choice_by not in ("auto", "loglikelihood", "generation"):
        raise UserError(f"--choice-by {choice_by!r}: choose auto, loglikelihood or generation")
    return choice_by == "generation" or (choice_by == "auto" and chat_api)


def _run_and_report(options: RunOptions, out_dir: Path | None) -> None:
    from gnomon.run import execute
    from gnomon.store import Store

    db = Store(options.store_path)
    try:
        with _progress() as progress:
            outcome = execute(options, db, _progress_factory(progress), err.print)
        _report(db, outcome, options.model.display, out_dir)
    finally:
        db.close()


def _progress() -> Progress:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )


def _report(db: Store, outcome: RunOutcome, model: str, out_dir: Path | None) -> None:
    from gnomon.report import bench_reports, write_outputs

    reports = bench_reports(db, outcome.run_id)
    print_reports(reports, f"{model}  (run {outcome.run_id})")
    out.print(
        f"{outcome.planned} samples: {outcome.reused} reused from the store, "
        f"{outcome.rescored} re-scored from stored answers, "
        f"{outcome.computed} computed in {outcome.seconds:.1f}s"
        + (f", {outcome.tokens} tokens through the model" if outcome.tokens else "")
    )
    failures = db.failures(outcome.run_id)
    if failures:
        first = failures[0]
        reason = first["reason"]  # a failed judgment's holds every raw reply: shown in full by
        if len(reason) > 300:  # `gnomon runs show` and results.json
            reason = reason[:297] + "..."
        out.print(
            f"{len(failures)} samples could not be answered and are not scored "
            f"(e.g. {first['bench']} {first['sample_id']}: {reason}); "
            + judging.retry_hint(failures)
        )
    out.print(f"store: {db.path}")
    if out_dir is not None:
        write_outputs(db, outcome.run_id, out_dir, reports)
        out.print(f"wrote {out_dir / 'results.json'} and {out_dir / 'samples.jsonl'}")


@app.command("score")
def score(
    answers: Annotated[
        Path, typer.Argument(help='JSONL of {"sample_id", "output"}; several per sample for pass@k')
    ],
    bench: Annotated[str, typer.Option("--bench", "-b", help="a benchmark id or spec file")],
    data: Annotated[Path | None, typer.Option(help="read the benchmark's rows from DIR")] = None,
    choice_by: Annotated[
        str,
        typer.Option(help="choice benchmarks: generation reads the answer's letter"),
    ] = "loglikelihood",
    store: StoreOpt = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="write results.json, samples.jsonl")
    ] = None,
    judge: JudgeOpt = None,
    judge_base_url: JudgeBaseUrlOpt = None,
    judge_api_key_env: JudgeKeyEnvOpt = "OPENAI_API_KEY",
    judge_model_id: JudgeModelIdOpt = None,
    judge_samples: JudgeSamplesOpt = None,
    device: Annotated[str, typer.Option(help="a local judge: auto, cpu, cuda, cuda:N")] = "auto",
    threads: ThreadsOpt = None,
    judge_max_retries: JudgeRetriesOpt = None,
    judge_timeout: JudgeTimeoutOpt = None,
) -> None:
    """Score answers made by another tool with the benchmark's own scorer, and store them."""
    from gnomon.hub import resolve
    from gnomon.run import make_judge
    from gnomon.score_file import score_file
    from gnomon.store import Store

    judge_ref, judge_api = judging.judge_options(
        judge, judge_base_url, judge_api_key_env, judge_model_id,
        max_retries=judge_max_retries, timeout=judge_timeout,
        own_limits=judge_max_retries is not None or judge_timeout is not None,
    )  # fmt: skip
    quiet_libraries(needs_hub=judge_ref is not None and not judge_ref.local)
    (spec,) = judging.judge_samples([resolve(bench)], judge_samples)
    by_generation = _choice_by_generation(choice_by, False)
    store_path = store or default_store()
    runner = None
    if judge_ref is not None:
        runner = make_judge(judge_ref, judge_api, store_path, device=device, threads=threads)
    db = Store(store_path)
    try:
        outcome = score_file(
            spec, answers, db, data, err.print, choice_by_generation=by_generation, judge=runner
        )
        _report(db, outcome, f"file:{answers}", out_dir)
    finally:
        db.close()


@app.command("score-code", hidden=True)
def score_code(
    completions: Annotated[Path, typer.Argument(help='JSONL of {"task_id", "completion"}')],
    bench: Annotated[str, typer.Option("--bench", "-b", help="a code benchmark id or spec file")],
    data: Annotated[Path | None, typer.Option(help="read the benchmark's rows from DIR")] = None,
    store: StoreOpt = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="write results.json, samples.jsonl")
    ] = None,
) -> None:
    """The former name of `gnomon score`, for code benchmarks."""
    score(completions, bench, data, "loglikelihood", store, out_dir, None, None,
          "OPENAI_API_KEY", None, None, "auto", None)  # fmt: skip


@app.command()
def serve(
    model: Annotated[str, typer.Option("--model", "-m", help="hf:HUB_ID, hf:DIR, hf:FILE.gguf")],
    host: Annotated[str, typer.Option(help="bind address; loopback by default")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535)] = 8000,
    name: Annotated[
        str | None, typer.Option(help="model id clients send [the --model value]")
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="GNOMON_API_KEY", help="require Authorization: Bearer KEY"),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N")] = "auto",
    dtype: Annotated[str, typer.Option(help="auto, float32, bfloat16, float16")] = "auto",
    threads: ThreadsOpt = None,
    revision: Annotated[str | None, typer.Option(help="hub revision of the model")] = None,
    max_queue: Annotated[
        int,
        typer.Option(
            min=0,
            help="requests that may wait behind the running one; beyond, 503 with Retry-After",
        ),
    ] = DEFAULT_MAX_QUEUE,
    queue_timeout: Annotated[
        float,
        typer.Option(
            min=0.1, help="seconds a request may wait to start before it gets 503 with Retry-After"
        ),
    ] = DEFAULT_QUEUE_TIMEOUT,
) -> None:
    """Serve a model with an OpenAI-compatible API (/v1/completions, /v1/chat/completions).

    One request computes at a time; a client that disconnects has its work stopped, and
    SIGTERM or Ctrl-C cancels running and queued work and exits within seconds.
    """
    from gnomon.engines import load_engine, parse_model
    from gnomon.engines.hf import HFEngine
    from gnomon.serve.runner import serve as serve_app

    ref = parse_model(model, revision)
    if ref.engine != "hf":  # serve drives a local model token by token
        raise UserError(f"gnomon serve serves local models (hf:), not {ref.engine}: models")
    check_port(host, port)
    quiet_libraries(needs_hub=not ref.local)
    engine = load_engine(ref, device=device, dtype=dtype, batch_size=1, threads=threads)
    assert isinstance(engine, HFEngine)  # the hf engine kind loads an HFEngine
    err.print(f"serving {ref.display} as {name or model!r} on http://{host}:{port}/v1")
    stopped = serve_app(
        engine,
        name or model,
        host=host,
        port=port,
        api_key=api_key,
        max_queue=max_queue,
        queue_timeout=queue_timeout,
    )
    err.print(stopped.describe())


@app.command()
def demo(
    workdir: Annotated[
        Path, typer.Option("--dir", help="where the tiny model and data are built")
    ] = Path(".demo"),
    store: StoreOpt = None,
    bench: Annotated[
        str, typer.Option(help="benchmarks to run")
    ] = "mmlu,arc_easy,arc_challenge,hellaswag,gsm8k",
    batch_size: Annotated[int, typer.Option(min=1)] = 8,
) -> None:
    """Offline end-to-end run: build a tiny random-weight Llama and synthetic data, evaluate it."""
    quiet_libraries(needs_hub=False)
    from gnomon import tiny
    from gnomon.engines import parse_model
    from gnomon.hub import resolve_many
    from gnomon.run import RunOptions

    model_dir, data_dir = workdir / "model", workdir / "data"
    if not (model_dir / "config.json").is_file():
        err.print(f"building a tiny Llama-architecture model with random weights in {model_dir}")
        tiny.build_model(model_dir, "llama", hidden_size=128, num_layers=2, vocab_size=2048)
    if not data_dir.is_dir():
        err.print(
            f"writing synthetic benchmark rows (the real schemas, made-up text) in {data_dir}"
        )
        tiny.write_synthetic_data(data_dir)
    err.print(
        Text.assemble(
            ("offline demo", "bold"),
            ": the model is random and the data synthetic, so scores sit near chance; "
            "the code path is the one a real model takes",
        )
    )
    options = RunOptions(
        model=parse_model(str(model_dir.resolve())),
        specs=resolve_many(bench),
        store_path=store or workdir / "store.sqlite",
        data_dir=data_dir,
        batch_size=batch_size,
        device="cpu",
        dtype="float32",
    )
    _run_and_report(options, workdir / "out")
    err.print(
        f"the leaderboard of this store: gnomon rank --store {options.store_path}  "
        f"(web app: gnomon rank serve --store {options.store_path})"
    )


def _fail(message: str, code: int) -> NoReturn:
    """One line on stderr, verbatim (no markup, no wrapping), then the exit code."""
    err.print(Text.assemble(("error:", "bold red"), " " + message), soft_wrap=True)
    sys.exit(code)


def main() -> None:
    try:
        code = app(standalone_mode=False)
    except UserError as exc:
        _fail(str(exc), exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        _fail("interrupted: nothing was left half-written; re-run to resume", 130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # usage errors: bad or missing options
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        _fail(" ".join(message.split()), getattr(exc, "exit_code", 2))
    if code == 130:  # typer turns Ctrl-C into an exit code outside standalone mode
        _fail("interrupted: nothing was left half-written; re-run to resume", 130)
    if isinstance(code, int) and code:
        sys.exit(code)
