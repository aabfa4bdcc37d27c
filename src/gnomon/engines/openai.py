"""An engine over an OpenAI-compatible HTTP API (`/v1/completions`, `/v1/chat/completions`).

The runner is synchronous, so each `score`/`generate` call drives a private asyncio loop: all
requests become tasks, at most `concurrency` are in flight (a semaphore), and finished results are
yielded in batches as they arrive so the runner stores them before the rest are done.

Remote servers fail in ways a local model does not. Transient faults (429, 500, 502, 503, 504,
dropped connections, bodies that cannot be read or decoded, malformed bodies, a response that
answers another request, no complete answer within `timeout` seconds) are retried with
exponential backoff and full jitter. A request that still fails after `max_retries` retries is
yielded as a `FailedResult` instead of a score or a text: the runner must record it as a failed
sample, never as a wrong answer, and never abort the run for it. Faults a retry cannot fix (a
rejected key, an unknown model) raise `UserError` at once; an endpoint without prompt
log-probabilities does so once it has said so `NO_LOGPROBS_VERDICT` times in a row.

`timeout` is a deadline for one HTTP request, from sending it to having its whole body; the time
a request waits for the client's own concurrency slot or rate limits is not part of it. A 429 or
503 *with* `Retry-After` means "saturated, come back": the request keeps its slot (so a busy
server sees no more than `concurrency` requests, polling included), waits as told plus a little
jitter, and tries again without spending a retry, for up to `saturation_patience` seconds (10
deadlines by default); after that such answers spend retries like any other fault.

Scoring sends the continuations of one context together, as one `/completions` request whose
`prompt` is a list (one choice per prompt, by `index`), so a server can compute the context once.
A server that refuses a list (a 4xx whose prompts are then answered one by one, or an answer
without one choice per prompt) is asked one prompt per request for the rest of the run.

The API key is sent only in the `Authorization` header: it is never logged, never part of
`describe()` and never in an error message.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, Literal

import httpx

from gnomon.engines.answers import NoLogprobs, parse_retry_after, split_thinking
from gnomon.engines.base import (
    Engine,
    FailedResult,
    GenerateRequest,
    GenerateResult,
    ScoreRequest,
    ScoreResult,
)
from gnomon.engines.identity import ResponseLedger
from gnomon.engines.openai_transport import (
    Job,
    RequestFailed,
    Retry,
    Transport,
    Withdrawn,
    api_root,
)
from gnomon.engines.openai_wire import (
    MAX_STOP,
    NotAList,
    NotSendable,
    ScorePrompt,
    generation_body,
    read_generation,
    read_scores,
    request_text,
    score_body,
)
from gnomon.engines.ratelimit import TokenBucket
from gnomon.errors import UserError

MAX_PROMPTS = 16  # prompts in one scoring request (a question's choices)
NO_LOGPROBS_VERDICT = 3  # answers in a row without prompt logprobs before the run stops

__all__ = [  # also re-exported for callers that know them from here
    "MAX_STOP",
    "FailedResult",
    "OpenAIEngine",
    "RequestFailed",
    "parse_retry_after",
    "split_thinking",
]


class OpenAIEngine(Transport, Engine):
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
        saturation_patience: float | None = None,
        count_tokens: Callable[[str], int] | None = None,
    ) -> None:
        if mode not in ("completions", "chat"):
            raise UserError(f"mode {mode!r}: choose completions or chat")
        if not (math.isfinite(timeout) and timeout > 0):
            raise UserError(f"--timeout {timeout}: give a number of seconds above 0")
        if max_retries < 0:
            raise UserError(f"--max-retries {max_retries}: give 0 or more")
        self.model = model
        self.base_url = api_root(base_url)
        self.mode = mode
        self.concurrency = max(1, concurrency)
        self.max_retries = max(0, max_retries)
        self.timeout = timeout
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.retry_after_max = retry_after_max
        self.saturation_patience = (
            10 * timeout if saturation_patience is None else saturation_patience
        )
        self.count_tokens = count_tokens or (lambda text: len(text) // 4)
        self.tokens_computed = 0
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._request_bucket = TokenBucket(requests_per_minute) if requests_per_minute else None
        self._token_bucket = TokenBucket(tokens_per_minute) if tokens_per_minute else None
        self._score_max_tokens = 0  # 1 once the server refuses max_tokens=0
        self.score_lists = True  # whether a context's prompts are sent as one list now
        self._lists_refused = False  # the server has shown that it does not take lists
        self._no_logprobs = 0  # answers in a row without prompt logprobs
        self._ledger = ResponseLedger()
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

    def describe(self) -> dict[str, str]:
        return {
            "engine": "openai",
            "base_url": self.base_url,
            "model": self.model,
            "mode": self.mode,
        }

    # ----------------------------------------------------------------- score
    def score(
        self, requests: Sequence[ScoreRequest]
    ) -> Iterator[list[tuple[int, ScoreResult | FailedResult]]]:
        """Echoed prompt log-probabilities of context+continuation, as lm-evaluation-harness
        reads them: trailing context whitespace belongs to the continuation, whose tokens are those
        starting at or after the context's end.

        The continuations of one context go in one request, as a list of prompts (at most
        `MAX_PROMPTS`), so a server computes the shared context once (see `score_lists`)."""
        if self.mode == "chat":
            raise UserError(
                "the endpoint does not return prompt logprobs (chat mode); "
                "run choice benchmarks by generation: add --choice-by generation"
            )
        groups: dict[str, list[int]] = {}
        for index, request in enumerate(requests):
            groups.setdefault(request.context, []).append(index)
        jobs: list[Job[ScoreResult | FailedResult]] = []
        for indices in groups.values():
            for at in range(0, len(indices), MAX_PROMPTS):
                chunk = indices[at : at + MAX_PROMPTS]
                group = [ScorePrompt.of(requests[i]) for i in chunk]
                jobs.append(Job(chunk, self._score_job(group)))
        batches = self._run(jobs)  # a job's own failures are results: R is the union
        return batches

    def _score_job(
        self, group: list[ScorePrompt]
    ) -> Callable[[httpx.AsyncClient], Awaitable[list[ScoreResult | FailedResult]]]:
        """One list request for the group; one request each where lists are not taken."""

        async def job(client: httpx.AsyncClient) -> list[ScoreResult | FailedResult]:
            if len(group) > 1 and self.score_lists:
                max_tokens = self._score_max_tokens
                try:
                    return list(await self._score_once(client, group))
                except NotAList:
                    self.score_lists, self._lists_refused = False, True
                except Withdrawn:  # lists were refused while this one waited
                    return await self._score_singly(client, group)
                except RequestFailed as exc:
                    if exc.status is None or not 400 <= exc.status < 500:
                        raise  # the server failed, not the list: more requests would not help
                    # refused: was it the list? Until its prompts tell, no more lists are sent
                    self.score_lists = False
                singles = await self._score_singly(client, group)
                if all(isinstance(r, ScoreResult) for r in singles) and (
                    self._score_max_tokens == max_tokens
                ):
                    self._lists_refused = True  # each was answered alone: it was the list
                self.score_lists = not self._lists_refused
                return singles
            if len(group) == 1:
                return list(await self._score_once(client, group))
            return await self._score_singly(client, group)

        return job

    async def _score_singly(
        self, client: httpx.AsyncClient, group: list[ScorePrompt]
    ) -> list[ScoreResult | FailedResult]:
        """One request per prompt, each failing on its own."""

        async def single(scored: ScorePrompt) -> ScoreResult | FailedResult:
            try:
                return (await self._score_once(client, [scored]))[0]
            except RequestFailed as exc:
                return FailedResult(exc.reason)

        return list(await asyncio.gather(*(single(s) for s in group)))

    async def _score_once(
        self, client: httpx.AsyncClient, group: list[ScorePrompt]
    ) -> list[ScoreResult]:
        """One request for the group's prompts: a plain string for one, a list for several.
        A lone prompt refused (400) with `max_tokens: 0` is asked again with 1 (the extra token
        is not read); a list's 400 may mean the list, so its prompts are asked one by one."""
        prompts = [s.prompt for s in group]

        def parse(data: dict[str, Any]) -> list[ScoreResult]:
            try:
                results = read_scores(data, group)
            except NoLogprobs as exc:
                self._no_logprobs += 1
                if self._no_logprobs >= NO_LOGPROBS_VERDICT:
                    raise UserError(
                        "the endpoint does not return prompt logprobs (echo with logprobs); "
                        "run choice benchmarks by generation: add --choice-by generation"
                    ) from None
                raise Retry(f"{exc} from /completions") from None
            self._no_logprobs = 0
            return results

        tokens = sum(self.count_tokens(p) + 1 for p in prompts)
        max_tokens = self._score_max_tokens
        body = score_body(self.model, prompts, max_tokens)
        wanted = (lambda: self.score_lists) if len(prompts) > 1 else None
        try:
            return await self._post(client, "/completions", body, tokens, parse, wanted)
        except RequestFailed as exc:
            if exc.status != 400 or max_tokens != 0 or len(prompts) > 1:
                raise
        # some servers refuse 0: read the prompt anyway, and once that works, for the run (a
        # prompt refused for itself, one too long say, fails without changing the run)
        result = await self._post(client, "/completions", {**body, "max_tokens": 1}, tokens, parse)
        self._score_max_tokens = 1
        return result

    # ----------------------------------------------------------------- generate
    def generate(
        self, requests: Sequence[GenerateRequest]
    ) -> Iterator[list[tuple[int, GenerateResult | FailedResult]]]:
        """Completions mode sends the first four stop strings (OpenAI's limit) and cuts the rest
        here. Chat mode cuts every stop string here, after the thinking is taken out, so that a
        stop string inside the reasoning cannot end the answer before it starts."""
        return self._run([Job([i], self._generate_job(r)) for i, r in enumerate(requests)])

    def _generate_job(
        self, request: GenerateRequest
    ) -> Callable[[httpx.AsyncClient], Awaitable[list[GenerateResult]]]:
        chat = self.mode == "chat"
        until = [s for s in request.until if s]
        try:
            path, body = generation_body(request, self.model, chat)
        except NotSendable as exc:
            reason = str(exc)

            async def refused(client: httpx.AsyncClient) -> list[GenerateResult]:
                raise RequestFailed(reason)

            return refused

        def parse(data: dict[str, Any]) -> GenerateResult:
            return read_generation(data, until, chat)

        tokens = self.count_tokens(request_text(request)) + request.max_tokens

        async def job(client: httpx.AsyncClient) -> list[GenerateResult]:
            return [await self._post(client, path, body, tokens, parse)]

        return job
