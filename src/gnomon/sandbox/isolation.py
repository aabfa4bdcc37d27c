"""What isolation this host offers, probed once: namespaces, a uid to drop to, an interpreter.

Every mechanism is used when the host has it and reported when it does not, so `gnomon` can say
exactly what is and is not isolated on a given machine (`describe()`).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

UID_BASE = 61000  # sandbox uids start here (no /etc/passwd entry needed)
UID_SPAN = 1 << 20  # each Sandbox draws its block of uids at random from this span
_NAMESPACE_FLAGS = [
    "--net", "--pid", "--ipc", "--mount", "--fork", "--kill-child", "--mount-proc",
]  # fmt: skip
CGROUP_V1 = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Isolation:
    wrapper: tuple[str, ...]  # command prefix that enters new namespaces, or empty
    namespaces: bool  # network, PID, IPC and mount namespaces
    drop_uid: bool  # run as an unprivileged uid per slot (needs root)
    python: str  # interpreter the sandboxed uid can execute and import from
    cgroups: tuple[str, ...]  # writable cgroup v1 folders (memory, pids) to nest runs in

    def describe(self) -> list[str]:
        lines = [
            "each program: its own process and empty working folder, resource limits (CPU, "
            "memory, processes, file size, open files), wall-clock timeout, scrubbed environment",
            "verdict: the tests run in a separate judge process that calls the solution over a "
            "pipe with plain data only, and alone holds the verdict pipe",
            "kernel keyrings, ptrace and cross-process memory calls: denied (seccomp)"
            if os.uname().machine in ("x86_64", "aarch64")
            else "NOT isolated here: kernel keyrings (no seccomp filter for this processor)",
        ]
        if self.namespaces:
            lines.append(
                "network: none (own network namespace); processes: own PID namespace, so nothing "
                "outlives the program and other processes are invisible; /tmp, /var/tmp, /dev/shm "
                "private; /dev holds null, zero, full, random and urandom only; /sys is empty; "
                "gnomon's stores are covered"
            )
        else:
            lines.append(
                "NOT isolated here: network (sockets are refused by an audit hook only), other "
                "processes' /proc; stray processes are killed by process group only"
            )
        if self.cgroups:
            lines.append(
                "memory and process count: limited for the program's whole process tree (cgroups)"
            )
        else:
            lines.append(
                "NOT isolated here: memory is limited per process, not per program (no cgroups)"
            )
        if self.drop_uid:
            lines.append(
                "filesystem: runs as an unprivileged uid (the judge as another); writes only in "
                "its own size-limited folder"
            )
        else:
            lines.append(
                "NOT isolated here: the program runs as your user and can read your files and "
                "write where you can, and the judge runs as the same user (not traceable, but "
                "it could be killed: no verdict, so never a pass; gnomon is not root, so it "
                "cannot drop privileges)"
            )
        return lines


def _works(command: list[str]) -> bool:
    try:
        return subprocess.run(command, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _python_for(uid: int | None, wrapper: tuple[str, ...]) -> str:
    """The first interpreter that still imports its standard library after the uid drop."""
    candidates = [os.environ.get("GNOMON_SANDBOX_PYTHON"), sys.executable, "/usr/bin/python3"]
    candidates.append(shutil.which("python3"))
    probe = "import os, json, collections, math, re, hashlib"
    if uid is not None:
        probe = f"import os; os.setgroups([]); os.setgid({uid}); os.setuid({uid}); " + probe
    for python in candidates:
        if python and Path(python).exists() and _works([*wrapper, python, "-I", "-c", probe]):
            return python
    raise RuntimeError("no Python interpreter usable inside the sandbox; set GNOMON_SANDBOX_PYTHON")


@functools.cache
def probe() -> Isolation:
    wrapper: tuple[str, ...] = ()
    unshare = shutil.which("unshare")
    if unshare and os.name == "posix":
        for extra in ([], ["--user", "--map-root-user"]):
            candidate = (unshare, *extra, *_NAMESPACE_FLAGS)
            if _works([*candidate, "true"]):
                wrapper = candidate
                break
    drop_uid = os.geteuid() == 0 and "--user" not in wrapper
    python = _python_for(UID_BASE if drop_uid else None, wrapper)
    cgroups = _cgroups() if drop_uid and wrapper else ()
    return Isolation(wrapper, bool(wrapper), drop_uid, python, cgroups)


def _cgroups() -> tuple[str, ...]:
    """This process's own memory and pids cgroups (v1), if we may create children in them."""
    found = []
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return ()
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for controller in ("memory", "pids"):
            if controller in controllers.split(","):
                base = CGROUP_V1 / controller / path.lstrip("/")
                probe_dir = base / f"gnomon-probe-{os.getpid()}"
                try:
                    probe_dir.mkdir()
                    probe_dir.rmdir()
                except OSError:
                    return ()
                found.append(str(base))
    return tuple(found) if len(found) == 2 else ()
