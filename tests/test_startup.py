"""Start-up: a run whose answers and scores are all stored never imports torch or transformers,
the dtype in a model's key is the one torch would choose (so stored runs keep being reused), and
`--threads` reaches the engine without entering any key."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from itertools import product
from pathlib import Path
from typing import Any

import pytest
from gnomon_cli import ENV, gnomon, summary

from gnomon.engines import LoadOptions, load_engine, model_key, parse_model
from gnomon.engines.devices import _gpu_build, _torch_version_file, gpu_possible, quick_dtype_name
from gnomon.errors import UserError
from gnomon.run import RunOptions, make_judge

DEVICES = ["auto", "cpu", "cuda", "cuda:0", "cuda:1", "cudax", "mps", "meta", "cpu:0", "bogus", ""]
DTYPES = ["auto", "float32", "float16", "bfloat16", "half", "Float32", ""]
# Runs the real CLI, then writes which heavy libraries the process imported to the file in argv[1].
WATCHED = (
    "import json, sys\n"
    "from gnomon.cli import main\n"
    "report = sys.argv.pop(1)\n"
    "sys.argv[0] = 'gnomon'\n"
    "try:\n"
    "    main()\n"
    "finally:\n"
    "    heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers'})\n"
    "    open(report, 'w').write(json.dumps(heavy))\n"
)


def outcome(device: str, dtype: str, answer: Any) -> object:
    """An answer or the exact one-line error a user would see."""
    try:
        return answer(device, dtype)
    except UserError as exc:
        return f"error: {exc}"


def torch_dtype_name(device: str, dtype: str) -> str:
    """What the model key held before: the dtype the hf engine resolves, through torch."""
    from gnomon.engines.hf import resolve_device, resolve_dtype

    return str(resolve_dtype(dtype, resolve_device(device))).removeprefix("torch.")


def test_dtype_named_without_torch_is_torchs_answer() -> None:
    import torch

    gpu = gpu_possible()
    if torch.version.cuda is None and torch.version.hip is None:  # a CPU build, as in CI
        assert gpu is False
    answered = 0
    for device, dtype in product(DEVICES, DTYPES):
        quick = outcome(device, dtype, lambda d, t: quick_dtype_name(d, t, gpu_possible=gpu))
        if quick is None:  # torch is asked, so the answer is torch's by construction
            continue
        answered += 1
        assert quick == outcome(device, dtype, torch_dtype_name), (device, dtype)
    # every cpu case, and on a machine without a GPU every auto and cuda case too
    assert answered >= len(DTYPES) * (1 if gpu else 6)


def test_a_possible_gpu_is_left_to_torch() -> None:
    for device, dtype in product(["auto", "cuda", "cuda:1"], DTYPES):
        assert quick_dtype_name(device, dtype, gpu_possible=True) is None
    for device in ("mps", "cpu:0", "bogus"):  # kinds named here do not cover: torch's answer
        assert quick_dtype_name(device, "auto", gpu_possible=False) is None
    assert quick_dtype_name("cpu", "auto", gpu_possible=True) == "float32"
    assert quick_dtype_name("cpu", "bfloat16", gpu_possible=True) == "bfloat16"


def version_file(folder: Path, cuda: str | None, hip: str | None) -> Path:
    folder.mkdir()
    path = folder / "version.py"
    path.write_text(
        "from typing import Optional\n__version__ = '9.9.9'\n"
        f"cuda: Optional[str] = {cuda!r}\nhip: Optional[str] = {hip!r}\n"
    )
    return path


def test_gpu_possible_from_the_build_and_the_device_nodes(tmp_path: Path) -> None:
    bare, nvidia, rocm, wsl = (tmp_path / n for n in ("bare", "nvidia", "rocm", "wsl"))
    for folder, node in ((bare, "null"), (nvidia, "nvidia0"), (rocm, "kfd"), (wsl, "dxg")):
        folder.mkdir()
        (folder / node).touch()
    cpu_build = version_file(tmp_path / "cpu", None, None)
    cuda_build = version_file(tmp_path / "cu", "12.8", None)
    hip_build = version_file(tmp_path / "hip", None, "6.4")
    for dev in (bare, nvidia, rocm, wsl):  # a CPU build never sees a GPU
        assert not gpu_possible(dev, cpu_build, "linux")
    assert not gpu_possible(bare, cuda_build, "linux")  # no driver's nodes: no GPU
    for dev in (nvidia, rocm, wsl):
        assert gpu_possible(dev, cuda_build, "linux")
        assert gpu_possible(dev, hip_build, "linux")
    assert not gpu_possible(nvidia, cuda_build, "darwin")
    assert gpu_possible(bare, cuda_build, "win32")  # no nodes to read there: ask torch
    assert gpu_possible(tmp_path / "missing", cuda_build, "linux")  # unreadable /dev
    odd = tmp_path / "odd.py"
    for text in ("cuda = None\n", "cuda = None\nhip = some_call()\n", "not python (\n"):
        odd.write_text(text)
        assert _gpu_build(odd), text  # unsure: a GPU may be there
    assert _gpu_build(tmp_path / "absent.py")


def test_the_installed_torch_build_is_read_without_importing_it() -> None:
    import torch

    assert _gpu_build(_torch_version_file()) == (
        torch.version.cuda is not None or torch.version.hip is not None
    )


def watched(*args: object, report: Path) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", WATCHED, str(report), *map(str, args)],
        capture_output=True, text=True, timeout=300, env=ENV,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc, json.loads(report.read_text())


@pytest.mark.slow
def test_a_fully_stored_run_imports_neither_torch_nor_transformers(
    llama_dir: Path, data_root: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store.sqlite"
    args = ["run", "--model", f"hf:{llama_dir}", "--bench", "arc_easy,gsm8k", "--data", data_root,
            "--limit", "3", "--store", store]  # fmt: skip
    first, heavy = watched(*args, "--threads", "1", report=tmp_path / "first.json")
    assert summary(first.stdout) == (6, 0, 6)
    assert heavy == ["torch", "transformers"]  # the watch sees them when they are imported
    started = time.monotonic()
    again, heavy = watched(*args, "--threads", "2", report=tmp_path / "again.json")
    seconds = time.monotonic() - started
    assert summary(again.stdout) == (6, 6, 0)  # --threads is in no key: everything is reused
    assert heavy == []
    assert "loading" not in again.stderr
    print(f"fully stored run: {seconds:.2f}s wall")
    with sqlite3.connect(store) as db:
        rows = db.execute("SELECT model_key, config FROM runs ORDER BY created").fetchall()
    ref = parse_model(f"hf:{llama_dir}")
    # the key torch's own dtype choice gives, as every stored run before this change was keyed
    assert {key for key, _ in rows} == {model_key(ref, torch_dtype_name("auto", "auto"))}
    assert [json.loads(config)["threads"] for _, config in rows] == [1, 2]


def test_threads_reach_the_engine(llama_dir: Path) -> None:
    import torch

    from gnomon.engines.hf import HFEngine

    ref = parse_model(f"hf:{llama_dir}")
    before = torch.get_num_threads()
    try:
        engine = load_engine(ref, device="cpu", dtype="float32", batch_size=1, threads=3)
        assert isinstance(engine, HFEngine) and engine.threads is not None
        assert engine.threads.requested == 3 and torch.get_num_threads() == 3
        engine = load_engine(ref, device="cpu", dtype="float32", batch_size=1)
        assert isinstance(engine, HFEngine) and engine.threads is not None
        assert engine.threads.requested is None
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("threads", [0, -2])
def test_threads_below_one_is_a_user_error(threads: int, llama_dir: Path, tmp_path: Path) -> None:
    ref = parse_model(f"hf:{llama_dir}")
    with pytest.raises(UserError, match=f"--threads {threads}: give 1 or more"):
        LoadOptions(threads=threads)
    with pytest.raises(UserError, match="--threads"):
        RunOptions(ref, [], tmp_path / "s.sqlite", threads=threads)
    with pytest.raises(UserError, match="--threads"):
        make_judge(ref, None, tmp_path / "s.sqlite", device="cpu", threads=threads)


@pytest.mark.parametrize(
    "command",
    [
        ["run", "--model", "hf:nobody/none", "--bench", "arc_easy"],
        ["serve", "--model", "hf:nobody/none"],
        ["score", "--bench", "arc_easy", "answers.jsonl"],
    ],
)
@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_bad_threads_on_the_command_line(command: list[str], value: str) -> None:
    proc = gnomon(*command, "--threads", value, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--threads" in lines[0]
    assert "Traceback" not in proc.stderr


def test_help_names_threads() -> None:
    for command in ("run", "serve", "score"):
        proc = gnomon(command, "--help", timeout=60)
        assert "--threads" in proc.stdout and "intra-op" in proc.stdout, command
