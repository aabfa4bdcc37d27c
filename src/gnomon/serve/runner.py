"""Running the app under uvicorn so that SIGTERM and Ctrl-C stop it within seconds.

uvicorn's graceful shutdown waits for every open request to be answered, and a generation can
take minutes, so a plain `uvicorn.run` only stopped on a second Ctrl-C. Here shutdown first stops
the model work (the running generation ends at its next step, queued requests are answered 503),
then lets uvicorn close the connections, which now finish at once.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn

from gnomon.serve import DEFAULT_MAX_QUEUE, DEFAULT_QUEUE_TIMEOUT
from gnomon.serve.app import create_app
from gnomon.serve.scheduler import Scheduler

if TYPE_CHECKING:
    import socket

    from gnomon.engines.hf import HFEngine

# the connections' last responses are small and already computed once the work is cancelled
GRACE_SECONDS = 5  # whole seconds: uvicorn takes timeout_graceful_shutdown as an int


@dataclass(frozen=True)
class Stopped:
    """How the server ended, for the one line the command prints."""

    signal: str | None  # "SIGTERM", "SIGINT", or None when it stopped for another reason
    cancelled: int  # running generations stopped
    refused: int  # queued requests answered 503

    def describe(self) -> str:
        why = f"on {self.signal}" if self.signal else "server stopped"
        return (
            f"stopped {why}: {self.cancelled} running request(s) cancelled, "
            f"{self.refused} queued request(s) answered 503"
        )


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, scheduler: Scheduler) -> None:
        super().__init__(config)
        self.scheduler = scheduler
        self.signal: int | None = None
        self.stopped = (0, 0)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # In a signal handler: only flags here, no locks (the interrupted code may hold them).
        if self.signal is None:
            self.signal = sig
        super().handle_exit(sig, frame)

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        """uvicorn's own re-raises the signal after shutting down, which would kill the process
        before it reports; a server asked to stop has done what was asked, so it exits 0."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.stopped = self.scheduler.stop()  # before uvicorn waits on the open requests
        await super().shutdown(sockets)


def serve(
    engine: HFEngine,
    model_name: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: str | None = None,
    max_queue: int = DEFAULT_MAX_QUEUE,
    queue_timeout: float = DEFAULT_QUEUE_TIMEOUT,
) -> Stopped:
    """Serve until SIGTERM or Ctrl-C. Loopback by default: without a key anyone who can reach
    the port can use the model."""
    app = create_app(engine, model_name, api_key, max_queue=max_queue, queue_timeout=queue_timeout)
    scheduler: Scheduler = app.state.scheduler
    config = uvicorn.Config(
        app, host=host, port=port, log_level="info", timeout_graceful_shutdown=GRACE_SECONDS
    )
    server = _Server(config, scheduler)
    try:
        server.run()
    finally:
        running, queued = server.stopped if server.started else scheduler.stop()
        scheduler.join(GRACE_SECONDS)  # the cancelled generation returns within a step
    name = signal.Signals(server.signal).name if server.signal is not None else None
    return Stopped(name, running, queued)
