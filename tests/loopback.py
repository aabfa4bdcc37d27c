"""Servers on loopback for the HTTP tests: an ASGI app served in a background thread, a scripted
OpenAI-compatible chat server, and a wait for a `gnomon serve` subprocess to answer.

Scripted servers are real HTTP servers that follow a rule the test knows, so a test asserts
what gnomon did with each reply rather than mocking the client."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from typing import Any

# What a scripted chat reply may be: the assistant's text; a message (`content`, `tool_calls`,
# `reasoning_content`, ...) that may also carry the choice's `finish_reason` (default "stop")
# and the response's `usage`; a ready HTTP response (an error status, say); or None for HTTP 500.
Reply = Any  # str | dict[str, Any] | a starlette Response | None
USAGE = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}


@contextmanager
def running(app: Any) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 (a free port) in a thread; yield its base URL."""
    import uvicorn

    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="critical", lifespan="off",
        timeout_graceful_shutdown=1,
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def chat_app(
    reply: Callable[[dict[str, Any]], Reply],
    models: Sequence[str] = (),
    *,
    usage: Mapping[str, int] | None = USAGE,
    bodies: list[dict[str, Any]] | None = None,
) -> Any:
    """An OpenAI-compatible chat server whose `POST /v1/chat/completions` answers `reply(body)`.

    `GET /v1/models` lists `models`, and is absent when there are none (gnomon trusts a server
    without it). `usage` is every response's, unless a reply's own `usage` replaces it; None
    leaves it out, as some servers do. Each request body is appended to `bodies` (if given)
    before `reply` sees it, under a lock since requests come concurrently. The app is returned
    so a test can add routes to it."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse, Response

    app = FastAPI()
    lock = threading.Lock()
    if models:

        @app.get("/v1/models")
        def listed() -> dict:
            return {"object": "list", "data": [{"id": m, "object": "model"} for m in models]}

    @app.post("/v1/chat/completions")
    def chat(body: dict) -> Any:
        if bodies is not None:
            with lock:
                bodies.append(body)
        said = reply(body)
        if said is None:
            return JSONResponse({"error": {"message": "the scripted server failed"}}, 500)
        if isinstance(said, Response):
            return said
        message = {"content": said} if isinstance(said, str) else dict(said)
        finish = message.pop("finish_reason", "stop")
        counts = message.pop("usage", usage)
        response: dict[str, Any] = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "choices": [{"index": 0, "message": {"role": "assistant", **message},
                         "finish_reason": finish}],
        }  # fmt: skip
        if counts is not None:
            response["usage"] = dict(counts)
        return response

    return app


def free_port() -> int:
    """A port free on 127.0.0.1 now, for a subprocess server that must be told its port."""
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_serving(
    proc: subprocess.Popen, url: str, timeout: float, headers: Mapping[str, str] | None = None
) -> None:
    """Wait until the server `proc` started answers `GET {url}/models` with 200; fail with its
    output if it exits first, or after `timeout` seconds."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            output = proc.communicate()[0]
            text = output.decode(errors="replace") if isinstance(output, bytes) else output
            raise AssertionError(f"the server exited ({proc.returncode}):\n{text}")
        try:
            if httpx.get(f"{url}/models", headers=headers, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{url} did not answer within {timeout:g} s"
        time.sleep(0.2)
