"""How many intra-op threads torch should use, given the other work sharing the cores.

torch's default is one thread per core. On a shared machine that is the worst choice: when another
process keeps a core busy, every parallel region waits at its barrier for the thread that lost its
core, and many small forward passes (what prefix reuse produces) each pay that wait. Measured on a
2-core machine with one core busy, a 700-token forward took 0.12 s quiet, 1.9 s with two threads
and 0.25 s with one.

So the automatic policy counts the cores other processes leave free, from the kernel's per-CPU
busy time minus this process's own CPU time over a short window, and uses that many threads (at
least one). It looks again every few seconds between batches, so a neighbour that starts or stops
mid-run changes the choice. An explicit `--threads N` is used as given.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

RECHECK_S = 2.0  # how often the automatic policy looks again (between batches)
FIRST_WINDOW_S = 0.1  # the first look, before any batch: a short sample of the machine


def usable_cores() -> list[int]:
    """The CPUs this process may run on."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return list(range(os.cpu_count() or 1))


def _busy_ticks(cpus: list[int], stat: Path = Path("/proc/stat")) -> tuple[int, int] | None:
    """(busy, total) clock ticks summed over `cpus`, from /proc/stat; None where unreadable."""
    try:
        lines = stat.read_text().splitlines()
    except OSError:
        return None
    wanted = {f"cpu{c}" for c in cpus}
    busy = total = 0
    seen = 0
    for line in lines:
        fields = line.split()
        if not fields or fields[0] not in wanted:
            continue
        ticks = [int(x) for x in fields[1:9]]  # user nice system idle iowait irq softirq steal
        idle = ticks[3] + ticks[4]
        total += sum(ticks)
        busy += sum(ticks) - idle
        seen += 1
    return (busy, total) if seen else None


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


@dataclass
class _Sample:
    at: float
    ticks: tuple[int, int] | None
    own: float


def _sample(cpus: list[int]) -> _Sample:
    return _Sample(time.monotonic(), _busy_ticks(cpus), _own_cpu_s())


def free_cores(before: _Sample, after: _Sample, n_cores: int) -> float | None:
    """Cores not used by other processes between two samples (this process's own use is free:
    it is the work being scheduled). None when the kernel's counters are unavailable."""
    if before.ticks is None or after.ticks is None:
        return None
    busy = after.ticks[0] - before.ticks[0]
    total = after.ticks[1] - before.ticks[1]
    if total <= 0:
        return None
    wall = after.at - before.at
    if wall <= 0:
        return None
    # ticks are summed over cores: total/wall is ticks per second for the whole set
    cores_busy = n_cores * busy / total
    own_busy = (after.own - before.own) / wall
    return max(0.0, n_cores - max(0.0, cores_busy - own_busy))


def threads_for(free: float | None, n_cores: int) -> int:
    """One thread per free core, rounding a core that is mostly taken down to taken."""
    if free is None:
        try:
            load = os.getloadavg()[0]
        except OSError:
            return n_cores
        free = n_cores - load
    return max(1, min(n_cores, math.floor(free + 0.3)))


class ThreadPolicy:
    """Sets torch's intra-op threads: fixed when asked, else from the free cores, decided at the
    first batch (the window since the engine started loading is the first look) and re-checked
    between batches (`tick`)."""

    def __init__(self, requested: int | None) -> None:
        self.requested = requested
        self.cores = usable_cores()
        self.current = 0
        self.used: set[int] = set()  # every count chosen so far, for the run's record
        self._last = _sample(self.cores)
        self._decided = False
        if requested is not None:
            self._apply(requested)

    def _apply(self, n: int) -> None:
        import torch

        if n != self.current:
            torch.set_num_threads(n)
            self.current = n
        self.used.add(n)

    def tick(self) -> None:
        """Before a batch: look at the machine again if the last look is old enough."""
        if self.requested is not None:
            return
        waited = time.monotonic() - self._last.at
        if self._decided and waited < RECHECK_S:
            return
        if waited < FIRST_WINDOW_S:
            time.sleep(FIRST_WINDOW_S - waited)
        now = _sample(self.cores)
        self._apply(threads_for(free_cores(self._last, now, len(self.cores)), len(self.cores)))
        self._last = now
        self._decided = True

    def describe(self) -> str:
        if self.requested is not None:
            return str(self.requested)
        if not self.used:
            return "auto"
        low, high = min(self.used), max(self.used)
        return f"auto ({low})" if low == high else f"auto ({low}-{high})"
