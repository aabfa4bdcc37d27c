"""A user's `pip install gnomon` (no extras) into a fresh virtual environment can evaluate a served
model: every module `gnomon run --model openai:...` imports must be a runtime dependency.

The server is the test environment's `gnomon serve`; the client is the fresh environment's
`gnomon run`, so nothing the tests install (httpx, pytest, ...) can hide a missing dependency.
torch goes in first, pinned as `scripts/bootstrap` pins it, so pip takes the CPU build; the rest
is pinned by constraints.txt. Needs the package index (PyPI, or pip's cache after bootstrap).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from gnomon_cli import summary
from test_served_run import (
    KEY,
    server,  # noqa: F401  (the fixture: `gnomon serve` on the tiny model)
)

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
TORCH = os.environ.get("GNOMON_TORCH_VERSION", "2.13.0")


def _pip(python: Path, *args: str) -> None:
    proc = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def fresh_gnomon(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """gnomon installed from a copy of this checkout (so no build output lands in it)."""
    work = tmp_path_factory.mktemp("install")
    source = work / "gnomon"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "constraints.txt"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__"))
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    _pip(python, f"torch=={TORCH}")
    _pip(python, "-c", str(source / "constraints.txt"), str(source))
    return venv / "bin" / "gnomon"


def test_a_plain_install_runs_a_served_model(
    fresh_gnomon: Path,
    server: str,  # noqa: F811
    data_root: Path,
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(OMP_NUM_THREADS="1", OPENAI_API_KEY=KEY, HF_HUB_OFFLINE="1")
    proc = subprocess.run(
        [str(fresh_gnomon), "run", "--model", "openai:tiny", "--base-url", server,
         "--bench", "arc_easy", "--data", str(data_root), "--limit", "3",
         "--store", str(tmp_path / "s.sqlite")],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert summary(proc.stdout) == (3, 0, 3)
