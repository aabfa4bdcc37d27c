"""Engines from other packages: a real entry point in a real dist-info, found by `gnomon run`.

The plugin is a small deterministic engine written into a temporary folder with its own
`*.dist-info/entry_points.txt`; the folder goes on the subprocess's PYTHONPATH, exactly as an
installed package's would be on sys.path. It is the plugin under test, not a stand-in for a model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from gnomon_cli import ENV, gnomon, ok, summary

PLUGIN = '''
"""A test engine: scores a continuation by minus its length, answers every question with 7."""

from gnomon.engines.base import Engine, GenerateResult, ScoreResult
from gnomon.engines.registry import EngineKind, plain_name


class EchoEngine(Engine):
    def __init__(self, name):
        self.name = name

    def score(self, requests):
        yield [(i, ScoreResult(-float(len(r.continuation)), False)) for i, r in enumerate(requests)]

    def generate(self, requests):
        yield [(i, GenerateResult(f"{self.name} says #### 7")) for i, _ in enumerate(requests)]


ENGINE = EngineKind(
    "myengine",
    plain_name("myengine"),
    lambda ref, dtype, api: f"myengine:{ref.name}",
    lambda ref, options: EchoEngine(ref.name),
)
'''


def _install(root: Path, entry_points: str, modules: dict[str, str]) -> dict[str, str]:
    """A dist-info with `entry_points` and the given modules, on the PYTHONPATH of the result."""
    dist = root / "gnomon_test_plugin-0.1.dist-info"
    dist.mkdir(parents=True)
    metadata = "Metadata-Version: 2.1\nName: gnomon-test-plugin\nVersion: 0.1\n"
    (dist / "METADATA").write_text(metadata)
    (dist / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    for name, source in modules.items():
        (root / f"{name}.py").write_text(source)
    path = [str(root), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**ENV, "PYTHONPATH": os.pathsep.join(path)}


def test_plugin_engine_runs_end_to_end(data_root: Path, tmp_path: Path) -> None:
    env = _install(
        tmp_path / "site",
        "[gnomon.engines]\nmyengine = my_engine_plugin\n",
        {"my_engine_plugin": PLUGIN},
    )
    store, out = tmp_path / "s.sqlite", tmp_path / "out"
    args = ("run", "--model", "myengine:x", "--bench", "arc_easy,gsm8k", "--data", data_root,
            "--limit", 3, "--store", store, "--out", out)  # fmt: skip
    first = ok(gnomon(*args, env=env))
    assert summary(first.stdout) == (6, 0, 6)
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    arc = [s for s in samples if s["benchmark"] == "arc_easy"]
    rows = [json.loads(line) for line in (data_root / "arc_easy" / "test.jsonl").open()]
    assert len(arc) == 3
    for s in arc:
        texts = rows[s["index"]]["choices"]["text"]
        assert s["choice_logprobs"] == [-float(len(" " + t)) for t in texts]
    gsm = [s for s in samples if s["benchmark"] == "gsm8k"]
    assert len(gsm) == 3 and all(s["output"] == "x says #### 7" for s in gsm)

    again = ok(gnomon(*args, env=env))  # named by the plugin's model_key: all reused
    assert summary(again.stdout) == (6, 6, 0)

    unknown = gnomon("run", "--model", "nosuch:x", "--bench", "gsm8k", "--store", store, env=env)
    assert unknown.returncode == 2
    assert "available: hf, openai, myengine" in unknown.stderr


@pytest.mark.parametrize(
    ("target", "source", "said"),
    [
        ("broken_plugin", "raise ImportError('needs libfoo')", "ImportError: needs libfoo"),
        ("missing_module_xyz", None, "ModuleNotFoundError"),
        ("not_an_engine", "ENGINE = 42", "is not an EngineKind"),
    ],
)
def test_broken_plugin_is_one_line(
    target: str, source: str | None, said: str, data_root: Path, tmp_path: Path
) -> None:
    modules = {target: source} if source is not None else {}
    env = _install(tmp_path / "site", f"[gnomon.engines]\nbad = {target}\n", modules)
    proc = gnomon("run", "--model", "bad:x", "--bench", "gsm8k", "--data", data_root,
                  "--store", tmp_path / "s.sqlite", env=env)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: engine 'bad'"), proc.stderr
    assert f"{target!r}" in lines[0] and said in lines[0]
    # a broken plugin is never read for the built-in engines
    check = "from gnomon.engines import *; print(model_key(parse_model('openai:m'), 'served'))"
    built_in = subprocess.run(
        [sys.executable, "-c", check], env=env, capture_output=True, text=True
    )
    assert built_in.stdout.strip() == "openai:m@https://api.openai.com/v1", built_in.stderr
