"""Runs inside the sandbox: lock down, then split into the solution's process and the judge.

gnomon passes this file, with plain.py's text before it, to a fresh interpreter with
`python -I -c`; it never imports it. It starts as root inside new namespaces when the host allows
(see isolation.py): it joins its cgroups, mounts an empty size-limited tmpfs as the working
folder, over the shared writable folders, a minimal /dev and an empty /sys, hides gnomon's stores,
and then forks.

- The child is the solution's process. It reads the solution, drops to the slot's uid, and runs
  it; then it serves calls: the judge sends a function name and plain-data arguments, the child
  calls its function and sends back a plain-data result (or the exception's type and message).
- The parent is the judge. It reads the per-run nonce, the tests and the trusted helpers (the
  benchmark's prompt code), drops to a second uid, and runs the tests in its own interpreter,
  where every function the tests need from the solution is a `Remote` that calls over the pipe.
  Only the judge holds the verdict pipe.

So nothing the solution does to its own interpreter (patched builtins or modules, objects whose
`__eq__` lies, frame walking, ctypes, tracers, audit hooks) reaches the tests or the verdict: they
live in another process, under another uid, which the solution cannot trace or read.
"""

import builtins
import marshal
import os
import resource
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # in the sandbox, plain.py's text stands before this file's
    from gnomon.sandbox.plain import Channel, NotPlain

CONFIG = marshal.loads(bytes.fromhex(sys.argv[1]))
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_BIND, MS_REC, MS_PRIVATE, MNT_DETACH = 0x1000, 0x4000, 0x40000, 2
# syscalls no program needs: kernel keyrings (they outlive the program, per uid), reading or
# writing another process's memory, and kernel interfaces that are mostly attack surface
DENIED_SYSCALLS = {
    "x86_64": (0xC000003E, [248, 249, 250, 101, 310, 311, 298, 321, 323]),
    "aarch64": (0xC00000B7, [217, 218, 219, 117, 270, 271, 241, 280, 282]),
}


# ---------------------------------------------------------------------------- set-up, as root
def _libc():
    import ctypes

    return ctypes, ctypes.CDLL(None, use_errno=True)


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
    """Private, empty, size-limited tmpfs for the working folder and the shared writable ones;
    gnomon's stores hidden; a /dev of the harmless devices only; an empty /sys."""
    ctypes, libc = _libc()

    def mount(source, target, kind, flags, options=b""):
        if libc.mount(source, target.encode(), kind, flags, options or None) != 0:
            raise OSError(ctypes.get_errno(), f"cannot mount {target}")

    mount(b"none", "/", None, MS_REC | MS_PRIVATE)
    for path, kind in CONFIG["hide"]:  # before /tmp and the like are covered
        if not os.path.exists(path):
            continue  # gone since gnomon looked: nothing to hide
        if kind == "dir":
            mount(b"tmpfs", path, b"tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, b"size=4k,mode=0")
        else:
            mount(b"/dev/null", path, None, MS_BIND)
    _minimal_dev(mount, libc)
    mount(b"tmpfs", "/sys", b"tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, b"size=4k")
    uid = CONFIG["uid"]
    options = f"size={CONFIG['disk_bytes']},mode=0700,uid={uid},gid={uid}".encode()
    mount(b"tmpfs", CONFIG["workdir"], b"tmpfs", MS_NOSUID | MS_NODEV, options)
    os.chdir(CONFIG["workdir"])  # before /tmp is covered: the folder may sit under it
    for path in CONFIG["private_dirs"]:
        if os.path.isdir(path) and not os.path.islink(path):
            mount(b"tmpfs", path, b"tmpfs", MS_NOSUID | MS_NODEV, b"size=16m,mode=1777")


def _minimal_dev(mount, libc):
    """The kernel log, memory and disks are no business of a program: /dev becomes a tmpfs with
    null, zero, full, random and urandom. Where device nodes cannot be made, the host's /dev
    stays, with the kernel log and memory devices covered."""
    mount(b"tmpfs", "/dev", b"tmpfs", MS_NOSUID | MS_NOEXEC, b"size=64k,mode=0755")
    try:
        for name, minor in (("null", 3), ("zero", 5), ("full", 7), ("random", 8), ("urandom", 9)):
            os.mknod(f"/dev/{name}", 0o020666, os.makedev(1, minor))
            os.chmod(f"/dev/{name}", 0o666)
    except OSError:
        libc.umount2(b"/dev", MNT_DETACH)
        for name in ("kmsg", "mem", "kmem", "port", "kcore"):
            if os.path.exists(f"/dev/{name}"):
                mount(b"/dev/null", f"/dev/{name}", None, MS_BIND)
        return
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0")):
        os.symlink(target, f"/dev/{name}")
    os.symlink("/proc/self/fd/1", "/dev/stdout")
    os.symlink("/proc/self/fd/2", "/dev/stderr")
    os.mkdir("/dev/shm")
    os.chmod("/dev/shm", 0o1777)


def _become(uid):
    """Drop to `uid` (where we are root) with empty keyrings, then shut the doors no program
    needs. Kernel keyrings belong to the uid, not the process, and the persistent one outlives
    it by days: they are emptied first, and then keyctl is denied altogether."""
    if uid is not None and os.getuid() == 0:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    ctypes, libc = _libc()
    arch = DENIED_SYSCALLS.get(os.uname().machine)
    if arch is not None:
        keyctl = arch[1][2]
        get_persistent, clear, user, user_session, process = 22, 7, -4, -5, -2
        for ring in (user, user_session, libc.syscall(keyctl, get_persistent, -1, process)):
            libc.syscall(keyctl, clear, ring)
    libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: no ptrace or /proc/PID/mem, even same uid
    if arch is not None:
        _deny_syscalls(ctypes, libc, *arch)


def _deny_syscalls(ctypes, libc, audit_arch, numbers):
    """A seccomp filter: EPERM for the denied calls, and for every call made through another
    ABI (32-bit or x32 entry points have numbers of their own)."""
    ld, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    allow, deny = 0x7FFF0000, 0x00050000 | 1  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | EPERM
    program = [(ld, 0, 0, 4), (jeq, 1, 0, audit_arch), (ret, 0, 0, deny), (ld, 0, 0, 0)]
    program += [(jge, 0, 1, 0x40000000), (ret, 0, 0, deny)]
    for number in numbers:
        program += [(jeq, 0, 1, number), (ret, 0, 0, deny)]
    program.append((ret, 0, 0, allow))

    class Filter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                    ("k", ctypes.c_uint)]  # fmt: skip

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Filter))]

    filters = (Filter * len(program))(*[Filter(*f) for f in program])
    prog = Program(len(program), filters)
    libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS: no setuid binary gains anything back
    libc.prctl(22, 2, ctypes.byref(prog), 0, 0)  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER


def _limit():
    for name, value in CONFIG["rlimits"].items():
        resource.setrlimit(getattr(resource, name), (value, value))


def _deny_network():
    """Defence in depth where no network namespace exists: sockets cannot connect or bind."""

    def hook(event, args):
        if event in ("socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg"):
            raise PermissionError(f"network access is not allowed in the sandbox ({event})")

    sys.addaudithook(hook)


def _stdin_to_null():
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)


def _read(fd):
    with open(fd, encoding="utf-8", errors="surrogatepass") as handle:
        return handle.read()


# ---------------------------------------------------------------------------- the solution
def _solution_process(inbox, outbox, files, others):
    """The child: untrusted from the moment the solution starts; it holds nothing of the
    judge's (the verdict pipe, stdin and the tests' files are closed before any of its code
    runs, and the tests were never read into this process's memory)."""
    try:
        os.close(CONFIG["verdict_fd"])
        for fd in [*others, files["tests"], files["helpers"]]:
            os.close(fd)
        _stdin_to_null()
        source = _read(files["solution"])
        os.umask(0o077)
        _become(CONFIG["uid"])
        _limit()
        _deny_network()
        sys.setrecursionlimit(CONFIG["recursion_limit"])
    except BaseException as exc:
        os.write(2, f"gnomon sandbox: cannot set up the solution's process: {exc!r}\n".encode())
        os._exit(71)
    channel = Channel(inbox, outbox, CONFIG["message_bytes"])
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    try:
        code = compile(source, "solution.py", "exec")
    except SyntaxError as exc:
        _say(channel, "error", f"the solution is not valid Python ({exc.msg}, line {exc.lineno})")
    except (ValueError, MemoryError, RecursionError) as exc:
        _say(channel, "error", f"the solution cannot be compiled ({type(exc).__name__})")
    try:
        exec(code, namespace)
    except SystemExit as exc:
        _say(
            channel,
            "error",
            f"the solution called exit({_safe_repr(exc.code)}) before the tests ran",
        )
    except BaseException as exc:
        line = _line_in(exc.__traceback__, "solution.py")
        _say(channel, "error", f"the solution raised {_describe(exc)} (line {line})")
    _flush()
    channel.send(("ready",))
    _serve(channel, namespace)


def _flush():
    for stream in (sys.stdout, sys.stderr):
        try:  # noqa: SIM105 (no contextlib import on every program's clock)
            stream.flush()
        except BaseException:  # the program may have closed or replaced its streams
            pass


def _say(channel, *message):
    _flush()
    try:
        channel.send(message)
    finally:
        os._exit(0)


def _serve(channel, namespace):
    def reply(*message):
        _flush()  # what it printed before it answered is kept, even if the judge ends next
        channel.send(message)

    while True:
        try:
            name, args, kwargs = channel.receive()
        except BaseException:
            os._exit(0)  # the judge has gone
        function = namespace.get(name) if type(name) is str else None
        if function is None:
            reply("raise", "NameError", (f"name {name!r} is not defined",))
            continue
        try:
            result = function(*args, **kwargs)
        except (SystemExit, KeyboardInterrupt) as exc:
            reply("exit", _safe_repr(getattr(exc, "code", None)))
            continue
        except BaseException as exc:
            try:  # the arguments, so that the judge's copy reads as the original did
                reply("raise", _type_name(exc), tuple(exc.args))
            except NotPlain:
                reply("raise", _type_name(exc), (_message(exc),))
            continue
        changed = [
            (i, arg) for i, arg in enumerate(args) if type(arg) in (list, dict, set, bytearray)
        ]
        try:
            reply("return", result, changed)
        except NotPlain as exc:
            reply("foreign", str(exc))


def _type_name(exc):
    try:
        return str(type(exc).__name__)[:80]
    except BaseException:
        return "Exception"


def _message(exc):
    try:
        return str(exc)[:300]
    except BaseException:
        return ""


def _safe_repr(value):
    try:
        return repr(value)[:80]
    except BaseException:
        return "?"


def _describe(exc):
    return f"{_type_name(exc)}: {_message(exc)[:200]}"


def _line_in(tb, filename):
    """The innermost line of `filename` in a traceback."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


# ---------------------------------------------------------------------------- the judge
class Ended(BaseException):
    """The solution's process can no longer answer (it died, left, or sent something that is
    not plain data): the tests stop here. A BaseException, so `except Exception` in the tests
    cannot swallow it."""

    def __init__(self, outcome):
        super().__init__(outcome)
        self.outcome = outcome


class RemoteError(Exception):
    """An exception of the solution's that is not one of Python's own."""


class Remote:
    """A function of the solution's, as the tests see it: called by name over the pipe, with
    arguments and results crossing as plain data. Arguments the solution changed in place (a
    list it sorted) are changed in place here too."""

    __slots__ = ("_name", "_judge")

    def __init__(self, name, judge):
        self._name = name
        self._judge = judge

    def __repr__(self):
        return f"<the solution's {self._name}>"

    def __call__(self, *args, **kwargs):
        return self._judge.call(self._name, list(args), kwargs)


class Judge:
    def __init__(self, child, channel):
        self.child = child
        self.channel = channel
        self.poller = None
        try:  # the solution's own exit ends a wait, even while its children hold the pipe open
            import select

            self.poller = select.poll()
            self.poller.register(channel.inbox, select.POLLIN)
            self.pidfd = os.pidfd_open(child)
            self.poller.register(self.pidfd, select.POLLIN)
        except (ImportError, AttributeError, OSError):
            self.poller = None

    def call(self, name, args, kwargs):
        try:
            self.channel.send((name, args, kwargs))
        except NotPlain as exc:
            raise Ended(f"failed: the tests pass the solution's {name} {exc}") from None
        except OSError:
            raise Ended(f"failed: {self.ending('while the tests ran')}") from None
        reply = self.receive("while the tests ran")
        kind = reply[0] if type(reply) is tuple and reply else None
        if kind == "return" and len(reply) == 3 and type(reply[2]) is list:
            for item in reply[2]:
                self._update(args, item)
            return reply[1]
        if kind == "raise" and len(reply) == 3 and type(reply[2]) is tuple:
            raise _exception(str(reply[1]), reply[2])
        if kind == "exit" and len(reply) == 2:
            raise Ended(
                f"failed: exit({reply[1]}) was called by the solution before the tests finished"
            )
        if kind == "foreign" and len(reply) == 2:
            raise Ended(f"failed: the solution's {name} returned something else than plain data "
                        f"({str(reply[1])[:100]})")  # fmt: skip
        raise Ended("failed: the solution's process sent a malformed reply")

    @staticmethod
    def _update(args, item):
        if not (type(item) is tuple and len(item) == 2 and type(item[0]) is int):
            raise Ended("failed: the solution's process sent a malformed reply")
        index, value = item
        if not 0 <= index < len(args) or type(args[index]) is not type(value):
            return
        target = args[index]
        if type(target) is dict or type(target) is set:
            target.clear()
            target.update(value)
        else:
            target[:] = value

    def receive(self, when):
        if self.poller is not None:
            ready = {fd for fd, _ in self.poller.poll()}
            if self.channel.inbox not in ready:
                raise Ended(self.ending(when))
        try:
            return self.channel.receive()
        except NotPlain as exc:
            raise Ended(f"failed: the solution's process sent {exc}") from None
        except (EOFError, OSError):
            raise Ended(self.ending(when)) from None

    def ending(self, when):
        """Why the solution's process stopped answering, from its exit status."""
        try:
            _, status, usage = os.wait4(self.child, 0)
        except ChildProcessError:
            return f"failed: the solution's process ended {when}"
        code = os.waitstatus_to_exitcode(status)
        cpu_limit, cpu = CONFIG["rlimits"]["RLIMIT_CPU"], usage.ru_utime + usage.ru_stime
        # the kernel kills at the limit exactly; rusage, sampled, can read a few % lower
        if code == -CONFIG["sigxcpu"] or cpu >= cpu_limit * 0.9:
            return f"timeout: CPU time limit of {cpu_limit}s exceeded"
        if code >= 0:
            return f"failed: the solution's process exited with status {code} {when}"
        number = -code
        reasons = CONFIG["signal_reasons"]
        return (
            f"crashed: {reasons.get(number, f'killed by signal {number}')} after {cpu:.2f}s of CPU"
        )


def _exception(name, args):
    """Python's own exception of that name (a test may expect a ValueError), else a
    RemoteError; never a BaseException the tests' `except Exception` would miss."""
    kind = getattr(builtins, name, None)
    error = None
    if isinstance(kind, type) and issubclass(kind, Exception):
        try:  # noqa: SIM105 (no contextlib import on every program's clock)
            error = kind(*args)
        except BaseException:
            pass
    if error is None:
        text = ", ".join(map(str, args)) if len(args) != 1 else str(args[0])
        error = RemoteError(f"{name}: {text}"[:300])
    error.gnomon_from_solution = True
    return error


class _Namespace(dict):
    """The tests' globals: a name they use that neither they, the helpers nor Python's builtins
    define is the solution's (MBPP's asserts call the function by name)."""

    def __init__(self, judge):
        super().__init__(__name__="__main__", __builtins__=builtins)
        self.judge = judge

    def __missing__(self, name):
        if name in _BUILTIN_NAMES:
            raise KeyError(name)
        remote = self[name] = Remote(name, self.judge)
        return remote


_BUILTIN_NAMES = frozenset(dir(builtins))


def _trusted_head(helpers):
    """The helpers' code that compiles: a prompt may end in a function whose body is the
    model's part, so lines are dropped from the end until what is left is valid Python."""
    lines = helpers.splitlines(keepends=True)
    while lines:
        try:
            return compile("".join(lines), "helpers.py", "exec")
        except (SyntaxError, ValueError):
            lines.pop()
    return compile("", "helpers.py", "exec")


def _verdict(judge, tests, helpers):
    try:
        test_code = compile(tests, "tests.py", "exec")
        call_code = compile(CONFIG["call"], "call.py", "exec")
    except SyntaxError as exc:
        return f"failed: the tests are not valid Python ({exc.msg}, line {exc.lineno})"
    try:
        hello = judge.receive("before the tests ran")
    except Ended as exc:
        return exc.outcome
    if type(hello) is tuple and len(hello) == 2 and hello[0] == "error":
        return f"failed: {str(hello[1])[:400]}"
    if hello != ("ready",):
        return "failed: the solution's process sent a malformed greeting"
    namespace = _Namespace(judge)
    try:
        exec(_trusted_head(helpers), namespace)
        from_helpers = dict(namespace)
        exec(test_code, namespace)
        for name in CONFIG["entry_names"]:  # the entry point is the solution's, always
            if name not in namespace or namespace[name] is from_helpers.get(name, namespace):
                namespace[name] = Remote(name, judge)
        exec(call_code, namespace)
    except Ended as exc:
        return exc.outcome
    except SystemExit as exc:
        return f"failed: exit({_safe_repr(exc.code)}) was called before the tests finished"
    except AssertionError as exc:
        line, text = _test_line(exc.__traceback__, tests)
        detail = f": {_message(exc)[:200]}" if _message(exc) else ""
        return f"failed: test assertion at line {line}: {text[:200]}{detail}"
    except BaseException as exc:
        line, text = _test_line(exc.__traceback__, tests)
        raised = "the solution raised " if getattr(exc, "gnomon_from_solution", False) else ""
        described = _message(exc)[:200] if isinstance(exc, RemoteError) else _describe(exc)
        return f"failed: {raised}{described} (test line {line}: {text[:120]})"
    return "passed"


def _test_line(tb, source):
    line = _line_in(tb, "tests.py")
    lines = source.splitlines()
    return line, (lines[line - 1].strip() if line and 0 < line <= len(lines) else "")


def _judge_process(child, inbox, outbox, files, others):
    write, leave = os.write, os._exit
    for fd in [*others, files["solution"]]:
        os.close(fd)
    nonce = os.read(0, 64)
    _stdin_to_null()
    verdict_fd = _hide_fd(CONFIG["verdict_fd"])
    tests = _read(files["tests"])
    helpers = _read(files["helpers"])
    os.chdir("/")
    os.umask(0o077)
    _become(CONFIG["judge_uid"])
    _limit()
    _deny_network()
    sys.setrecursionlimit(CONFIG["recursion_limit"])
    judge = Judge(child, Channel(inbox, outbox, CONFIG["message_bytes"]))
    outcome = _verdict(judge, tests, helpers)
    _flush()
    write(verdict_fd, nonce + b" " + outcome.encode(errors="replace")[:4096])
    leave(0)


def main():
    # opened, not read, as root before the run folder is covered; each side reads only its own
    files = {name: os.open(CONFIG[f"{name}_path"], os.O_RDONLY | os.O_CLOEXEC)
             for name in ("solution", "tests", "helpers")}  # fmt: skip
    if CONFIG["namespaces"] and os.getuid() == 0:
        _join_cgroups()
        _mounts()
    else:
        os.chdir(CONFIG["workdir"])
    calls_r, calls_w = os.pipe()
    replies_r, replies_w = os.pipe()
    child = os.fork()
    if child == 0:
        _solution_process(calls_r, replies_w, files, (calls_w, replies_r))
        os._exit(0)
    _judge_process(child, replies_r, calls_w, files, (calls_r, replies_w))


main()
