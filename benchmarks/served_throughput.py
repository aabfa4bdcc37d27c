#!/usr/bin/env python
"""Served throughput: requests/s and the client's overhead per request against `gnomon serve`.

    python benchmarks/served_throughput.py                       # 200 score requests, c=1,4,16
    python benchmarks/served_throughput.py --generate            # also 50 generations of 8 tokens
    python benchmarks/served_throughput.py --concurrency 1 8 --repeats 5 --json out.json
    python benchmarks/served_throughput.py --requests 40 --repeats 1     # a quick look

A tiny Llama is built offline with `gnomon.tiny.build_model` (into `--dir`, default
`.bench/served/`, git-ignored) and served by a real `gnomon serve` subprocess on a free loopback
port, so the figures include uvicorn, FastAPI and the JSON bodies exactly as users get them. The
model is tiny on purpose: the forward pass is cheap, so what is measured is mostly the HTTP path.

Three runners do the same requests (short MMLU-like prompts scored with a " A" continuation; with
`--generate`, greedy generations of 8 tokens) in the same run:

- engine: gnomon's `OpenAIEngine` with `concurrency=C`, as `gnomon run --model openai:...` uses it.
- plain httpx: one `httpx.AsyncClient`, the same JSON bodies, at most C in flight (asyncio and a
  semaphore), no retries, no rate limits, no result parsing beyond `response.json()`. This is
  the lower bound any Python client pays, so "client overhead per request" is
  (engine wall time - plain httpx wall time) / N.
- in-process: `HFEngine.score`/`.generate` in this process, batch size 1 and no shared-prefix
  cache, i.e. one forward pass per request as the server does: the cost without HTTP. "HTTP +
  server overhead per request" is (plain httpx wall time - in-process wall time) / N.

Both HTTP runners start a fresh event loop and client per run (the engine does that on every
`score` call), and their wall time includes it. Latency is measured per request from sending it
(after the concurrency slot is taken) to having its JSON body parsed; for the engine this is done
by a thin subclass that wraps the client's `post` and the engine's `_read`. In-process latency is
the time between consecutive results. The server serialises model work behind one lock, so
concurrency only overlaps the HTTP and JSON work with the model's.

Each repeat runs the runners in a rotated order; medians over repeats are reported. The engine's
results must equal the in-process ones (log-probabilities to 1e-4, same `is_greedy`; identical
generated text) in every repeat, otherwise the differences are printed and the script exits 1.
The server is stopped at the end, also when something fails.

`--threads` (default 1) sets the intra-op threads of both the server (`OMP_NUM_THREADS`,
`MKL_NUM_THREADS`) and the in-process engine (`torch.set_num_threads`), so both do the same work
per request. One thread, because the server, the client's event loop and the in-process engine
share the host's cores: with torch's default (one thread a core) OpenMP threads spin-wait on
cores the client needs, and on a small host the figures swing by 10-100x from run to run. `0`
keeps torch's default.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import json
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
import torch

from gnomon.engines.base import (
    Engine,
    FailedResult,
    GenerateRequest,
    GenerateResult,
    ScoreRequest,
    ScoreResult,
)
from gnomon.engines.hf import HFEngine
from gnomon.engines.openai import MAX_STOP, OpenAIEngine
from gnomon.tiny import ADJECTIVES, MMLU_SUBJECTS, NOUNS, VERBS, build_model

MODEL_NAME = "tiny-llama"
TOLERANCE = 1e-4
GENERATE_UNTIL = ("\n\n",)
Result = ScoreResult | GenerateResult | FailedResult


# ---------------------------------------------------------------------------------- requests
def score_requests(n: int, seed: int = 0) -> list[ScoreRequest]:
    """Short MMLU-shaped prompts (header, question, four options, "Answer:") made of words the
    tiny tokenizer knows, so they tokenise like text rather than like stray bytes."""
    rng = random.Random(f"served:{seed}")
    subjects = sorted(MMLU_SUBJECTS)
    out = []
    for _ in range(n):
        subject = rng.choice(subjects)
        words = MMLU_SUBJECTS[subject]
        question = (
            f"Which {rng.choice(words)} {rng.choice(VERBS)} the {rng.choice(ADJECTIVES)} "
            f"{rng.choice(NOUNS)}?"
        )
        options = "\n".join(
            f"{letter}. the {rng.choice(ADJECTIVES)} {rng.choice(words + NOUNS)}"
            for letter in "ABCD"
        )
        context = (
            "The following are multiple choice questions (with answers) about "
            f"{subject.replace('_', ' ')}.\n\n{question}\n{options}\nAnswer:"
        )
        out.append(ScoreRequest(context, " A"))
    return out


def generate_requests(n: int, max_tokens: int, seed: int = 0) -> list[GenerateRequest]:
    return [
        GenerateRequest(r.context, GENERATE_UNTIL, max_tokens) for r in score_requests(n, seed + 1)
    ]


def request_bodies(requests: Sequence[ScoreRequest] | Sequence[GenerateRequest]) -> list[dict]:
    """The bodies `OpenAIEngine` sends for these requests (completions mode), so the plain httpx
    peer does exactly the same HTTP work."""
    bodies: list[dict[str, Any]] = []
    for r in requests:
        if isinstance(r, ScoreRequest):
            bodies.append(
                {
                    "model": MODEL_NAME,
                    "prompt": r.context + r.continuation,
                    "echo": True,
                    "max_tokens": 0,
                    "logprobs": 1,
                    "temperature": 0,
                }
            )
        else:
            body: dict[str, Any] = {
                "model": MODEL_NAME,
                "max_tokens": r.max_tokens,
                "temperature": r.temperature,
                "seed": r.seed,
                "prompt": r.context,
            }
            until = [s for s in r.until if s]
            if until:
                body["stop"] = until[:MAX_STOP]
            bodies.append(body)
    return bodies


# ---------------------------------------------------------------------------------- runs
@dataclass
class Run:
    """One runner over one workload at one concurrency in one repeat."""

    runner: str
    requests: int
    concurrency: int
    wall_seconds: float
    latencies: list[float] = field(repr=False)
    results: dict[int, Any] = field(default_factory=dict, repr=False)

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.wall_seconds if self.wall_seconds > 0 else float("inf")

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.latencies)

    @property
    def p95_seconds(self) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0]
        return statistics.quantiles(self.latencies, n=20, method="inclusive")[18]


_sent_at: contextvars.ContextVar[float] = contextvars.ContextVar("sent_at")


class _TimedClient:
    """Wraps the engine's `httpx.AsyncClient` to note when each POST is sent. The note lives in a
    context variable, which is per asyncio task, so concurrent requests do not mix."""

    def __init__(self, inner: httpx.AsyncClient) -> None:
        self._inner = inner

    async def post(self, *args: Any, **kwargs: Any) -> httpx.Response:
        _sent_at.set(time.perf_counter())
        return await self._inner.post(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class TimedOpenAIEngine(OpenAIEngine):
    """`OpenAIEngine` plus per-request latency (send to parsed body), which it does not expose;
    everything else, semaphore, retries and parsing included, is the engine's own code."""

    latencies: list[float]

    async def _post(self, client, path, body, tokens, parse):  # type: ignore[no-untyped-def]
        return await super()._post(
            cast(httpx.AsyncClient, _TimedClient(client)), path, body, tokens, parse
        )

    async def _read(self, client, response, path, parse):  # type: ignore[no-untyped-def]
        result = await super()._read(client, response, path, parse)
        self.latencies.append(time.perf_counter() - _sent_at.get())
        return result


def _answers(
    engine: Engine, requests: Sequence[ScoreRequest] | Sequence[GenerateRequest]
) -> Iterator[list[tuple[int, Any]]]:
    """The engine's verb for these requests: all scoring or all generation."""
    if isinstance(requests[0], ScoreRequest):
        return engine.score(cast(Sequence[ScoreRequest], requests))
    return engine.generate(cast(Sequence[GenerateRequest], requests))


def run_engine(
    engine: TimedOpenAIEngine, requests: Sequence[ScoreRequest] | Sequence[GenerateRequest]
) -> Run:
    engine.latencies = []
    results: dict[int, Any] = {}
    started = time.perf_counter()
    for batch in _answers(engine, requests):
        results.update(batch)
    wall = time.perf_counter() - started
    return Run("engine", len(requests), engine.concurrency, wall, engine.latencies, results)


def run_plain(url: str, bodies: list[dict[str, Any]], concurrency: int) -> Run:
    """The peer: nothing but an async client, a semaphore and `response.json()`."""
    latencies: list[float] = []
    results: dict[int, Any] = {}

    async def main() -> None:
        semaphore = asyncio.Semaphore(concurrency)
        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(timeout=60.0, limits=limits) as client:

            async def one(index: int, body: dict[str, Any]) -> None:
                async with semaphore:
                    sent = time.perf_counter()
                    response = await client.post(url, json=body)
                data = response.json()
                latencies.append(time.perf_counter() - sent)
                if response.status_code != 200:
                    raise RuntimeError(f"HTTP {response.status_code}: {response.text[:300]}")
                results[index] = data

            await asyncio.gather(*(one(i, b) for i, b in enumerate(bodies)))

    started = time.perf_counter()
    asyncio.run(main())
    wall = time.perf_counter() - started
    return Run("plain httpx", len(bodies), concurrency, wall, latencies, results)


def run_in_process(
    engine: HFEngine, requests: Sequence[ScoreRequest] | Sequence[GenerateRequest], label_c: int
) -> Run:
    """One request per batch, so the time between results is each request's latency."""
    latencies: list[float] = []
    results: dict[int, Any] = {}
    started = last = time.perf_counter()
    for batch in _answers(engine, requests):
        now = time.perf_counter()
        latencies.extend([(now - last) / len(batch)] * len(batch))
        last = now
        results.update(batch)
    wall = time.perf_counter() - started
    return Run("in-process", len(requests), label_c, wall, latencies, results)


def compare(engine_run: Run, local: Run) -> list[str]:
    """Differences between the served results and the in-process ones; empty if they agree."""
    problems = []
    for index in range(local.requests):
        got, want = engine_run.results.get(index), local.results.get(index)
        if isinstance(got, FailedResult) or got is None:
            problems.append(f"request {index}: failed: {getattr(got, 'reason', 'missing')}")
        elif isinstance(want, ScoreResult):
            if not isinstance(got, ScoreResult) or abs(got.logprob - want.logprob) > TOLERANCE:
                problems.append(f"request {index}: logprob {got} != in-process {want}")
            elif got.is_greedy != want.is_greedy:
                problems.append(f"request {index}: is_greedy {got} != in-process {want}")
        elif isinstance(want, GenerateResult) and getattr(got, "text", None) != want.text:
            problems.append(f"request {index}: text {got!r} != in-process {want!r}")
    return problems


# ---------------------------------------------------------------------------------- server
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def gnomon_command() -> list[str]:
    """The installed `gnomon` script next to this interpreter, else the CLI through `-c`."""
    script = Path(sys.executable).parent / "gnomon"
    if script.exists():
        return [str(script)]
    found = shutil.which("gnomon")
    return [found] if found else [sys.executable, "-c", "from gnomon.cli import main; main()"]


def start_server(model_dir: Path, port: int, log: Path, threads: int) -> subprocess.Popen[bytes]:
    command = [
        *gnomon_command(),
        "serve",
        "--model",
        f"hf:{model_dir}",
        "--name",
        MODEL_NAME,
        "--port",
        str(port),
        "--device",
        "cpu",
        "--dtype",
        "float32",
    ]
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    # a file, not a pipe: uvicorn logs every request, and a full pipe would stall the server
    with log.open("wb") as sink:
        return subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)


def wait_ready(process: subprocess.Popen[bytes], base: str, log: Path, timeout: float) -> float:
    """Seconds until `/v1/models` answers 200; raises if the server exits or never answers."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"gnomon serve exited with {process.returncode}:\n{tail}")
        try:
            if httpx.get(f"{base}/models", timeout=2.0).status_code == 200:
                return time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"gnomon serve did not answer {base}/models within {timeout:.0f}s")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ---------------------------------------------------------------------------------- report
def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def aggregate(runs: list[Run]) -> dict[str, Any]:
    """Medians over repeats of one runner's figures."""
    return {
        "runner": runs[0].runner,
        "requests": runs[0].requests,
        "concurrency": runs[0].concurrency,
        "repeats": len(runs),
        "wall_seconds": _median([r.wall_seconds for r in runs]),
        "requests_per_second": _median([r.requests_per_second for r in runs]),
        "median_latency_seconds": _median([r.median_seconds for r in runs]),
        "p95_latency_seconds": _median([r.p95_seconds for r in runs]),
        "per_repeat_wall_seconds": [r.wall_seconds for r in runs],
    }


def benchmark(
    workload: str,
    requests: Sequence[ScoreRequest] | Sequence[GenerateRequest],
    concurrencies: list[int],
    repeats: int,
    base: str,
    local: HFEngine,
) -> tuple[list[dict[str, Any]], list[str]]:
    """All runners at every concurrency; returns the figures and any result mismatches."""
    path = "/completions"
    url = f"{base}{path}"
    bodies = request_bodies(requests)
    figures: list[dict[str, Any]] = []
    problems: list[str] = []
    n = len(requests)
    print(f"\n{workload}: {n} requests, {repeats} repeats")
    for concurrency in concurrencies:
        engine = TimedOpenAIEngine(MODEL_NAME, base, concurrency=concurrency)
        runners: list[tuple[str, Callable[[], Run]]] = [
            ("engine", lambda e=engine: run_engine(e, requests)),
            ("plain httpx", lambda c=concurrency: run_plain(url, bodies, c)),
            ("in-process", lambda c=concurrency: run_in_process(local, requests, c)),
        ]
        runs: dict[str, list[Run]] = {name: [] for name, _ in runners}
        for repeat in range(repeats):
            shift = repeat % len(runners)
            done: dict[str, Run] = {}
            for name, runner in runners[shift:] + runners[:shift]:
                done[name] = run = runner()
                runs[name].append(run)
                print(
                    f"  c={concurrency:<3} repeat {repeat + 1}: {name:<12} "
                    f"{run.requests_per_second:8.1f} req/s, median {run.median_seconds * 1e3:7.2f}"
                    f" ms, p95 {run.p95_seconds * 1e3:7.2f} ms"
                )
            for line in compare(done["engine"], done["in-process"]):
                problems.append(f"{workload}, c={concurrency}, repeat {repeat + 1}: {line}")
        rows = {name: aggregate(rs) for name, rs in runs.items()}
        engine_wall = rows["engine"]["wall_seconds"]
        plain_wall = rows["plain httpx"]["wall_seconds"]
        local_wall = rows["in-process"]["wall_seconds"]
        figures.append(
            {
                "workload": workload,
                "concurrency": concurrency,
                "requests": n,
                "runners": list(rows.values()),
                "client_overhead_per_request_seconds": (engine_wall - plain_wall) / n,
                "http_server_overhead_per_request_seconds": (plain_wall - local_wall) / n,
            }
        )
    return figures, problems


def print_table(figures: list[dict[str, Any]]) -> None:
    print(
        f"\n{'workload':<9} {'c':>3} {'runner':<12} {'req/s':>9} {'median ms':>10} {'p95 ms':>8}"
        f"   overhead per request (ms)"
    )
    for row in figures:
        for i, r in enumerate(row["runners"]):
            note = ""
            if i == 0:
                client = row["client_overhead_per_request_seconds"]
                note = f"   client (engine - httpx): {client * 1e3:+.3f}"
            elif i == 1:
                note = (
                    "   HTTP + server (httpx - in-process): "
                    f"{row['http_server_overhead_per_request_seconds'] * 1e3:+.3f}"
                )
            print(
                f"{row['workload']:<9} {row['concurrency']:>3} {r['runner']:<12} "
                f"{r['requests_per_second']:9.1f} {r['median_latency_seconds'] * 1e3:10.2f} "
                f"{r['p95_latency_seconds'] * 1e3:8.2f}{note}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, default=Path(".bench/served"), help="work dir")
    parser.add_argument("--requests", type=int, default=200, help="score requests per run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--generate", action="store_true", help="also time generations")
    parser.add_argument("--generate-requests", type=int, default=50)
    parser.add_argument("--generate-tokens", type=int, default=8)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads, server and in-process (0: default)"
    )
    parser.add_argument("--startup-timeout", type=float, default=180.0)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.requests < 1 or min(args.concurrency) < 1:
        parser.error("--repeats, --requests and --concurrency must be at least 1")

    args.dir.mkdir(parents=True, exist_ok=True)
    model_dir = args.dir / "model"
    started = time.perf_counter()
    build_model(model_dir, "llama")
    print(f"tiny llama built in {time.perf_counter() - started:.1f}s: {model_dir}")
    print(
        f"host: {platform.platform()}, {os.cpu_count()} cores, python {platform.python_version()}"
    )

    port = free_port()
    base = f"http://127.0.0.1:{port}/v1"
    log = args.dir / "serve.log"
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch threads (server and in-process): {args.threads or 'torch default'}")
    process = start_server(model_dir.resolve(), port, log, args.threads)
    try:
        ready = wait_ready(process, base, log, args.startup_timeout)
        print(f"gnomon serve (pid {process.pid}) answered {base}/models after {ready:.1f}s")
        local = HFEngine(
            str(model_dir), device="cpu", dtype="float32", batch_size=1, min_shared_prefix=10**9
        )

        workloads: list[tuple[str, Sequence[ScoreRequest] | Sequence[GenerateRequest]]] = [
            ("score", score_requests(args.requests))
        ]
        if args.generate:
            workloads.append(
                ("generate", generate_requests(args.generate_requests, args.generate_tokens))
            )
        # warm every path (server, engine, peer, in-process) so no runner pays first-call costs
        for _, requests in workloads:
            head = requests[: max(args.concurrency) * 2]
            run_engine(TimedOpenAIEngine(MODEL_NAME, base, concurrency=4), head)
            run_plain(f"{base}/completions", request_bodies(head), 4)
            run_in_process(local, head, 1)

        figures: list[dict[str, Any]] = []
        problems: list[str] = []
        for workload, requests in workloads:
            rows, wrong = benchmark(workload, requests, args.concurrency, args.repeats, base, local)
            figures += rows
            problems += wrong
    finally:
        stop_server(process)
        print(f"gnomon serve stopped (exit {process.returncode}); its log: {log}")

    print_table(figures)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "host": {
                "platform": platform.platform(),
                "cores": os.cpu_count(),
                "python": platform.python_version(),
            },
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "figures": figures,
            "mismatches": problems,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"figures written to {args.json}")
    if problems:
        print(f"\nengine results differ from in-process ones ({len(problems)}):", file=sys.stderr)
        for line in problems[:50]:
            print(f"  {line}", file=sys.stderr)
        return 1
    print(f"\nengine results equal the in-process ones (log-probabilities to {TOLERANCE:g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
