"""How an OpenAI-compatible engine talks to its server: a private asyncio loop per call, a
concurrency limit, rate limits, a deadline per attempt, retries with backoff and jitter, and the
patience a saturated server (429/503 with `Retry-After`) is given. A mixin of `OpenAIEngine`,
which says what to send and how to read the answers (see `openai.py` for the rules).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import httpx

from gnomon.engines.answers import parse_retry_after
from gnomon.engines.base import FailedResult
from gnomon.engines.identity import Mismatch, ResponseLedger
from gnomon.engines.ratelimit import TokenBucket
from gnomon.errors import UserError
from gnomon.text import dumps as json_text

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
SATURATED_STATUS = frozenset({429, 503})  # with Retry-After: "busy, come back then"

R = TypeVar("R")


class RequestFailed(Exception):
    """One request's final failure; turned into a `FailedResult` by the engine."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class Retry(Exception):
    """A transient fault: try again after `retry_after` seconds (or the backoff if None)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class Saturated(Retry):
    """429/503 with `Retry-After`: the server is busy, not broken."""


class Withdrawn(Exception):
    """A request its sender no longer wants sent (see `OpenAIEngine._post`)."""


@dataclass(frozen=True)
class Job(Generic[R]):
    """Requests answered together: their indices, and the work that answers them in order."""

    indices: Sequence[int]
    run: Callable[[httpx.AsyncClient], Awaitable[Sequence[R]]]


def api_root(base_url: str) -> str:
    """The OpenAI base URL (`http://host:8000/v1`); a bare `http://host:8000` gets `/v1`."""
    url = base_url.rstrip("/")
    if urlsplit(url).path in ("", "/"):
        url += "/v1"
    return url


class Transport:
    """Sending requests and reading answers, for `OpenAIEngine` (its settings below)."""

    model: str
    base_url: str
    concurrency: int
    max_retries: int
    timeout: float
    backoff_base: float
    backoff_max: float
    retry_after_max: float
    saturation_patience: float
    tokens_computed: int
    _headers: dict[str, str]
    _request_bucket: TokenBucket | None
    _token_bucket: TokenBucket | None
    _ledger: ResponseLedger
    _semaphore: asyncio.Semaphore

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

    # ----------------------------------------------------------------- the loop
    def _run(self, jobs: Sequence[Job[R]]) -> Iterator[list[tuple[int, R | FailedResult]]]:
        """Run every job on a private event loop; yield (index, result) batches as they finish.

        A job answers the request indices it names, in order. A `RequestFailed` becomes a
        `FailedResult` for each of them; any other exception (`UserError`) cancels the rest and
        propagates. Closing the generator early cancels what is in flight.
        """
        if not jobs:
            return
        loop = asyncio.new_event_loop()
        tasks: list[asyncio.Task[None]] = []
        client: httpx.AsyncClient | None = None
        queue: asyncio.Queue[tuple[Sequence[int], Any]]

        async def start() -> None:
            nonlocal client, queue
            client = httpx.AsyncClient(
                headers=self._headers,
                timeout=httpx.Timeout(self.timeout),
                limits=httpx.Limits(max_connections=self.concurrency),
            )
            queue = asyncio.Queue()
            self._semaphore = asyncio.Semaphore(self.concurrency)  # this loop's
            for job in jobs:
                tasks.append(asyncio.create_task(one(job, client)))

        async def one(job: Job[R], http: httpx.AsyncClient) -> None:
            try:
                result: Any = await job.run(http)
            except RequestFailed as exc:
                result = [FailedResult(exc.reason)] * len(job.indices)
            except Exception as exc:  # handed to the caller: UserError, bugs
                result = exc
            queue.put_nowait((job.indices, result))

        async def collect() -> list[tuple[Sequence[int], Any]]:
            items = [await queue.get()]
            while len(items) < self.concurrency and not queue.empty():
                items.append(queue.get_nowait())
            return items

        try:
            loop.run_until_complete(start())
            remaining = len(jobs)
            while remaining:
                done = loop.run_until_complete(collect())
                remaining -= len(done)
                batch: list[tuple[int, Any]] = []
                for indices, results in done:
                    if isinstance(results, Exception):
                        raise results
                    batch.extend(zip(indices, results, strict=True))
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
        wanted: Callable[[], bool] | None = None,
    ) -> R:
        """POST with rate limits, a deadline per attempt and retries; `parse` turns the JSON body
        into a result, and a body it cannot read (KeyError, TypeError, ...) counts as malformed,
        so it is retried. Only answers that belong to this request are parsed (see identity).

        `wanted`, asked before each attempt (once its slot is free), withdraws the request
        (`Withdrawn`) when it says no: what the run learnt meanwhile may make it pointless."""

        def checked(data: dict[str, Any]) -> R:
            result = parse(data)
            self._ledger.claim(data, body)
            return result

        reason, retry_after, failures = "", None, 0
        patience_ends: float | None = None
        while True:
            if failures:
                await asyncio.sleep(self._delay(failures, retry_after))
            retry_after = None
            if wanted is not None and not wanted():
                raise Withdrawn()
            await self._pace(tokens)
            async with self._semaphore:  # waiting here is not part of any deadline
                while True:
                    if wanted is not None and not wanted():
                        raise Withdrawn()
                    try:
                        return await self._attempt(client, path, body, checked)
                    except Saturated as exc:
                        now = time.monotonic()
                        if patience_ends is None:
                            patience_ends = now + self.saturation_patience
                        if now >= patience_ends:
                            reason = f"{exc.reason}, busy for {self.saturation_patience:g} s"
                            break
                        await asyncio.sleep(self._delay(0, exc.retry_after))  # keeps the slot
                        await self._pace(tokens)
                    except Retry as exc:
                        reason, retry_after = exc.reason, exc.retry_after
                        break
            failures += 1
            if failures > self.max_retries:
                raise RequestFailed(f"{reason} (after {self.max_retries + 1} attempts)")

    async def _pace(self, tokens: int) -> None:
        if self._request_bucket:
            await self._request_bucket.acquire(1)
        if self._token_bucket:
            await self._token_bucket.acquire(tokens)

    async def _attempt(
        self,
        client: httpx.AsyncClient,
        path: str,
        body: dict[str, Any],
        parse: Callable[[dict[str, Any]], R],
    ) -> R:
        """One request: sent, its whole body read within `timeout`, checked and parsed. Every
        way of failing to get a readable answer (refused, reset, timed out, a body that does
        not decode) is a `Retry`."""
        request_id = self._ledger.new_request_id()
        try:
            async with asyncio.timeout(self.timeout):
                response = await client.post(
                    f"{self.base_url}{path}",
                    content=_body(body),
                    headers={**_JSON, "X-Request-Id": request_id},
                )
        except TimeoutError:
            raise Retry(f"no complete answer from {path} within {self.timeout:g} s") from None
        except httpx.HTTPError as exc:  # refused, reset, closed, timed out, undecodable body
            raise Retry(f"{type(exc).__name__} from {path}") from None
        try:
            self._ledger.check_header(response.headers, request_id)
            return await self._read(client, response, path, parse)
        except Mismatch as exc:
            raise Retry(f"{exc} ({path})") from None

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """The server's `Retry-After` if given (capped, at least 50 ms, plus up to 10% jitter so
        that requests told the same time do not return in lockstep), else full jitter: uniform
        over [0, min(max, base * 2**(attempt-1))], so concurrent retries spread out."""
        if retry_after is not None:
            wait = max(0.05, min(retry_after, self.retry_after_max))
            return wait + random.uniform(0, 0.1 * wait)
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** max(0, attempt - 1))
        return random.uniform(0, ceiling)

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
            after = parse_retry_after(response.headers.get("retry-after"))
            fault = Saturated if status in SATURATED_STATUS and after is not None else Retry
            raise fault(f"HTTP {status} from {path}", after)
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
            usage = data.get("usage") or {}
            total = usage.get("total_tokens")
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            raise Retry(f"malformed response from {path}: {type(exc).__name__}") from None
        if isinstance(total, int):
            self.tokens_computed += total
        return result


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
