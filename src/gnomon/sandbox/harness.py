"""Runs inside the sandbox: lock the process down, run the solution, then its tests.

This file is passed to a fresh interpreter with `python -I -c`; gnomon never imports it. It starts
as root inside new mount, PID and network namespaces when the host allows (see isolation.py),
makes /tmp-like folders private, sets resource limits, drops to an unprivileged uid, and only then
runs the model's code. The verdict goes back over a pipe, tagged with a per-run nonce that stays
unread in another pipe until the tests have returned: printing "passed", exiting 0 early, or an
exit from `atexit`/`finally` cannot produce it.
"""

import marshal
import os
import resource
import sys

# marshal, not json: this interpreter's start-up is on every program's clock, and json pulls in re
CONFIG = marshal.loads(bytes.fromhex(sys.argv[1]))


def _hide_fd(fd):
    """Move a pipe to a random high descriptor, closed on exec, so the code under test does not
    find it where it was inherited."""
    while True:
        target = 300 + int.from_bytes(os.urandom(2), "little") % 700
        try:
            os.fstat(target)
        except OSError:
            break
    os.dup2(fd, target, inheritable=False)
    os.close(fd)
    return target


def _private_tmp():
    """Writable shared folders become empty private tmpfs mounts (needs a mount namespace)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    ms_rec, ms_private = 0x4000, 0x40000
    libc.mount(b"none", b"/", None, ms_rec | ms_private, None)
    for path in CONFIG["private_dirs"]:
        if os.path.isdir(path):
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


def _deny_network():
    """Defence in depth where no network namespace exists: sockets cannot connect or bind."""

    def hook(event, args):
        if event in ("socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg"):
            raise PermissionError(f"network access is not allowed in the sandbox ({event})")

    sys.addaudithook(hook)


def _test_line(tb, filename):
    import traceback  # only failures pay for it

    for frame in reversed(traceback.extract_tb(tb)):
        if frame.filename == filename:
            return frame.lineno, (frame.line or "").strip()
    return None, ""


def _run():
    with open("solution.py", encoding="utf-8") as handle:
        solution = handle.read()
    with open("tests.py", encoding="utf-8") as handle:
        tests = handle.read()
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        code = compile(solution, "solution.py", "exec")
    except SyntaxError as exc:
        return f"failed: the solution is not valid Python ({exc.msg}, line {exc.lineno})"
    except (ValueError, MemoryError, RecursionError) as exc:
        return f"failed: the solution cannot be compiled ({type(exc).__name__})"
    try:
        exec(code, namespace)
    except SystemExit as exc:
        return f"failed: the solution called exit({exc.code!r}) before the tests ran"
    except BaseException as exc:
        line, _ = _test_line(exc.__traceback__, "solution.py")
        return f"failed: the solution raised {type(exc).__name__}: {str(exc)[:200]} (line {line})"
    try:
        test_code = compile(tests + "\n" + CONFIG["call"] + "\n", "tests.py", "exec")
        exec(test_code, namespace)
    except SystemExit as exc:
        return f"failed: exit({exc.code!r}) was called before the tests finished"
    except AssertionError as exc:
        line, text = _test_line(exc.__traceback__, "tests.py")
        detail = f": {str(exc)[:200]}" if str(exc) else ""
        return f"failed: test assertion at line {line}: {text[:200]}{detail}"
    except BaseException as exc:
        line, text = _test_line(exc.__traceback__, "tests.py")
        return f"failed: {type(exc).__name__}: {str(exc)[:200]} (test line {line}: {text[:120]})"
    return "passed"


def main():
    nonce_fd = _hide_fd(0)
    verdict_fd = _hide_fd(CONFIG["verdict_fd"])
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.chdir(CONFIG["workdir"])  # before the mounts: the folder may sit under /tmp
    if CONFIG["private_dirs"] and os.getuid() == 0:
        _private_tmp()
    os.umask(0o077)
    _drop_privileges()
    _limit()
    _deny_network()
    sys.setrecursionlimit(CONFIG.get("recursion_limit", 3000))
    outcome = _run()
    nonce = os.read(nonce_fd, 64).decode()
    os.write(verdict_fd, f"{nonce} {outcome}".encode()[:4096])
    os._exit(0)


main()
