"""The sandbox's ordinary behaviour: verdicts and their reasons, captured output, clean-up,
a scrubbed environment, parallel runs and the isolation report.

Hostile programs are in test_sandbox_attacks.py.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from gnomon.sandbox import Isolation, Limits, Program, Sandbox, Verdict, probe
from gnomon.sandbox.isolation import UID_BASE, UID_SPAN

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the sandbox needs a POSIX host")

LIMITS = Limits(wall_seconds=5, cpu_seconds=3, output_bytes=512)

TESTS = """\
def check(candidate):
    assert candidate(2) == 4
    assert candidate(5) == 10, "five"
    assert candidate(0) == 0
"""
CALL = "check(double)"
GOOD = "def double(x):\n    return 2 * x\n"


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(LIMITS, workers=2)


def run(sandbox: Sandbox, solution: str, tests: str = TESTS, call: str = CALL) -> Verdict:
    verdict = sandbox.run(Program(solution, tests, call))
    assert isinstance(verdict, Verdict)
    assert verdict.status in {"passed", "failed", "timeout", "crashed"}
    assert verdict.passed == (verdict.status == "passed")
    assert verdict.seconds >= 0
    return verdict


# ---------------------------------------------------------------------------- verdicts


def test_correct_solution_passes(sandbox: Sandbox) -> None:
    verdict = run(sandbox, GOOD)
    assert verdict.passed, verdict
    assert verdict.reason == "all tests passed"


def test_humaneval_style_prompt_plus_completion_passes(sandbox: Sandbox) -> None:
    prompt = 'from typing import List\n\n\ndef total(xs: List[int]) -> int:\n    """Sum."""\n'
    completion = "    return sum(xs)\n"
    tests = "def check(candidate):\n    assert candidate([1, 2, 3]) == 6\n"
    verdict = run(sandbox, prompt + completion, tests, "check(total)")
    assert verdict.passed, verdict


def test_wrong_solution_fails_naming_the_assertion_line(sandbox: Sandbox) -> None:
    verdict = run(sandbox, "def double(x):\n    return x * x\n")  # right for 2, wrong for 5
    assert verdict.status == "failed"
    assert "test assertion at line 3" in verdict.reason
    assert 'assert candidate(5) == 10, "five"' in verdict.reason
    assert verdict.reason.endswith(": five")


def test_syntax_error_is_a_recorded_failure(sandbox: Sandbox) -> None:
    verdict = run(sandbox, "def double(x)\n    return 2 * x\n")
    assert verdict.status == "failed"
    assert "not valid Python" in verdict.reason
    assert "line 1" in verdict.reason


def test_null_byte_in_solution_is_a_recorded_failure(sandbox: Sandbox) -> None:
    verdict = run(sandbox, GOOD + "\0")
    assert verdict.status == "failed"
    assert "not valid Python" in verdict.reason or "cannot be compiled" in verdict.reason


def test_exception_in_solution_is_a_recorded_failure(sandbox: Sandbox) -> None:
    verdict = run(sandbox, GOOD + "\n\nraise ValueError('boom at import')\n")
    assert verdict.status == "failed"
    assert "the solution raised ValueError: boom at import (line 5)" in verdict.reason


def test_exception_in_the_candidate_names_the_test_line(sandbox: Sandbox) -> None:
    solution = "def double(x):\n    if x == 5:\n        raise KeyError('five')\n    return 2 * x\n"
    verdict = run(sandbox, solution)
    assert verdict.status == "failed"
    assert "KeyError: 'five'" in verdict.reason
    assert "test line 3" in verdict.reason


def test_exception_in_tests_is_a_recorded_failure(sandbox: Sandbox) -> None:
    tests = "def check(candidate):\n    assert candidate(2) == 4\n    undefined_helper()\n"
    verdict = run(sandbox, GOOD, tests)
    assert verdict.status == "failed"
    assert "NameError" in verdict.reason
    assert "undefined_helper" in verdict.reason
    assert "test line 3" in verdict.reason


def test_empty_solution_is_a_recorded_failure(sandbox: Sandbox) -> None:
    verdict = run(sandbox, "")
    assert verdict.status == "failed"
    assert "NameError" in verdict.reason
    assert "double" in verdict.reason


def test_enormous_solution_is_handled(sandbox: Sandbox) -> None:
    filler = "# " + "x" * (5 << 20) + "\n"
    wrong = run(sandbox, "def double(x):\n    return x\n" + filler)
    assert wrong.status == "failed"
    assert "test assertion at line 2" in wrong.reason
    data = "BLOB = '" + "y" * (5 << 20) + "'\n"
    right = run(sandbox, data + GOOD + "assert len(BLOB) == 5 << 20\n")
    assert right.passed, right  # five megabytes arrive intact


def test_solution_that_exits_early_is_not_passed(sandbox: Sandbox) -> None:
    verdict = run(sandbox, GOOD + "raise SystemExit(0)\n")
    assert verdict.status == "failed"
    assert "exit(0)" in verdict.reason


def test_unencodable_solution_is_a_recorded_failure(sandbox: Sandbox) -> None:
    verdict = run(sandbox, "S = '\udc80'\n" + GOOD)  # a lone surrogate: no UTF-8 for it
    assert verdict.status == "failed"
    assert verdict.reason == "the program is not valid Unicode text"
    verdict = run(sandbox, GOOD, TESTS + "# '\udc80'\n")  # in the tests, too
    assert verdict.status == "failed"
    assert verdict.reason == "the program is not valid Unicode text"
    assert run(sandbox, GOOD).passed  # and the slot is still usable


# ---------------------------------------------------------------------------- output


def test_stdout_and_stderr_are_captured(sandbox: Sandbox) -> None:
    solution = (
        "import sys\n"
        "print('to-stdout', flush=True)\n"
        "print('to-stderr', file=sys.stderr, flush=True)\n" + GOOD
    )
    verdict = run(sandbox, solution)
    assert verdict.passed, verdict
    assert verdict.stdout == "to-stdout\n"
    assert verdict.stderr == "to-stderr\n"


def test_unflushed_print_is_captured(sandbox: Sandbox) -> None:
    """stdout is a file (block-buffered): the harness flushes it before it leaves with _exit."""
    solution = "import sys\nprint('hello from the solution')\nsys.stderr.write('and stderr')\n"
    verdict = run(sandbox, solution + GOOD)
    assert verdict.passed, verdict
    assert verdict.stdout == "hello from the solution\n"
    assert verdict.stderr == "and stderr"
    wrong = run(sandbox, "print('before the failure')\ndef double(x):\n    return x\n")
    assert wrong.status == "failed"
    assert wrong.stdout == "before the failure\n"  # kept where the tests fail, too


def test_output_is_bounded(sandbox: Sandbox) -> None:
    limit = LIMITS.output_bytes
    solution = (
        "import sys\n"
        "sys.stdout.write('q' * 100_000)\n"
        "sys.stdout.flush()\n"
        "sys.stderr.write('z' * 100_000)\n" + GOOD
    )
    verdict = run(sandbox, solution)
    assert verdict.passed, verdict
    for text, char in ((verdict.stdout, "q"), (verdict.stderr, "z")):
        assert text.endswith("[... output cut]")
        assert text.count(char) == limit
        assert len(text) <= limit + len("\n[... output cut]")


# ---------------------------------------------------------------------------- clean-up, env


def test_working_folder_is_private_and_removed(sandbox: Sandbox) -> None:
    solution = (
        "import os\n"
        "print(os.getcwd(), sorted(os.listdir('.')), flush=True)\n"
        "open('scratch.txt', 'w').write('x')\n" + GOOD
    )
    verdict = run(sandbox, solution)
    assert verdict.passed, verdict
    cwd, _, listing = verdict.stdout.strip().partition(" ")
    workdir = Path(cwd)
    assert workdir.name == "work"  # <run folder>/work: the run's own files sit beside it
    assert workdir.parent.name.startswith("gnomon-sandbox-")
    assert listing == "[]"  # it starts empty: neither the program's nor the harness's files
    assert not workdir.parent.exists()  # the whole run folder is gone


def test_working_folder_is_removed_after_a_timeout() -> None:
    sandbox = Sandbox(Limits(wall_seconds=1, cpu_seconds=5), workers=1)
    solution = "import os, time\nprint(os.getcwd(), flush=True)\ntime.sleep(30)\n" + GOOD
    verdict = run(sandbox, solution)
    assert verdict.status == "timeout"
    assert "wall-clock" in verdict.reason
    assert verdict.seconds < 4
    assert Path(verdict.stdout.strip()).name == "work"
    assert not Path(verdict.stdout.strip()).parent.exists()


def test_environment_is_scrubbed(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = f"gnomon-secret-{os.getpid()}-{time.time_ns()}"
    monkeypatch.setenv("GNOMON_TEST_SECRET", secret)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-" + secret)
    monkeypatch.setenv("HF_TOKEN", "hf_" + secret)
    solution = (
        "import os, subprocess\n"
        "print(sorted(os.environ), flush=True)\n"
        "print(subprocess.run(['env'], capture_output=True).stdout, flush=True)\n" + GOOD
    )
    verdict = run(sandbox, solution)
    assert verdict.passed, verdict
    assert "PATH" in verdict.stdout and "LANG=C.UTF-8" in verdict.stdout  # it did look
    for leaked in (secret, "GNOMON_TEST_SECRET", "OPENAI_API_KEY", "HF_TOKEN"):
        assert leaked not in verdict.stdout
        assert leaked not in verdict.stderr


# ---------------------------------------------------------------------------- parallel runs


def test_run_many_runs_in_parallel_and_returns_every_index_once() -> None:
    sandbox = Sandbox(Limits(wall_seconds=5, cpu_seconds=3), workers=4)
    programs = [
        Program(f"import time\ntime.sleep(1)\nprint({i}, flush=True)\n" + GOOD, TESTS, CALL)
        for i in range(4)
    ]
    done: list[int] = []
    started = time.monotonic()
    results = list(sandbox.run_many(programs, on_done=done.append))
    elapsed = time.monotonic() - started
    assert sorted(index for index, _ in results) == [0, 1, 2, 3]
    for index, verdict in results:
        assert verdict.passed, verdict
        assert verdict.stdout.strip() == str(index)  # each verdict belongs to its program
        assert verdict.seconds >= 1
    assert done == [1, 1, 1, 1]
    assert elapsed < 3, f"4 one-second programs on 4 workers took {elapsed:.1f}s"


def test_run_many_keeps_verdicts_apart(sandbox: Sandbox) -> None:
    wrong = "def double(x):\n    return x\n"
    programs = [Program(GOOD if i % 2 else wrong, TESTS, CALL) for i in range(6)]
    verdicts = dict(sandbox.run_many(programs))
    assert sorted(verdicts) == list(range(6))
    assert [verdicts[i].passed for i in range(6)] == [False, True, False, True, False, True]


def test_run_many_of_nothing_yields_nothing(sandbox: Sandbox) -> None:
    assert list(sandbox.run_many([])) == []


# ---------------------------------------------------------------------------- isolation report


def test_probe_describes_what_is_isolated() -> None:
    isolation = probe()
    assert Path(isolation.python).exists()
    lines = isolation.describe()
    text = "\n".join(lines)
    assert len(lines) >= 4 and all(isinstance(line, str) and line for line in lines)
    assert "resource limits" in text and "wall-clock timeout" in text
    if isolation.namespaces:
        assert "network: none" in text and "PID namespace" in text
    else:
        assert "NOT isolated here: network" in text
    if isolation.cgroups:
        assert "whole process tree (cgroups)" in text
        assert all(Path(group).is_dir() for group in isolation.cgroups)
    else:
        assert "NOT isolated here: memory is limited per process" in text
    if isolation.drop_uid:
        assert "unprivileged uid" in text
    else:
        assert "NOT isolated here: the program runs as your user" in text


def test_describe_reports_missing_isolation() -> None:
    bare = Isolation(
        wrapper=(), namespaces=False, drop_uid=False, python=sys.executable, cgroups=()
    )
    text = "\n".join(bare.describe())
    assert text.count("NOT isolated here") == 3
    assert "network" in text and "your user" in text and "per process" in text
    full = Isolation(
        wrapper=("unshare",),
        namespaces=True,
        drop_uid=True,
        python=sys.executable,
        cgroups=("/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids"),
    )
    assert "NOT isolated" not in "\n".join(full.describe())


def test_each_sandbox_draws_its_own_uids() -> None:
    first, second = Sandbox(LIMITS, workers=3), Sandbox(LIMITS, workers=3)
    for sandbox in (first, second):
        assert len(sandbox.uids) == 3 and len(set(sandbox.uids)) == 3
        assert all(UID_BASE <= uid < UID_BASE + UID_SPAN for uid in sandbox.uids)
        assert (sandbox.uids[0] - UID_BASE) % 64 == 0  # a block of its own
    # Blocks are drawn at random: two collide with probability 1 / (UID_SPAN / 64).
    assert not set(first.uids) & set(second.uids)
