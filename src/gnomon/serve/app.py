"""An OpenAI-compatible HTTP API over one loaded `HFEngine`.

Endpoints: `GET /v1/models`, `POST /v1/completions`, `POST /v1/chat/completions`. Errors use
OpenAI's body (`{"error": {"message", "type", "code"}}`) and status codes, because clients (the
openai package, lm-evaluation-harness's `local-completions`) branch on them.

Model work is serialised by one lock: a loaded model is one device's worth of compute, and
`torch.manual_seed` for seeded sampling is process-global, so concurrent requests would only
contend and make seeds meaningless.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from gnomon.serve.logprobs import display_tokens, forward_logprobs, token_texts

if TYPE_CHECKING:
    from gnomon.engines.hf import HFEngine

MAX_TOP_LOGPROBS = 5


class APIError(Exception):
    """An error the client caused (or must know about), sent as OpenAI's error body."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = (
            status,
            message,
            type_,
            code,
            param,
        )


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


class Server:
    """The model side: tokenise, check the window, generate, read log-probabilities."""

    def __init__(self, engine: HFEngine) -> None:
        self.engine = engine
        self.tokenizer = engine.tokenizer
        self.lock = threading.Lock()
        eos_id = self.tokenizer.eos_token_id
        self.eos_ids = {eos_id} if eos_id is not None else set()
        self.eos_text = (
            self.tokenizer.decode([eos_id], skip_special_tokens=False) if eos_id is not None else ""
        )

    def complete(
        self,
        prompt: str,
        *,
        max_tokens: int | None,
        temperature: float,
        top_p: float,
        stop: list[str],
        seed: int | None,
        echo: bool,
        logprobs: int | None,
    ) -> Choice:
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
        with self.lock:
            new = self._generate(ids, max_tokens, temperature, top_p, stop, seed)
            text, finish, kept = self._finish(new, max_tokens, stop)
            lp = None
            if logprobs is not None:
                lp = self._logprobs(ids, new[:kept], logprobs, echo, len(prompt))
        return Choice(text, finish, len(ids), len(new), lp)

    def _generate(
        self,
        ids: list[int],
        max_tokens: int,
        temperature: float,
        top_p: float,
        stop: list[str],
        seed: int | None,
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


def create_app(engine: HFEngine, model_name: str, api_key: str | None = None) -> FastAPI:
    """The FastAPI app serving `engine` as `model_name`; with `api_key`, every request must
    carry `Authorization: Bearer <api_key>`."""
    server = Server(engine)

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
            _error_body(exc.message, exc.type, exc.code, exc.param), status_code=exc.status
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
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": model_name, "object": "model", "created": 0, "owned_by": "gnomon"}],
        }

    @app.post("/v1/completions")
    def completions(body: CompletionBody) -> dict[str, Any]:
        max_tokens, stop = _common(body, model_name)
        prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
        if not prompts:
            raise APIError(400, "prompt is an empty list", param="prompt")
        choices, prompt_tokens, completion_tokens = [], 0, 0
        for index, prompt in enumerate(prompts):
            choice = server.complete(
                prompt,
                max_tokens=16 if max_tokens is None else max_tokens,
                temperature=body.temperature,
                top_p=body.top_p,
                stop=stop,
                seed=body.seed,
                echo=body.echo,
                logprobs=body.logprobs,
            )
            prompt_tokens += choice.prompt_tokens
            completion_tokens += choice.completion_tokens
            choices.append(
                {
                    "index": index,
                    "text": (prompt if body.echo else "") + choice.text,
                    "logprobs": choice.logprobs,
                    "finish_reason": choice.finish_reason,
                }
            )
        return {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": model_name,
            "choices": choices,
            "usage": _usage(prompt_tokens, completion_tokens),
        }

    @app.post("/v1/chat/completions")
    def chat_completions(body: ChatBody) -> dict[str, Any]:
        max_tokens, stop = _common(body, model_name)
        prompt = server.chat_prompt([m.model_dump(exclude_none=True) for m in body.messages])
        choice = server.complete(
            prompt,
            max_tokens=max_tokens,
            temperature=body.temperature,
            top_p=body.top_p,
            stop=stop,
            seed=body.seed,
            echo=False,
            logprobs=None,
        )
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

    return app


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def serve(
    engine: HFEngine,
    model_name: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: str | None = None,
) -> None:
    """Serve until interrupted. Loopback by default: the API has no rate limits, and without a
    key anyone who can reach the port can use the model."""
    import uvicorn

    uvicorn.run(create_app(engine, model_name, api_key), host=host, port=port, log_level="info")
