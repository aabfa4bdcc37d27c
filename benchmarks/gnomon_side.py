"""Driving gnomon for a benchmark: its CLI as a subprocess on a fresh store, what it stored and
wrote read back, and `gnomon serve` on a free loopback port.

Used by `speed_sweep.py`; importing it costs nothing (no torch).
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}

Key = tuple[str, int]  # (gnomon benchmark id, row index in its split file)


class RunFailed(Exception):
    """A tool's run exited non-zero; the message holds the log's tail and where the log is."""


class Ran(NamedTuple):
    wall_s: float  # start to exit
    stdout: str
    cpu_s: float  # user + system seconds of the process and its children: load shows less here


def run_logged(cmd: list[str], log: Path, env: dict[str, str], timeout: float | None = None) -> Ran:
    """Run to the end, timed; the whole exchange goes to `log`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise RunFailed(f"command ran past {timeout:.0f}s: {' '.join(cmd)}") from exc
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    log.write_text(f"$ {' '.join(cmd)}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-25:])
        raise RunFailed(f"command failed ({proc.returncode}), log in {log}:\n{tail}")
    return Ran(wall, proc.stdout, cpu)


def gnomon_command() -> list[str]:
    """The `gnomon` script next to this interpreter, else the CLI through `-c`."""
    script = Path(sys.executable).with_name("gnomon")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from gnomon.cli import main; main()"]


def gnomon_has_flag(flag: str, subcommand: str = "run") -> bool:
    """Whether this gnomon's `subcommand` takes `flag` (the sweep passes --threads only then)."""
    proc = subprocess.run(
        [*gnomon_command(), subcommand, "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    return flag in proc.stdout


@dataclass
class Outcome:
    """One timed run of one tool."""

    wall_s: float
    cpu_s: float
    tool_s: float | None = None  # the time the tool itself reports
    tokens: int | None = None  # tokens through the model, as the tool counts them
    predictions: dict[Key, Any] = field(default_factory=dict)  # choice index, or generated text
    logprobs: dict[Key, list[float]] = field(default_factory=dict)  # per choice, scoring only
    prompts: dict[Key, str] = field(default_factory=dict)


def run_gnomon(args: list[str], out: Path, env: dict[str, str]) -> Outcome:
    """`gnomon run ARGS` on a fresh store in `out` (nothing can be reused: a reusing run
    measures nothing, so one is refused), then its stored counts and written samples read."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    store = out / "store.sqlite"
    cmd = [*gnomon_command(), "run", *args, "--store", str(store), "--out", str(out / "out")]
    ran = run_logged(cmd, out / "log.txt", env)
    with sqlite3.connect(store) as db:
        ((tokens, seconds, reused),) = db.execute("SELECT tokens, seconds, reused FROM runs")
        prompts = {
            (b, int(i)): p for b, i, p in db.execute("SELECT bench, idx, prompt FROM results")
        }
    if reused:
        raise RunFailed(f"gnomon reused {reused} stored samples; the timing would not be honest")
    printed = re.search(r"([\d,]+) tokens through the model", ran.stdout)
    if printed and int(printed.group(1).replace(",", "")) != tokens:
        raise RunFailed(f"gnomon printed {printed.group(1)} tokens but stored {tokens}")
    outcome = Outcome(ran.wall_s, ran.cpu_s, float(seconds), int(tokens), prompts=prompts)
    for line in (out / "out" / "samples.jsonl").read_text(encoding="utf-8").splitlines():
        sample = json.loads(line)
        key = (sample["benchmark"], int(sample["index"]))
        if "choice_logprobs" in sample:
            outcome.predictions[key] = int(sample["prediction"])
            outcome.logprobs[key] = [float(x) for x in sample["choice_logprobs"]]
        else:
            outcome.predictions[key] = sample.get("output", sample.get("prediction"))
    return outcome


# ---------------------------------------------------------------------------------- serve
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`gnomon serve` in a subprocess on loopback; a context manager that always stops it."""

    def __init__(self, model_dir: Path, log: Path, env: dict[str, str], name: str = "sweep"):
        self.name, self.port, self.log = name, free_port(), log
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        cmd = [*gnomon_command(), "serve", "--model", f"hf:{model_dir}", "--name", name]
        cmd += ["--port", str(self.port), "--device", "cpu", "--dtype", "float32"]
        log.parent.mkdir(parents=True, exist_ok=True)
        # a file, not a pipe: uvicorn logs every request, and a full pipe would stall the server
        with log.open("wb") as sink:
            self.process = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, env=env)
        self.ready_s = self._wait_ready(timeout=300)

    def _wait_ready(self, timeout: float) -> float:
        started = time.perf_counter()
        while time.perf_counter() - started < timeout:
            if self.process.poll() is not None:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise RunFailed(f"gnomon serve exited with {self.process.returncode}:\n{tail}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as resp:
                    if resp.status == 200:
                        return time.perf_counter() - started
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        self.stop()
        raise RunFailed(f"gnomon serve did not answer {self.base_url}/models in {timeout:.0f}s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
