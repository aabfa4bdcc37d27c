"""One model, many HTTP requests: a bounded queue in front of a single worker thread.

A loaded model is one device's worth of compute, and `torch.manual_seed` (seeded sampling) is
process-global, so requests run one at a time. What the queue adds over a plain lock is what a
lock cannot say: how many are waiting (so a full queue is refused at once with 503 and a
`Retry-After`, instead of letting clients time out behind it), whether a waiting request's client
is still there (a withdrawn job never starts), and a flag the running job polls between decoding
steps (so a client that hangs up, or a server told to stop, ends the model work within a step).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any

# Weight of the newest request in the running mean of compute time that Retry-After is read from.
_SMOOTHING = 0.3
MAX_RETRY_AFTER = 600


class Cancelled(Exception):
    """The job stopped (or never started) because its client went away or the server is stopping."""


class Rejected(Exception):
    """The server will not take (or no longer holds) the request; the client should retry later."""

    def __init__(self, message: str, code: str, retry_after: int | None) -> None:
        super().__init__(message)
        self.message, self.code, self.retry_after = message, code, retry_after


def _fail(future: Future[Any], exc: BaseException) -> None:
    """Fail a queued job's future, which its request may have cancelled meanwhile."""
    with contextlib.suppress(InvalidStateError):
        future.set_exception(exc)


@dataclass(eq=False)
class Job:
    """One request's model work. `work` receives `cancel` and must poll it between steps."""

    work: Callable[[threading.Event], Any]
    cancel: threading.Event = field(default_factory=threading.Event)
    future: Future[Any] = field(default_factory=Future)
    enqueued: float = field(default_factory=time.monotonic)
    started: float | None = None
    finished: float | None = None

    @property
    def queue_seconds(self) -> float:
        return (self.started or time.monotonic()) - self.enqueued

    @property
    def compute_seconds(self) -> float:
        if self.started is None:
            return 0.0
        return (self.finished or time.monotonic()) - self.started


@dataclass
class Counts:
    """Totals since start-up, shown by /health so an operator (or a test) can see the queue."""

    started: int = 0
    finished: int = 0
    cancelled: int = 0
    rejected: int = 0


class Scheduler:
    """Runs submitted jobs one at a time, in order, on a daemon thread.

    The thread is a daemon so that a job stuck in native code can never keep the process alive
    after the server has shut down; `stop` cancels work first, so that is a last resort.
    """

    def __init__(self, max_queue: int) -> None:
        if max_queue < 0:
            raise ValueError("max_queue must be >= 0")
        self.max_queue = max_queue
        self.counts = Counts()
        self._cond = threading.Condition()
        self._waiting: deque[Job] = deque()
        self._running: Job | None = None
        self._stopping = False
        self._mean_compute: float | None = None
        self._thread = threading.Thread(target=self._loop, name="gnomon-model", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ the HTTP side
    def submit(self, work: Callable[[threading.Event], Any]) -> Job:
        """Queue `work`, or raise `Rejected` (503) when the queue is full or the server stopping."""
        with self._cond:
            if self._stopping:
                raise Rejected("the server is shutting down", "server_shutting_down", None)
            # when idle, the job about to start is not waiting for anything: it gets a slot
            if len(self._waiting) >= self.max_queue + (self._running is None):
                self.counts.rejected += 1
                raise Rejected(
                    f"the server is busy: {len(self._waiting)} requests are already queued "
                    f"(--max-queue {self.max_queue}); retry later",
                    "server_busy",
                    self._retry_after(),
                )
            job = Job(work)
            self._waiting.append(job)
            self._cond.notify()
            return job

    def withdraw(self, job: Job, reason: Rejected | None = None) -> bool:
        """Take `job` back: a queued one is removed (it never starts) and failed with `reason` (or
        `Cancelled`); a running one is told to stop. True when it was still queued."""
        with self._cond:
            queued = job in self._waiting
            if queued:
                self._waiting.remove(job)
                self.counts.cancelled += reason is None
                self.counts.rejected += reason is not None
        job.cancel.set()
        if queued:
            _fail(job.future, reason or Cancelled("the request was withdrawn"))
        return queued

    def retry_after(self) -> int:
        with self._cond:
            return self._retry_after()

    def load(self) -> dict[str, int]:
        with self._cond:
            return {"running": int(self._running is not None), "queued": len(self._waiting)}

    def stop(self) -> tuple[int, int]:
        """Refuse new work, fail the queued jobs with 503 and cancel the running one.

        Returns (running, queued) as they were, for the line the server prints on exit."""
        with self._cond:
            self._stopping = True
            waiting, self._waiting = list(self._waiting), deque()
            running = self._running
            self.counts.rejected += len(waiting)
            self._cond.notify_all()
        if running is not None:
            running.cancel.set()
        for job in waiting:
            job.cancel.set()
            _fail(job.future, Rejected("the server is shutting down", "server_shutting_down", None))
        return int(running is not None), len(waiting)

    def join(self, timeout: float) -> bool:
        """Wait for the worker to finish its job after `stop`; False if it is still busy."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # ------------------------------------------------------------------ the worker
    def _retry_after(self) -> int:
        """Seconds until a slot is likely to free: about one request's compute time (the running
        request ends and the first queued one starts), from the running mean of recent ones."""
        mean = self._mean_compute or 1.0
        return max(1, min(MAX_RETRY_AFTER, math.ceil(mean)))

    def _next(self) -> Job | None:
        with self._cond:
            while True:
                while not self._waiting and not self._stopping:
                    self._cond.wait()
                if not self._waiting:
                    return None  # stopping, nothing left
                job = self._waiting.popleft()
                # a client that left while queued: its job never starts
                if job.cancel.is_set() or not job.future.set_running_or_notify_cancel():
                    self.counts.cancelled += 1
                    continue
                job.started = time.monotonic()
                self._running = job
                self.counts.started += 1
                return job

    def _loop(self) -> None:
        while (job := self._next()) is not None:
            try:
                result = job.work(job.cancel)
            except BaseException as exc:  # delivered to the request, which answers for it
                job.finished = time.monotonic()
                job.future.set_exception(exc)
                cancelled = isinstance(exc, Cancelled)
            else:
                job.finished = time.monotonic()
                job.future.set_result(result)
                cancelled = False
            with self._cond:
                self._running = None
                if cancelled:
                    self.counts.cancelled += 1
                else:
                    self.counts.finished += 1
                    seconds = job.compute_seconds
                    mean = self._mean_compute
                    self._mean_compute = (
                        seconds if mean is None else mean + _SMOOTHING * (seconds - mean)
                    )


async def await_job(
    scheduler: Scheduler, job: Job, gone: Coroutine[Any, Any, None], queue_timeout: float
) -> Any:
    """The job's result, awaited on the event loop while watching its client.

    `gone` finishes when the client disconnects: the job is then withdrawn (never started, or
    stopped at its next step) and `Cancelled` raised. A job still queued after `queue_timeout`
    seconds is withdrawn with a 503 `Rejected`, so no request waits without bound.
    """
    loop = asyncio.get_running_loop()
    result = asyncio.wrap_future(job.future)
    watcher = asyncio.ensure_future(gone)
    deadline = loop.time() + queue_timeout
    try:
        while True:
            wait = None if job.started is not None else max(0.0, deadline - loop.time())
            done, _ = await asyncio.wait(
                {result, watcher}, timeout=wait, return_when=asyncio.FIRST_COMPLETED
            )
            if result in done:
                try:
                    return result.result()
                except Cancelled:  # not by this request, so by `stop`: the server is going
                    raise Rejected(
                        "the server is shutting down", "server_shutting_down", None
                    ) from None
            if watcher in done:
                scheduler.withdraw(job)
                raise Cancelled("the client went away")
            if job.started is None:
                late = Rejected(
                    f"the request waited {queue_timeout:g} s in the queue without starting "
                    "(--queue-timeout); retry later",
                    "queue_timeout",
                    scheduler.retry_after(),
                )
                if scheduler.withdraw(job, late):
                    raise late
            # it started meanwhile: wait for it without a deadline (max_tokens bounds it)
    finally:
        watcher.cancel()
        if not result.done():  # gone, timed out, or this task cancelled at shutdown
            scheduler.withdraw(job)
            result.cancel()  # nobody reads the outcome now, so nothing may be left to report
