"""A time limit on one step of scoring a sample, so a pathological answer fails alone.

A spec's regex (an extractor, a `regexes_to_ignore` pattern) can backtrack exponentially on the
wrong text: `(a+)+$` on thirty `a`s and a `b` takes a minute, on forty a day, and one such answer
would hang a whole run. Python's `re` checks for signals while it matches, so a SIGALRM raised
in the main thread stops it; the sample then fails with the reason and its answer stays stored.
Signals reach only the main thread, so elsewhere (a scorer on a worker thread) there is no
bound, as for math-verify's own timeouts.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# Far above what a sane pattern needs on a long answer (a 50 MB output takes about a second).
REGEX_SECONDS = 10.0


class ScoringTimeout(Exception):
    """One step of scoring a sample ran past its limit."""


@contextmanager
def time_limit(seconds: float, what: str) -> Iterator[None]:
    if (
        not hasattr(signal, "setitimer")
        or threading.current_thread() is not threading.main_thread()
    ):
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise ScoringTimeout(f"{what} ran for more than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
