"""An OpenAI-compatible HTTP API over one loaded `HFEngine`.

Endpoints: `GET /v1/models`, `POST /v1/completions`, `POST /v1/chat/completions`, `GET /health`.
Errors use OpenAI's body and status codes (`errors.py`); the model work is `model.py`.

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
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from gnomon.engines.answers import THINK_CLOSE, THINK_OPEN, opens_thinking, split_thinking
from gnomon.engines.base import GenerateRequest, Message, ToolCall
from gnomon.serve import DEFAULT_MAX_QUEUE, DEFAULT_QUEUE_TIMEOUT
from gnomon.serve.errors import APIError, error_body
from gnomon.serve.model import MAX_TOP_LOGPROBS, Choice, Server
from gnomon.serve.scheduler import Cancelled, Rejected, Scheduler, await_job
from gnomon.text import dumps as json_text

if TYPE_CHECKING:
    from gnomon.engines.hf import HFEngine

# nginx's "client closed request": logged for requests whose client left; nobody receives it
CLIENT_GONE = 499
log = logging.getLogger("uvicorn.error")  # uvicorn configures it, so lines show with its own


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
    tools: list[dict[str, Any]] | None = None


def _conversation(body: ChatBody, stop: list[str], max_tokens: int | None) -> GenerateRequest:
    """The chat body as the engine's request: the turns (with any tool calls and tool answers)
    and the tools, which the engine renders through the model's chat template."""
    messages = []
    for at, m in enumerate(body.messages):
        extra = m.model_extra or {}
        try:
            calls = tuple(
                ToolCall(
                    str(c["function"]["name"]),
                    _arguments(c["function"].get("arguments", "")),
                    None if c.get("id") is None else str(c["id"]),
                )
                for c in extra.get("tool_calls") or ()
            )
        except (KeyError, TypeError, AttributeError):
            raise APIError(
                400, "a tool call needs function.name", param=f"messages.{at}.tool_calls"
            ) from None
        call_id, name = extra.get("tool_call_id"), extra.get("name")
        messages.append(
            Message(
                m.role,
                m.content or "",
                calls,
                None if call_id is None else str(call_id),
                None if name is None else str(name),
            )
        )
    tools = None if body.tools is None else json_text(body.tools, sort_keys=True)
    return GenerateRequest(
        "", tuple(stop), max_tokens or 0, body.temperature, body.seed or 0, tuple(messages), tools
    )


def _arguments(value: Any) -> str:
    return value if isinstance(value, str) else json_text(value, sort_keys=True)


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

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        scheduler.stop()  # any server's shutdown: the model thread is not left waiting

    app = FastAPI(title="gnomon", dependencies=[Depends(authorise)], lifespan=lifespan)
    app.add_middleware(EchoRequestId)

    @app.exception_handler(APIError)
    async def api_error(_: Request, exc: APIError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.message, exc.type, exc.code, exc.param),
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
        return JSONResponse(error_body(message, "invalid_request_error"), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = "invalid_request_error" if exc.status_code < 500 else "server_error"
        return JSONResponse(
            error_body(str(exc.detail), type_), status_code=exc.status_code, headers=exc.headers
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
            return server.complete(
                prompts,
                temperature=body.temperature,
                top_p=body.top_p,
                stop=stop,
                seed=body.seed,
                echo=body.echo,
                logprobs=body.logprobs,
                cancel=cancel,
            )

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
        return JSONText(
            {
                "id": f"cmpl-{uuid.uuid4().hex}",
                "object": "text_completion",
                "created": int(time.time()),
                "model": model_name,
                "choices": choices,
                "usage": _usage(
                    sum(c.prompt_tokens for c in out), sum(c.completion_tokens for c in out)
                ),
            },
            headers=dict(response.headers),
        )

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatBody, request: Request, response: Response):
        max_tokens, stop = _common(body, model_name)
        conversation = _conversation(body, stop, max_tokens)
        prompt = await run_in_threadpool(
            lambda: server.prepare(server.chat_prompt(conversation), max_tokens)
        )

        def work(cancel: threading.Event) -> Choice:
            return server.complete(
                [prompt],
                temperature=body.temperature,
                top_p=body.top_p,
                stop=stop,
                seed=body.seed,
                echo=False,
                logprobs=None,
                cancel=cancel,
            )[0]

        choice: Choice = await run(request, response, work)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model_name,
            "choices": [
                {
                    "index": 0,
                    "message": _assistant(choice.text, opens_thinking(prompt.text)),
                    "finish_reason": choice.finish_reason,
                }
            ],
            "usage": _usage(choice.prompt_tokens, choice.completion_tokens),
        }

    app.state.scheduler = scheduler
    return app


def _assistant(text: str, opened: bool) -> dict[str, Any]:
    """The answer's message: a reasoning model's thinking (`<think>` blocks, or the text before
    `</think>` where the chat template opened the block in the prompt) goes to
    `reasoning_content`, as vLLM's reasoning parsers give it, so that an answer cut inside its
    thinking is an empty answer, not its thinking."""
    if not opened and THINK_OPEN not in text and THINK_CLOSE not in text:
        return {"role": "assistant", "content": text}
    answer, reasoning = split_thinking(THINK_OPEN + text if opened else text)
    message: dict[str, Any] = {"role": "assistant", "content": answer}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    return message


class JSONText(JSONResponse):
    """A body as `gnomon.text.dumps` writes it: an echoed prompt may hold lone surrogates (sent
    as JSON escapes), which plain JSON encoding cannot put into UTF-8. Returned as a response,
    so FastAPI does not walk a large echo (every token, its alternatives) before encoding it."""

    def render(self, content: Any) -> bytes:
        return json_text(content, separators=(",", ":")).encode("utf-8")


class EchoRequestId:
    """Every answer carries the `X-Request-Id` its request sent, so a client can tell that an
    answer is its own (a proxy or a keep-alive mix-up can hand it someone else's). Plain ASGI,
    so the endpoints still see a client that disconnects."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        sent = [v for k, v in scope.get("headers", []) if k == b"x-request-id"][:1]
        if scope["type"] != "http" or not sent or len(sent[0]) > 200:
            await self.app(scope, receive, send)
            return

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"x-request-id", sent[0])]}  # fmt: skip
            await send(message)

        await self.app(scope, receive, send_with_id)


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
