"""A token bucket for asyncio tasks: requests per minute and tokens per minute to an API.

Reservation, not polling: `acquire` takes its tokens at once (the level may go negative) and then
sleeps off the debt. There is no `await` between reading and updating the level, so on one event
loop concurrent tasks cannot overdraw the bucket, and they are served in arrival order. No
`asyncio.Lock` is held, so one bucket can outlive the event loop that first used it.
"""

from __future__ import annotations

import asyncio
import time


class TokenBucket:
    """`rate_per_minute` units per minute, with a burst of one second's worth (at least one unit)
    so that a run starts at once but never sends a minute's quota in its first second."""

    def __init__(self, rate_per_minute: float, burst: float | None = None) -> None:
        if rate_per_minute <= 0:
            raise ValueError("rate_per_minute must be positive")
        self.rate = rate_per_minute / 60.0  # units per second
        self.capacity = burst if burst is not None else max(1.0, self.rate)
        self.level = self.capacity
        self.stamp = time.monotonic()

    def reserve(self, amount: float) -> float:
        """Take `amount` units now; return the seconds to wait before using them."""
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        self.level -= amount
        return max(0.0, -self.level / self.rate)

    async def acquire(self, amount: float = 1.0) -> None:
        """Wait until `amount` units fit the rate. An amount above the burst is allowed: it only
        waits longer, so one long prompt can never deadlock the bucket."""
        delay = self.reserve(amount)
        if delay > 0:
            await asyncio.sleep(delay)
