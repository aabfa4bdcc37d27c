"""An OpenAI-compatible HTTP API over one loaded `HFEngine`.

Endpoints: `GET /v1/models`, `POST /v1/completions`, `POST /v1/chat/completions`. Errors use
OpenAI's body (`{"error": {"message", "type", "code"}}`) and status codes, because clients (the
openai package, lm-evaluation-harness's `local-completions`) branch on them.

Model work runs one request at a time on one thread behind a bounded queue (`scheduler.py`): a
loaded model is one device's worth of compute, and `torch.manual_seed` for seeded sampling is
process-global. A full queue, or a request that waited `queue_timeout` seconds without starting,
is answered 503 with `Retry-After`; a client that disconnects has its work withdrawn (queued) or
stopped at the next decoding step (running). Responses say how long they queued (`X-Queue-Time`)
and computed (`X-Compute-Time`), in seconds.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from transformers import StoppingCriteria, StoppingCriteriaList

from gnomon.serve import DEFAULT_MAX_QUEUE, DEFAULT_QUEUE_TIMEOUT
from gnomon.serve.logprobs import display_tokens, forward_logprobs, token_texts
from gnomon.serve.scheduler import Cancelled, Rejected, Scheduler, await_job

if TYPE_CHECKING:
    from gnomon.engines.hf import HFEngine

MAX_TOP_LOGPROBS = 5
# nginx's "client closed request": logged for requests whose client left; nobody receives it
CLIENT_GONE = 499
log = logging.getLogger("uvicorn.error")  # uvicorn configures it, so lines show with its own


class APIError(Exception):
    """An error the client caused (or must know about), sent as OpenAI's error body."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = (
            status,
            message,
            type_,
            code,
            param,
        )
        self.headers = headers


def _error_body(message: str, type_: str, code: str | None = None, param: str | None = None):
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


# ----------------------------------------------------------------------------- request bodies
class _Body(BaseModel):
    # unknown OpenAI fields (user, logit_bias, ...) are ignored, as servers commonly do
    model_config = ConfigDict(extra="ignore")

    model: str
    max_tokens: int | None = Field(default=None, ge=0)
    temperature: float = Field(default=1.0, ge=0.0)  # OpenAI's default; 0 means greedy
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = Field(default=1, ge=1)
    stream: bool = False


class CompletionBody(_Body):
    prompt: str | list[str]
    echo: bool = False
    logprobs: int | None = Field(default=None, ge=0, le=MAX_TOP_LOGPROBS)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")  # name, tool_calls, ... pass to the template

    role: str
    content: str | None = None


class ChatBody(_Body):
    messages: list[ChatMessage] = Field(min_length=1)


# ----------------------------------------------------------------------------- the work
@dataclass(frozen=True)
class Choice:
    text: str  # the completion only (the prompt is prepended by the caller for echo)
    finish_reason: Literal["stop", "length"]
    prompt_tokens: int
    completion_tokens: int
    logprobs: dict[str, Any] | None


@dataclass(frozen=True)
class Prompt:
    """A prompt checked against the window before it takes a place in the queue."""

    text: str
    ids: list[int]
    max_tokens: int


class _Cancel(StoppingCriteria):
    """Ends `generate` at the next step once the request's cancel flag is set."""

    def __init__(self, cancel: threading.Event) -> None:
        self.cancel = cancel

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> Any:
        rows = input_ids.shape[0]
        return torch.full((rows,), self.cancel.is_set(), dtype=torch.bool, device=input_ids.device)


def _check(cancel: threading.Event) -> None:
    if cancel.is_set():
        raise Cancelled("the request was cancelled")


class Server:
    """The model side: tokenise, check the window, generate, read log-probabilities."""

    def __init__(self, engine: HFEngine) -> None:
        self.engine = engine
        self.tokenizer = engine.tokenizer
        eos_id = self.tokenizer.eos_token_id
        self.eos_ids = {eos_id} if eos_id is not None else set()
        self.eos_text = (
            self.tokenizer.decode([eos_id], skip_special_tokens=False) if eos_id is not None else ""
        )

    def prepare(self, prompt: str, max_tokens: int | None) -> Prompt:
        ids = self.engine.encode(prompt)
        window = self.engine.max_length
        if not ids:
            raise APIError(400, "the prompt is empty after tokenisation", param="prompt")
        if max_tokens is None:  # as OpenAI's chat API: until a stop, EOS or the window's end
            max_tokens = max(window - len(ids), 0)
        if len(ids) + max_tokens > window:
            raise APIError(
                400,
                f"this model's maximum context length is {window} tokens; the prompt has "
                f"{len(ids)} tokens and max_tokens is {max_tokens}",
                code="context_length_exceeded",
                param="prompt",
            )
        return Prompt(prompt, ids, max_tokens)

    def complete(
        self,
        prompt: Prompt,
        *,
        temperature: float,
        top_p: float,
        stop: list[str],
        seed: int | None,
        echo: bool,
        logprobs: int | None,
        cancel: threading.Event,
    ) -> Choice:
        """On the scheduler's thread; raises `Cancelled` as soon as `cancel` is seen."""
        ids, max_tokens = prompt.ids, prompt.max_tokens
        _check(cancel)
        new = self._generate(ids, max_tokens, temperature, top_p, stop, seed, cancel)
        _check(cancel)  # a generation cut short by cancellation is not a result
        text, finish, kept = self._finish(new, max_tokens, stop)
        lp = None
        if logprobs is not None:
            lp = self._logprobs(ids, new[:kept], logprobs, echo, len(prompt.text))
        return Choice(text, finish, len(ids), len(new), lp)

    def _generate(
        self,
        ids: list[int],
        max_tokens: int,
        temperature: float,
        top_p: float,
        stop: list[str],
        seed: int | None,
        cancel: threading.Event,
    ) -> list[int]:
        """The same `model.generate` call `HFEngine.generate` makes for a batch of one, so greedy
        text over HTTP is the text a local run produces."""
        if max_tokens == 0:
            return []
        sampling: dict[str, Any] = {"do_sample": False, "temperature": None, "top_p": None}
        if temperature > 0:
            if seed is not None:
                torch.manual_seed(seed)
            sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p}
        stops = sorted(set(stop) | ({self.eos_text} if self.eos_text else set()))
        engine = self.engine
        with torch.inference_mode():
            out = engine.model.generate(
                input_ids=torch.tensor([ids], device=engine.device),
                attention_mask=torch.ones(1, len(ids), dtype=torch.long, device=engine.device),
                max_new_tokens=max_tokens,
                top_k=None,
                **sampling,
                stop_strings=stops or None,
                stopping_criteria=StoppingCriteriaList([_Cancel(cancel)]),
                tokenizer=self.tokenizer,
                pad_token_id=engine.pad_id,
            )
        engine.tokens_computed += int(out.shape[1])
        return out[0, len(ids) : len(ids) + max_tokens].tolist()

    def _finish(
        self, new: list[int], max_tokens: int, stop: list[str]
    ) -> tuple[str, Literal["stop", "length"], int]:
        """Text cut at the first stop string (or EOS); how many generated tokens it keeps."""
        texts = token_texts(self.tokenizer, new)
        # decoded as HFEngine.generate decodes, so local and served greedy text agree exactly
        full = self.tokenizer.decode(new, skip_special_tokens=True)
        cut = len(full)
        for s in (*stop, self.eos_text):
            if s and s in full:
                cut = min(cut, full.index(s))
        # EOS is special, so its text is empty: keep the tokens before it
        kept = next((i for i, t in enumerate(new) if t in self.eos_ids), len(new))
        hit_eos = kept < len(new)
        at = 0
        for i, piece in enumerate(texts[:kept]):
            if at >= cut:
                kept = i
                break
            at += len(piece)
        stopped = cut < len(full) or hit_eos or len(new) < max_tokens
        return full[:cut], "stop" if stopped else "length", kept

    def _logprobs(
        self, prompt_ids: list[int], new: list[int], top: int, echo: bool, prompt_chars: int
    ) -> dict[str, Any]:
        engine = self.engine
        seq = prompt_ids + new
        result = forward_logprobs(engine.model, engine.device, seq, top)
        first = 0 if echo else len(prompt_ids)
        texts = token_texts(self.tokenizer, prompt_ids) if echo else []
        texts += token_texts(self.tokenizer, new)
        ids = seq[first:]
        offsets, at = [], 0
        for i, piece in enumerate(texts):
            if echo and i == len(prompt_ids):
                at = prompt_chars  # the completion is appended to the prompt as given
            offsets.append(at)
            at += len(piece)
        tokens = display_tokens(self.tokenizer, ids, texts)
        top_logprobs: list[dict[str, float] | None] = []
        for i, (token_id, token) in enumerate(zip(ids, tokens, strict=True)):
            alternatives = result.top[first + i]
            if alternatives is None:
                top_logprobs.append(None)
                continue
            entry = {self._piece(t): lp for t, lp in alternatives if t != token_id}
            chosen = result.logprobs[first + i]
            if top > 0 and chosen is not None:
                entry[token] = chosen
            top_logprobs.append(dict(sorted(entry.items(), key=lambda kv: -kv[1])))
        return {
            "tokens": tokens,
            "token_logprobs": result.logprobs[first:],
            "top_logprobs": top_logprobs,
            "text_offset": offsets,
        }

    def _piece(self, token_id: int) -> str:
        return self.tokenizer.decode([token_id], skip_special_tokens=False)

    def chat_prompt(self, messages: list[dict[str, Any]]) -> str:
        if not getattr(self.tokenizer, "chat_template", None):
            raise APIError(
                400,
                "this model's tokenizer has no chat template; use /v1/completions",
                param="messages",
            )
        try:
            return self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
        except Exception as exc:  # jinja raises its own types for messages a template refuses
            raise APIError(400, f"the chat template failed: {exc}", param="messages") from None


# ----------------------------------------------------------------------------- the app
def _common(body: _Body, model_name: str) -> tuple[int | None, list[str]]:
    if body.model != model_name:
        raise APIError(
            404, f"the model {body.model!r} does not exist", code="model_not_found", param="model"
        )
    if body.n != 1:
        raise APIError(400, "only n=1 is supported", param="n")
    if body.stream:
        raise APIError(400, "streaming is not supported", param="stream")
    stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    return body.max_tokens, [s for s in stop if s]


async def _client_gone(request: Request) -> None:
    """Returns when the client disconnects. The body has been read, so the server's next
    message is the disconnect (uvicorn keeps reading the socket while we wait)."""
    while (await request.receive())["type"] != "http.disconnect":
        await asyncio.sleep(0.05)  # a server that repeats empty body messages must not spin


def create_app(
    engine: HFEngine,
    model_name: str,
    api_key: str | None = None,
    *,
    max_queue: int = DEFAULT_MAX_QUEUE,
    queue_timeout: float = DEFAULT_QUEUE_TIMEOUT,
) -> FastAPI:
    """The FastAPI app serving `engine` as `model_name`; with `api_key`, every request must
    carry `Authorization: Bearer <api_key>`. At most `max_queue` requests wait behind the running
    one, each for at most `queue_timeout` seconds. `app.state.scheduler` is what a server
    stops on shutdown."""
    server = Server(engine)
    scheduler = Scheduler(max_queue)

    async def run(request: Request, response: Response, work: Callable[[threading.Event], Any]):
        """`work` on the model thread, with its request's queue limits, client and headers."""
        try:
            job = scheduler.submit(work)
        except Rejected as exc:
            log.warning("503 %s: %s", exc.code, exc.message)
            raise _unavailable(exc) from None
        try:
            result = await await_job(scheduler, job, _client_gone(request), queue_timeout)
        except Rejected as exc:
            log.warning("503 %s: %s", exc.code, exc.message)
            raise _unavailable(exc, job.queue_seconds) from None
        except Cancelled:
            where = "computing" if job.started is not None else "queued"
            log.info(
                "client went away while %s (%.1f s queued, %.1f s computing): work stopped",
                where,
                job.queue_seconds,
                job.compute_seconds,
            )
            raise APIError(CLIENT_GONE, "the client closed the request", "server_error") from None
        response.headers.update(_timing(job.queue_seconds, job.compute_seconds))
        if job.queue_seconds >= 1:
            log.info(
                "a request waited %.1f s in the queue, then computed %.1f s",
                job.queue_seconds,
                job.compute_seconds,
            )
        return result

    def authorise(request: Request) -> None:
        if api_key is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip(), api_key):
            raise APIError(401, "invalid or missing API key", code="invalid_api_key")

    app = FastAPI(title="gnomon", dependencies=[Depends(authorise)])

    @app.exception_handler(APIError)
    async def api_error(_: Request, exc: APIError) -> JSONResponse:
        return JSONResponse(
            _error_body(exc.message, exc.type, exc.code, exc.param),
            status_code=exc.status,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for e in exc.errors():
            where = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
            parts.append(f"{where}: {e.get('msg')}" if where else str(e.get("msg")))
        message = "; ".join(parts) or "invalid request body"
        return JSONResponse(_error_body(message, "invalid_request_error"), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = "invalid_request_error" if exc.status_code < 500 else "server_error"
        return JSONResponse(
            _error_body(str(exc.detail), type_), status_code=exc.status_code, headers=exc.headers
        )

    @app.get("/health")
    def health() -> dict[str, Any]:
        """Liveness, and the queue: running and queued now; started, finished, cancelled and
        rejected (503) requests since start-up."""
        return {"status": "ok", **scheduler.load(), **asdict(scheduler.counts)}

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": model_name, "object": "model", "created": 0, "owned_by": "gnomon"}],
        }

    @app.post("/v1/completions")
    async def completions(body: CompletionBody, request: Request, response: Response):
        max_tokens, stop = _common(body, model_name)
        texts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
        if not texts:
            raise APIError(400, "prompt is an empty list", param="prompt")
        limit = 16 if max_tokens is None else max_tokens
        prompts = await run_in_threadpool(lambda: [server.prepare(t, limit) for t in texts])

        def work(cancel: threading.Event) -> list[Choice]:
            return [
                server.complete(
                    prompt,
                    temperature=body.temperature,
                    top_p=body.top_p,
                    stop=stop,
                    seed=body.seed,
                    echo=body.echo,
                    logprobs=body.logprobs,
                    cancel=cancel,
                )
                for prompt in prompts
            ]

        out: list[Choice] = await run(request, response, work)
        choices = [
            {
                "index": index,
                "text": (prompt.text if body.echo else "") + choice.text,
                "logprobs": choice.logprobs,
                "finish_reason": choice.finish_reason,
            }
            for index, (prompt, choice) in enumerate(zip(prompts, out, strict=True))
        ]
        return {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": model_name,
            "choices": choices,
            "usage": _usage(
                sum(c.prompt_tokens for c in out), sum(c.completion_tokens for c in out)
            ),
        }

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatBody, request: Request, response: Response):
        max_tokens, stop = _common(body, model_name)
        messages = [m.model_dump(exclude_none=True) for m in body.messages]
        prompt = await run_in_threadpool(
            lambda: server.prepare(server.chat_prompt(messages), max_tokens)
        )

        def work(cancel: threading.Event) -> Choice:
            return server.complete(
                prompt,
                temperature=body.temperature,
                top_p=body.top_p,
                stop=stop,
                seed=body.seed,
                echo=False,
                logprobs=None,
                cancel=cancel,
            )

        choice: Choice = await run(request, response, work)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model_name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": choice.text},
                    "finish_reason": choice.finish_reason,
                }
            ],
            "usage": _usage(choice.prompt_tokens, choice.completion_tokens),
        }

    app.state.scheduler = scheduler
    return app


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _timing(queued: float, computed: float) -> dict[str, str]:
    return {"X-Queue-Time": f"{queued:.3f}", "X-Compute-Time": f"{computed:.3f}"}


def _unavailable(exc: Rejected, queued: float = 0.0) -> APIError:
    """503 with OpenAI's error body; `Retry-After` when the server expects to have room."""
    headers = _timing(queued, 0.0)
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    return APIError(503, exc.message, "server_error", code=exc.code, headers=headers)
