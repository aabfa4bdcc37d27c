"""Running the installed `gnomon` console script the way a user does, for the end-to-end tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

GNOMON = Path(sys.executable).parent / "gnomon"
# One torch thread: the models are tiny, and two threads on two busy cores spin rather than work.
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
SUMMARY = re.compile(
    r"(\d+) samples: (\d+) reused from the store, (?:(\d+) re-scored from stored answers, )?"
    r"(\d+) computed"
)


def gnomon(
    *args: object, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GNOMON), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or ENV,
    )


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    return proc


def summary(stdout: str) -> tuple[int, int, int]:
    """(planned, reused, computed) from the line a run prints at the end."""
    match = SUMMARY.search(stdout)
    assert match, stdout
    planned, reused, _, computed = (int(g or 0) for g in match.groups())
    return planned, reused, computed


def rescored(stdout: str) -> int:
    """How many samples a run scored from answers already in the store."""
    match = SUMMARY.search(stdout)
    assert match, stdout
    return int(match.group(3) or 0)
