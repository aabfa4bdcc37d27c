"""An engine over an OpenAI-compatible HTTP API (`/v1/completions`, `/v1/chat/completions`).

The runner is synchronous, so each `score`/`generate` call drives a private asyncio loop: all
requests become tasks, at most `concurrency` are in flight (a semaphore), and finished results are
yielded in batches as they arrive so the runner stores them before the rest are done.

Remote servers fail in ways a local model does not. Transient faults (429, 500, 502, 503, 504,
dropped connections, timeouts, malformed bodies) are retried with exponential backoff and full
jitter, honouring `Retry-After`. A request that still fails after `max_retries` is yielded as a
`FailedResult` instead of a score or a text: the runner must record it as a failed sample, never
as a wrong answer, and never abort the run for it. Faults a retry cannot fix (a rejected key, an
unknown model, an endpoint without prompt log-probabilities) raise `UserError` at once.

The API key is sent only in the `Authorization` header: it is never logged, never part of
`describe()` and never in an error message.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import random
import re
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import httpx

from gnomon.engines.base import (
    Engine,
    FailedResult,
    GenerateRequest,
    GenerateResult,
    ScoreRequest,
    ScoreResult,
)
from gnomon.engines.ratelimit import TokenBucket
from gnomon.errors import UserError
from gnomon.text import dumps as json_text

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
MAX_STOP = 4  # OpenAI's limit on `stop`; further stop strings are applied client-side
_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)

R = TypeVar("R")


@dataclass(frozen=True)
class ChatResult(GenerateResult):
    """A generation whose thinking (`<think>...</think>` or a `reasoning_content` field) was kept
    apart from the answer: `text` is the answer only, `reasoning` what came before it."""

    reasoning: str | None = None


class RequestFailed(Exception):
    """One request's final failure; turned into a `FailedResult` by the engine."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class _Retry(Exception):
    """A transient fault: try again after `retry_after` seconds (or the backoff if None)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds from now: a number of seconds or an HTTP date; None if absent or
    unreadable (then the backoff applies)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def split_thinking(text: str, reasoning: str | None = None) -> tuple[str, str | None]:
    """(answer, reasoning): `<think>` blocks move to the reasoning. An unclosed `<think>` (the
    model ran out of tokens while thinking) leaves no answer at all."""
    parts = [reasoning] if reasoning else []
    parts += [m.strip() for m in _THINK.findall(text)]
    answer = _THINK.sub("", text)
    if "<think>" in answer:
        answer, _, rest = answer.partition("<think>")
        parts.append(rest.strip())
    elif "</think>" in answer:  # templates that open the block in the prompt
        before, _, answer = answer.rpartition("</think>")
        parts.append(before.strip())
    joined = "\n".join(p for p in parts if p)
    return answer.strip() if joined else answer, joined or None


def _cut(text: str, until: Sequence[str]) -> str:
    """Cut at the earliest occurrence of any stop string."""
    at = min((text.index(s) for s in until if s and s in text), default=len(text))
    return text[:at]


def _api_root(base_url: str) -> str:
    """The OpenAI base URL (`http://host:8000/v1`); a bare `http://host:8000` gets `/v1`."""
    url = base_url.rstrip("/")
    if urlsplit(url).path in ("", "/"):
        url += "/v1"
    return url


class OpenAIEngine(Engine):
    """A model behind an OpenAI-compatible API.

    `mode="completions"` scores and generates through `/v1/completions`; `mode="chat"` generates
    through `/v1/chat/completions` (chat endpoints give no prompt log-probabilities, so it cannot
    score). `count_tokens` estimates a text's tokens for `tokens_per_minute` (default: 4
    characters a token).
    """

    def __init__(
        self,
        model: str,
        base_url: str,
        *,
        api_key: str | None = None,
        mode: Literal["completions", "chat"] = "completions",
        concurrency: int = 8,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        max_retries: int = 6,
        timeout: float = 60.0,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        retry_after_max: float = 300.0,
        count_tokens: Callable[[str], int] | None = None,
    ) -> None:
        if mode not in ("completions", "chat"):
            raise UserError(f"mode {mode!r}: choose completions or chat")
        self.model = model
        self.base_url = _api_root(base_url)
        self.mode = mode
        self.concurrency = max(1, concurrency)
        self.max_retries = max(0, max_retries)
        self.timeout = timeout
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.retry_after_max = retry_after_max
        self.count_tokens = count_tokens or (lambda text: len(text) // 4)
        self.tokens_computed = 0
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._request_bucket = TokenBucket(requests_per_minute) if requests_per_minute else None
        self._token_bucket = TokenBucket(tokens_per_minute) if tokens_per_minute else None
        self._score_max_tokens = 0  # 1 once the server refuses max_tokens=0
        self._semaphore = asyncio.Semaphore(self.concurrency)  # replaced per event loop
        self._check_model()

    # ----------------------------------------------------------------- construction
    def _check_model(self) -> None:
        """Fail before the run, not after thousands of failed requests: the server must answer,
        accept the key, and list the model (servers without `/v1/models` are trusted)."""
        try:
            with httpx.Client(timeout=min(self.timeout, 30.0), headers=self._headers) as client:
                response = client.get(f"{self.base_url}/models")
        except httpx.HTTPError as exc:
            raise UserError(
                f"cannot reach the API at {self.base_url}: {type(exc).__name__}"
            ) from None
        self._check_auth(response)
        if response.status_code != 200:
            return
        available = self._model_ids(response)
        if available is not None and self.model not in available:
            raise UserError(self._unknown_model(available))

    @staticmethod
    def _model_ids(response: httpx.Response) -> list[str] | None:
        try:
            return [str(m["id"]) for m in response.json()["data"]]
        except (ValueError, KeyError, TypeError):
            return None

    def _unknown_model(self, available: list[str] | None) -> str:
        listed = ", ".join(available) if available else "none listed"
        return f"the API at {self.base_url} does not serve model {self.model!r}; it has: {listed}"

    def _check_auth(self, response: httpx.Response) -> None:
        if response.status_code in (401, 403):
            raise UserError(
                f"the API at {self.base_url} rejected the API key (HTTP {response.status_code}); "
                "check the key"
            )

    def describe(self) -> dict[str, str]:
        return {
            "engine": "openai",
            "base_url": self.base_url,
            "model": self.model,
            "mode": self.mode,
        }

    # ----------------------------------------------------------------- the loop
    def _run(
        self, jobs: Sequence[Callable[[httpx.AsyncClient], Awaitable[R]]]
    ) -> Iterator[list[tuple[int, R | FailedResult]]]:
        """Run every job on a private event loop; yield (index, result) batches as they finish.

        A `RequestFailed` becomes that index's `FailedResult`; any other exception (`UserError`)
        cancels the rest and propagates. Closing the generator early cancels what is in flight.
        """
        if not jobs:
            return
        loop = asyncio.new_event_loop()
        tasks: list[asyncio.Task[None]] = []
        client: httpx.AsyncClient | None = None
        queue: asyncio.Queue[tuple[int, Any]]

        async def start() -> None:
            nonlocal client, queue
            client = httpx.AsyncClient(
                headers=self._headers,
                timeout=httpx.Timeout(self.timeout),
                limits=httpx.Limits(max_connections=self.concurrency),
            )
            queue = asyncio.Queue()
            self._semaphore = asyncio.Semaphore(self.concurrency)  # this loop's
            for index, job in enumerate(jobs):
                tasks.append(asyncio.create_task(one(index, job, client)))

        async def one(index: int, job: Any, http: httpx.AsyncClient) -> None:
            try:
                result: Any = await job(http)
            except RequestFailed as exc:
                result = FailedResult(exc.reason)
            except Exception as exc:  # handed to the caller: UserError, bugs
                result = exc
            queue.put_nowait((index, result))

        async def collect() -> list[tuple[int, Any]]:
            items = [await queue.get()]
            while len(items) < self.concurrency and not queue.empty():
                items.append(queue.get_nowait())
            return items

        try:
            loop.run_until_complete(start())
            remaining = len(jobs)
            while remaining:
                batch = loop.run_until_complete(collect())
                remaining -= len(batch)
                for _, result in batch:
                    if isinstance(result, Exception):
                        raise result
                yield batch
        finally:
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            if client is not None:
                loop.run_until_complete(client.aclose())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _post(
        self,
        client: httpx.AsyncClient,
        path: str,
        body: dict[str, Any],
        tokens: int,
        parse: Callable[[dict[str, Any]], R],
    ) -> R:
        """POST with rate limits and retries; `parse` turns the JSON body into a result, and a
        body it cannot read (KeyError, TypeError, ...) counts as malformed, so it is retried."""
        reason, retry_after = "", None
        for attempt in range(self.max_retries + 1):
            if attempt:
                await asyncio.sleep(self._delay(attempt, retry_after))
            retry_after = None
            if self._request_bucket:
                await self._request_bucket.acquire(1)
            if self._token_bucket:
                await self._token_bucket.acquire(tokens)
            try:
                async with self._semaphore:
                    response = await client.post(
                        f"{self.base_url}{path}", content=_body(body), headers=_JSON
                    )
                return await self._read(client, response, path, parse)
            except _Retry as exc:
                reason, retry_after = exc.reason, exc.retry_after
            except httpx.TransportError as exc:  # refused, reset, closed, timed out
                reason = f"{type(exc).__name__} from {path}"
        raise RequestFailed(f"{reason} (after {self.max_retries + 1} attempts)")

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """The server's `Retry-After` if given (capped), else full jitter: uniform over
        [0, min(max, base * 2**(attempt-1))], so concurrent retries spread out."""
        if retry_after is not None:
            return min(retry_after, self.retry_after_max)
        return random.uniform(0, min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1)))

    async def _read(
        self,
        client: httpx.AsyncClient,
        response: httpx.Response,
        path: str,
        parse: Callable[[dict[str, Any]], R],
    ) -> R:
        status = response.status_code
        self._check_auth(response)
        if status in RETRY_STATUS:
            raise _Retry(
                f"HTTP {status} from {path}", parse_retry_after(response.headers.get("retry-after"))
            )
        if status == 404:
            available = None
            with contextlib.suppress(httpx.HTTPError):
                available = self._model_ids(await client.get(f"{self.base_url}/models"))
            if available is not None and self.model not in available:
                raise UserError(self._unknown_model(available))
            raise UserError(f"the API at {self.base_url} has no {path} (HTTP 404)")
        if status >= 400:
            raise RequestFailed(f"HTTP {status} from {path}: {_message(response)}", status)
        try:
            data = response.json()
            result = parse(data)
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            raise _Retry(f"malformed response from {path}: {type(exc).__name__}") from None
        usage = data.get("usage") or {}
        if isinstance(usage.get("total_tokens"), int):
            self.tokens_computed += usage["total_tokens"]
        return result

    # ----------------------------------------------------------------- score
    def score(
        self, requests: Sequence[ScoreRequest]
    ) -> Iterator[list[tuple[int, ScoreResult | FailedResult]]]:  # type: ignore[override]
        """Echoed prompt log-probabilities of context+continuation, as lm-evaluation-harness
        reads them: trailing context whitespace belongs to the continuation, whose tokens are those
        starting at or after the context's end."""
        if self.mode == "chat":
            raise UserError(
                "the endpoint does not return prompt logprobs (chat mode); "
                "run choice benchmarks by generation: add --choice-by generation"
            )
        jobs = [self._score_job(r) for r in requests]
        return self._run(jobs)

    def _score_job(
        self, request: ScoreRequest
    ) -> Callable[[httpx.AsyncClient], Awaitable[ScoreResult]]:
        context, continuation = request.context, request.continuation
        prompt = context + continuation
        split = len(context.rstrip()) if context.strip() else 0

        def parse(data: dict[str, Any]) -> ScoreResult:
            return _read_score(data, split, len(prompt))

        async def job(client: httpx.AsyncClient) -> ScoreResult:
            while True:
                max_tokens = self._score_max_tokens
                body = {
                    "model": self.model,
                    "prompt": prompt,
                    "echo": True,
                    "max_tokens": max_tokens,
                    "logprobs": 1,
                    "temperature": 0,
                }
                try:
                    return await self._post(
                        client, "/completions", body, self.count_tokens(prompt) + 1, parse
                    )
                except RequestFailed as exc:
                    if exc.status != 400 or max_tokens != 0:
                        raise
                    self._score_max_tokens = 1  # some servers refuse 0; read the prompt anyway

        return job

    # ----------------------------------------------------------------- generate
    def generate(
        self, requests: Sequence[GenerateRequest]
    ) -> Iterator[list[tuple[int, GenerateResult | FailedResult]]]:  # type: ignore[override]
        """Completions mode sends the first four stop strings (OpenAI's limit) and cuts the rest
        here. Chat mode cuts every stop string here, after the thinking is taken out, so that a
        stop string inside the reasoning cannot end the answer before it starts."""
        return self._run([self._generate_job(r) for r in requests])

    def _generate_job(
        self, request: GenerateRequest
    ) -> Callable[[httpx.AsyncClient], Awaitable[GenerateResult]]:
        until = [s for s in request.until if s]
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "seed": request.seed,
        }
        if self.mode == "chat":
            path = "/chat/completions"
            body["messages"] = [{"role": "user", "content": request.context}]
        else:
            path = "/completions"
            body["prompt"] = request.context
            if until:
                body["stop"] = until[:MAX_STOP]

        def parse(data: dict[str, Any]) -> GenerateResult:
            choice = data["choices"][0]
            if self.mode == "chat":
                message = choice["message"]
                text = message.get("content") or ""
                reasoning = message.get("reasoning_content") or message.get("reasoning")
            else:
                text, reasoning = choice["text"], None
            if not isinstance(text, str):
                raise TypeError("text is not a string")
            answer, thought = split_thinking(text, reasoning)
            answer = _cut(answer, until)
            if thought is None:
                return GenerateResult(answer)
            return ChatResult(answer, reasoning=thought)

        tokens = self.count_tokens(request.context) + request.max_tokens

        async def job(client: httpx.AsyncClient) -> GenerateResult:
            return await self._post(client, path, body, tokens, parse)

        return job


def _read_score(data: dict[str, Any], split: int, end: int) -> ScoreResult:
    """Sum the log-probabilities of tokens with `split <= text_offset < end` (`end` excludes a
    token generated when the server needed max_tokens >= 1). An empty context is conditioned on
    what the server puts first (BOS for most tokenizers), as lm-evaluation-harness does."""
    logprobs = data["choices"][0].get("logprobs")
    if not logprobs or not logprobs.get("token_logprobs") or not logprobs.get("text_offset"):
        raise UserError(
            "the endpoint does not return prompt logprobs (echo with logprobs); "
            "run choice benchmarks by generation: add --choice-by generation"
        )
    tokens = logprobs["tokens"]
    values = logprobs["token_logprobs"]
    tops = logprobs.get("top_logprobs") or [None] * len(tokens)
    offsets = logprobs["text_offset"]
    total, greedy, count = 0.0, True, 0
    rows = zip(tokens, values, tops, offsets, strict=True)
    for i, (token, value, top, offset) in enumerate(rows):
        if offset < split or offset >= end:
            continue
        if value is None and i == 0:  # the first prompt token (BOS) has none: an empty context
            continue
        if value is None:
            raise ValueError("a continuation token has no logprob")
        total += float(value)
        count += 1
        if not top or max(top.items(), key=lambda kv: kv[1])[0] != token:
            greedy = False
    if not count:
        raise ValueError("no continuation tokens in the echoed prompt")
    return ScoreResult(total, greedy)


def _message(response: httpx.Response) -> str:
    """The server's error message, short; the body otherwise (never the request's headers)."""
    try:
        return str(response.json()["error"]["message"])[:300]
    except (ValueError, KeyError, TypeError):
        return response.text[:300]


_JSON = {"Content-Type": "application/json"}


def _body(body: dict[str, Any]) -> bytes:
    """A prompt may hold lone surrogates: sent as JSON escapes, which the server reads back as
    the same text (httpx's own `json=` would fail to encode them)."""
    return json_text(body, separators=(",", ":")).encode("utf-8")
