"""Run untrusted programs and their tests in a sandbox, many at a time, and judge the outcome.

Each program runs in two processes (see harness.py): the solution's, and a judge that runs the
tests and alone holds the verdict pipe. The verdict is computed here, from the judge's
nonce-tagged report and its exit status; the program's own output is only kept (bounded) to show
why it failed.
"""

from __future__ import annotations

import ast
import contextlib
import marshal
import os
import queue
import secrets
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from gnomon.sandbox.hidden import hidden_mounts
from gnomon.sandbox.isolation import CGROUP_V1, UID_BASE, UID_SPAN, Isolation, probe

_HERE = Path(__file__).parent
# plain.py's codec first: the harness runs as one `python -I -c` source, with no gnomon to import
HARNESS = "\n".join(
    (_HERE / name).read_text(encoding="utf-8") for name in ("plain.py", "harness.py")
)
PRIVATE_DIRS = ["/tmp", "/var/tmp", "/dev/shm", "/run/lock"]


@dataclass(frozen=True)
class Limits:
    wall_seconds: float = 10.0
    cpu_seconds: int = 10
    memory_bytes: int = 1 << 30
    processes: int = 32  # tasks (processes and threads) of the sandbox's uid
    file_bytes: int = 16 << 20  # any one file written, stdout and stderr included
    disk_bytes: int = 64 << 20  # the whole working folder (a tmpfs, where namespaces exist)
    open_files: int = 64
    output_bytes: int = 4096  # of stdout and of stderr kept for the report


@dataclass(frozen=True)
class Program:
    """A solution, the tests that judge it, and the call that runs them.

    The tests run in the judge's process, not the solution's: a function they use is the
    solution's when neither they, `helpers` nor Python's builtins define it, and every name in
    `call` (HumanEval's entry point) is the solution's. `helpers` is trusted code the tests may
    use, such as the helper functions a HumanEval prompt defines: the judge runs its own copy, so
    a solution that redefines them changes only its own."""

    solution: str
    tests: str
    call: str = ""
    helpers: str = ""


@dataclass(frozen=True)
class Verdict:
    status: str  # passed, failed, timeout, crashed
    reason: str
    stdout: str
    stderr: str
    seconds: float

    @property
    def passed(self) -> bool:
        return self.status == "passed"


_SIGNAL_REASONS = {
    signal.SIGXCPU: "CPU time limit exceeded",
    signal.SIGXFSZ: "file size limit exceeded (output or a file it wrote)",
    signal.SIGSEGV: "crashed with a segmentation fault (e.g. recursion too deep for the stack)",
    signal.SIGKILL: "killed (CPU or memory limit)",
}


class Sandbox:
    """A pool of sandbox slots (one per worker), each running as its own unprivileged uid.

    Each Sandbox draws its uids at random from a large span, so two evaluations on one host do
    not share per-uid limits or see each other's processes."""

    def __init__(self, limits: Limits | None = None, workers: int | None = None) -> None:
        self.limits = limits or Limits()
        self.isolation: Isolation = probe()
        self.workers = max(1, workers or os.cpu_count() or 1)
        block = 64 * -(-2 * self.workers // 64)  # two uids a slot: the solution's, the judge's
        base = UID_BASE + secrets.randbelow(UID_SPAN // block) * block
        self.uids = [base + 2 * slot for slot in range(self.workers)]
        self.judge_uids = [uid + 1 for uid in self.uids]
        self._slots: queue.Queue[int] = queue.Queue()
        for slot in range(self.workers):
            self._slots.put(slot)

    def run(self, program: Program) -> Verdict:
        slot = self._slots.get()
        try:
            return self._run(program, slot)
        except UnicodeEncodeError:
            return Verdict("failed", "the program is not valid Unicode text", "", "", 0.0)
        finally:
            self._slots.put(slot)

    def run_many(
        self, programs: Sequence[Program], on_done: Callable[[int], None] | None = None
    ) -> Iterator[tuple[int, Verdict]]:
        """Yield (index, verdict) as programs finish, `workers` at a time."""
        with ThreadPoolExecutor(self.workers) as pool:
            futures = {pool.submit(self.run, p): i for i, p in enumerate(programs)}
            for future in as_completed(futures):
                if on_done:
                    on_done(1)
                yield futures[future], future.result()

    # ------------------------------------------------------------------ one program
    def _run(self, program: Program, slot: int) -> Verdict:
        """The run's folder is root's: the program's files, output and working folder live in
        it, and only `work/` belongs to the program, so it cannot swap the output files for
        links or pipes that gnomon would then read."""
        uids = (self.uids[slot], self.judge_uids[slot]) if self.isolation.drop_uid else None
        base = Path(tempfile.mkdtemp(prefix="gnomon-sandbox-"))
        cgroups = self._make_cgroups(base.name)
        try:
            os.chmod(base, 0o711)
            files = {"solution": program.solution, "tests": program.tests}
            for name, text in {**files, "helpers": program.helpers}.items():
                (base / f"{name}.py").write_text(text, encoding="utf-8")
                os.chmod(base / f"{name}.py", 0o600)  # read by the harness before it drops uid
            (base / "work").mkdir(mode=0o700)
            if uids is not None:
                os.chown(base / "work", uids[0], uids[0])
            return self._execute(program, base, uids, cgroups)
        finally:
            if uids is not None and not self.isolation.namespaces:
                for uid in uids:  # with a PID namespace nothing outlives the program anyway
                    _kill_uid(uid)
            _remove_tree(base)
            _remove_cgroups(cgroups)

    def _make_cgroups(self, name: str) -> list[str]:
        """Memory and process limits for the whole process tree, where cgroups are writable."""
        made = []
        for controller in self.isolation.cgroups:
            group = os.path.join(controller, name)
            try:
                os.mkdir(group)
                if Path(controller).relative_to(CGROUP_V1).parts[0] == "memory":
                    _write(group, "memory.limit_in_bytes", self.limits.memory_bytes)
                else:
                    _write(group, "pids.max", self.limits.processes + 1)  # + the judge
            except (OSError, ValueError, IndexError):
                continue
            made.append(group)
        return made

    def _execute(
        self, program: Program, base: Path, uids: tuple[int, int] | None, cgroups: list[str]
    ) -> Verdict:
        limits, iso = self.limits, self.isolation
        workdir = base / "work"
        verdict_r, verdict_w = os.pipe()
        nonce = secrets.token_hex(16)
        config = {
            "workdir": str(workdir),
            "solution_path": str(base / "solution.py"),
            "tests_path": str(base / "tests.py"),
            "helpers_path": str(base / "helpers.py"),
            "call": program.call,
            "entry_names": sorted(_loaded_names(program.call)),
            "uid": uids[0] if uids else None,
            "judge_uid": uids[1] if uids else None,
            "verdict_fd": verdict_w,
            "namespaces": iso.namespaces,
            "cgroups": cgroups,
            "disk_bytes": limits.disk_bytes,
            "private_dirs": PRIVATE_DIRS if iso.namespaces else [],
            "hide": hidden_mounts([base, Path(iso.python)]) if iso.namespaces else [],
            "recursion_limit": 3000,
            "message_bytes": max(1 << 20, limits.memory_bytes // 8),
            "signal_reasons": {int(sig): text for sig, text in _SIGNAL_REASONS.items()},
            "sigxcpu": int(signal.SIGXCPU),
            "rlimits": {
                "RLIMIT_CPU": limits.cpu_seconds,
                "RLIMIT_AS": limits.memory_bytes,
                "RLIMIT_NPROC": limits.processes,
                "RLIMIT_FSIZE": limits.file_bytes,
                "RLIMIT_NOFILE": limits.open_files,
                "RLIMIT_CORE": 0,
            },
        }
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(workdir),
            "TMPDIR": str(workdir),
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "0",
        }
        command = [*iso.wrapper, iso.python, "-I", "-c", HARNESS, marshal.dumps(config).hex()]
        out_path, err_path = base / "stdout", base / "stderr"
        started = time.monotonic()
        with out_path.open("wb") as out, err_path.open("wb") as err:
            try:
                proc = subprocess.Popen(
                    command,
                    stdin=subprocess.PIPE,
                    stdout=out,
                    stderr=err,
                    env=env,
                    cwd=base,
                    pass_fds=(verdict_w,),
                    start_new_session=True,
                )
            finally:
                os.close(verdict_w)
            with contextlib.suppress(BrokenPipeError):
                assert proc.stdin is not None
                proc.stdin.write(nonce.encode())
                proc.stdin.close()
            code, cpu, timed_out = _wait(proc, started + limits.wall_seconds)
            _kill_group(proc.pid)  # anything left in its session (no-namespace hosts)
        seconds = time.monotonic() - started
        os.set_blocking(verdict_r, False)  # a stray writer left alive must not hang us
        try:
            report = os.read(verdict_r, 8192).decode(errors="replace")
        except BlockingIOError:
            report = ""
        finally:
            os.close(verdict_r)
        status, reason = _judge(report, nonce, code, cpu, timed_out, limits)
        if status in ("failed", "crashed") and "killed" in reason + report and _oom_killed(cgroups):
            return Verdict("failed", "memory limit exceeded (killed)", "", "", seconds)
        stdout = _head(out_path, limits.output_bytes)
        stderr = _head(err_path, limits.output_bytes)
        stderr = "".join(
            line for line in stderr.splitlines(True) if not line.startswith("unshare:")
        )
        return Verdict(status, reason, stdout, stderr, seconds)


def _wait(proc: subprocess.Popen[bytes], deadline: float) -> tuple[int, float, bool]:
    """Exit code, CPU seconds of the whole process tree it waited for, and whether it timed out.

    wait4's resource usage is what tells a CPU-limit kill apart from other ends, since the
    namespace wrapper does not pass the child's signal on. A pidfd wakes us the moment the
    process exits; hosts without one fall back to polling."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        pidfd = None
    timed_out = False
    if pidfd is not None:
        try:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            if not poller.poll(max(0.0, deadline - time.monotonic()) * 1000):
                timed_out = True
        finally:
            os.close(pidfd)
    else:
        pause = 0.002
        while not os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
            if time.monotonic() >= deadline:
                timed_out = True
                break
            time.sleep(pause)
            pause = min(pause * 1.5, 0.05)
    if timed_out:
        _kill_group(proc.pid)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_utime + usage.ru_stime, timed_out


def _judge(
    report: str, nonce: str, code: int, cpu: float, timed_out: bool, limits: Limits
) -> tuple[str, str]:
    if timed_out:
        return "timeout", f"wall-clock limit of {limits.wall_seconds:g}s exceeded"
    tag, _, outcome = report.partition(" ")
    if secrets.compare_digest(tag, nonce):
        if outcome == "passed" and code == 0:
            return "passed", "all tests passed"
        status, sep, reason = outcome.partition(": ")
        if sep and status in ("failed", "timeout", "crashed"):
            if "MemoryError" in reason:
                return "failed", f"memory limit exceeded ({reason})"
            return status, reason
    if cpu >= limits.cpu_seconds * 0.9:  # the kernel kills at the limit; rusage reads lower
        return "timeout", f"CPU time limit of {limits.cpu_seconds}s exceeded"
    if code < 0 or code > 128:
        number = -code if code < 0 else code - 128
        try:
            sig = signal.Signals(number)
        except ValueError:
            return "crashed", f"killed by signal {number}"
        return "crashed", _SIGNAL_REASONS.get(sig, f"killed by {sig.name}")
    return "failed", f"exited with status {code} before the tests finished"


def _loaded_names(call: str) -> set[str]:
    """The names a call line reads (`check(candidate)`): the entry point is among them."""
    try:
        tree = ast.parse(call)
    except (SyntaxError, ValueError):
        return set()
    return {
        node.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
    }


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _kill_uid(uid: int) -> None:
    """Every process of a slot's uid, wherever it hid (a daemon, a new session)."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(
            ["/bin/kill", "-KILL", "-1"], user=uid, group=uid, extra_groups=[],
            capture_output=True, timeout=10,
        )  # fmt: skip


def _write(group: str, name: str, value: int) -> None:
    with open(os.path.join(group, name), "w") as handle:
        handle.write(str(value))


def _oom_killed(cgroups: list[str]) -> bool:
    for group in cgroups:
        with contextlib.suppress(OSError):
            fields = dict(
                line.split(maxsplit=1)
                for line in Path(group, "memory.oom_control").read_text().splitlines()
                if " " in line
            )
            if fields.get("oom_kill", "0").strip() != "0":
                return True
    return False


def _remove_cgroups(groups: list[str]) -> None:
    """A killed process tree takes a moment to be torn down; its cgroups empty after it."""
    for group in groups:
        for _ in range(100):
            try:
                os.rmdir(group)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.02)


def _remove_tree(path: Path) -> None:
    """shutil.rmtree recurses; a program can nest folders deeper than Python's stack."""
    try:
        shutil.rmtree(path, onerror=_force_remove)
    except RecursionError:
        subprocess.run(["rm", "-rf", "--", str(path)], capture_output=True, check=False)


def _force_remove(func: Callable[..., object], path: str, _exc: object) -> None:
    """A program may leave folders without write permission; take them back and retry."""
    with contextlib.suppress(OSError):
        os.chmod(os.path.dirname(path), 0o700)
        os.chmod(path, 0o700)
    with contextlib.suppress(OSError):
        func(path)


def _head(path: Path, limit: int) -> str:
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError:
        return ""
    text = data[:limit].decode(errors="replace")
    return text + ("\n[... output cut]" if len(data) > limit else "")
