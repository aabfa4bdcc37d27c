"""Runs inside the sandbox: lock the process down, run the solution, then its tests.

This file is passed to a fresh interpreter with `python -I -c`; gnomon never imports it. It starts
as root inside new namespaces when the host allows (see isolation.py): it joins its cgroups,
reads the program, mounts an empty size-limited tmpfs as its working folder and over the shared
writable folders, sets resource limits, drops to an unprivileged uid, and only then runs the
model's code. It holds its own references to what it needs afterwards (exec, compile, the write
call) in running frames, so a program that replaces builtins or this module's globals cannot skip
the tests or rewrite the report, and it reads the per-run nonce before the program starts.
"""

import marshal
import os
import resource
import sys

# marshal, not json: this interpreter's start-up is on every program's clock, and json pulls in re
CONFIG = marshal.loads(bytes.fromhex(sys.argv[1]))


def _hide_fd(fd):
    """Move a pipe to a random high descriptor, closed on exec."""
    while True:
        target = 300 + int.from_bytes(os.urandom(2), "little") % 700
        try:
            os.fstat(target)
        except OSError:
            break
    os.dup2(fd, target, inheritable=False)
    os.close(fd)
    return target


def _join_cgroups():
    for path in CONFIG["cgroups"]:
        with open(os.path.join(path, "cgroup.procs"), "w") as handle:
            handle.write("0")


def _mounts():
    """Private, empty, size-limited tmpfs for the working folder and the shared writable ones."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    ms_rec, ms_private = 0x4000, 0x40000
    libc.mount(b"none", b"/", None, ms_rec | ms_private, None)
    work = CONFIG["workdir"].encode()
    options = f"size={CONFIG['disk_bytes']},mode=0700,uid={CONFIG['uid']},gid={CONFIG['uid']}"
    if libc.mount(b"tmpfs", work, b"tmpfs", 0, options.encode()) != 0:
        raise OSError(ctypes.get_errno(), "cannot mount the working folder")
    os.chdir(work)  # before /tmp is covered: the folder may sit under it
    for path in CONFIG["private_dirs"]:
        if os.path.isdir(path) and not os.path.islink(path):
            libc.mount(b"tmpfs", path.encode(), b"tmpfs", 0, b"size=16m,mode=1777")


def _limit():
    for name, value in CONFIG["rlimits"].items():
        resource.setrlimit(getattr(resource, name), (value, value))


def _drop_privileges():
    uid = CONFIG.get("uid")
    if uid is None or os.getuid() != 0:
        return
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    _clear_keyrings()


def _clear_keyrings():
    """Kernel keyrings belong to the uid, not the process: empty them so that nothing a
    previous program of this slot stored there reaches this one."""
    import ctypes
    import platform

    number = {"x86_64": 250, "aarch64": 219}.get(platform.machine())
    if number is None:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    keyctl_clear, user_keyring, user_session_keyring = 7, -4, -5
    for ring in (user_keyring, user_session_keyring):
        libc.syscall(number, keyctl_clear, ring)


def _deny_network():
    """Defence in depth where no network namespace exists: sockets cannot connect or bind."""

    def hook(event, args):
        if event in ("socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg"):
            raise PermissionError(f"network access is not allowed in the sandbox ({event})")

    sys.addaudithook(hook)


def _test_line(tb, filename, source):
    """The innermost line of `filename` in a traceback, and its text."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    lines = source.splitlines()
    return line, (lines[line - 1].strip() if line and 0 < line <= len(lines) else "")


def _run(solution, tests, _exec, _compile, _settrace, _setprofile):
    """`_exec` and `_compile` arrive as locals: the program can rebind builtins and this
    module's globals (it is `__main__`), but not a running frame's locals."""
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        code = _compile(solution, "solution.py", "exec")
    except SyntaxError as exc:
        return f"failed: the solution is not valid Python ({exc.msg}, line {exc.lineno})"
    except (ValueError, MemoryError, RecursionError) as exc:
        return f"failed: the solution cannot be compiled ({type(exc).__name__})"
    try:
        test_code = _compile(tests + "\n" + CONFIG["call"] + "\n", "tests.py", "exec")
    except SyntaxError as exc:
        return f"failed: the tests are not valid Python ({exc.msg}, line {exc.lineno})"
    try:
        _exec(code, namespace)
    except SystemExit as exc:
        return f"failed: the solution called exit({exc.code!r}) before the tests ran"
    except BaseException as exc:
        line, _ = _test_line(exc.__traceback__, "solution.py", solution)
        return f"failed: the solution raised {type(exc).__name__}: {str(exc)[:200]} (line {line})"
    _settrace(None)  # a tracer left by the solution could jump over the asserts
    _setprofile(None)
    try:
        _exec(test_code, namespace)
    except SystemExit as exc:
        return f"failed: exit({exc.code!r}) was called before the tests finished"
    except AssertionError as exc:
        line, text = _test_line(exc.__traceback__, "tests.py", tests)
        detail = f": {str(exc)[:200]}" if str(exc) else ""
        return f"failed: test assertion at line {line}: {text[:200]}{detail}"
    except BaseException as exc:
        line, text = _test_line(exc.__traceback__, "tests.py", tests)
        return f"failed: {type(exc).__name__}: {str(exc)[:200]} (test line {line}: {text[:120]})"
    return "passed"


def main():
    write, close, leave = os.write, os.close, os._exit  # bound before any untrusted code runs
    nonce = os.read(0, 64)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    verdict_fd = _hide_fd(CONFIG["verdict_fd"])
    with open(CONFIG["solution_path"], encoding="utf-8") as handle:
        solution = handle.read()
    with open(CONFIG["tests_path"], encoding="utf-8") as handle:
        tests = handle.read()
    isolated = CONFIG["namespaces"] and os.getuid() == 0
    if isolated:
        _join_cgroups()
        _mounts()
    else:
        os.chdir(CONFIG["workdir"])
    os.umask(0o077)
    _drop_privileges()
    _limit()
    _deny_network()
    sys.setrecursionlimit(CONFIG.get("recursion_limit", 3000))
    outcome = _run(solution, tests, exec, compile, sys.settrace, sys.setprofile)
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:  # noqa: SIM105 (no contextlib import on every program's clock)
            stream.flush()
        except BaseException:  # the program may have closed or replaced its streams
            pass
    write(verdict_fd, nonce + b" " + outcome.encode(errors="replace")[:4096])
    close(verdict_fd)
    leave(0)


main()
