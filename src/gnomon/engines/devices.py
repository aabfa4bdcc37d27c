"""The dtype a local model loads in, named without importing torch where the answer is certain.

The dtype is part of a model's key in the store, so it is needed before the store is read; but
importing torch (a second or more) only to learn that a machine without a GPU runs float32 would
dominate a run whose answers are all stored. So torch is asked only when a GPU may be present
(`--device auto` or `cuda`) or the device is one named here does not cover (`mps`, `cpu:0`, ...);
its answer then is the engine's own, exactly as before. Where torch is not asked the answer is
the same one torch would give: a torch built without CUDA or ROCm, or a machine without a GPU's
device nodes, never has `torch.cuda.is_available()`.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from functools import cache
from pathlib import Path

from gnomon.errors import UserError

DTYPE_NAMES = ("float32", "float16", "bfloat16")  # the order hf.DTYPES lists them in errors
# /dev entries a usable GPU puts there: NVIDIA's driver, ROCm's kernel driver, WSL2's GPU bridge
_GPU_NODES = ("nvidia", "kfd", "dxg")


def dtype_name(device: str, dtype: str) -> str:
    """`resolve_dtype(dtype, resolve_device(device))` of the hf engine, as a name, with the same
    errors for a bad `--device` or `--dtype`; torch is imported only when the answer needs it."""
    if "torch" not in sys.modules:  # once imported, asking it costs nothing
        answer = quick_dtype_name(device, dtype, gpu_possible=_gpu_possible())
        if answer is not None:
            return answer
    from gnomon.engines.hf import resolve_device, resolve_dtype

    return str(resolve_dtype(dtype, resolve_device(device))).removeprefix("torch.")


def quick_dtype_name(device: str, dtype: str, *, gpu_possible: bool) -> str | None:
    """The answer without torch, or None where only torch can tell (a GPU may be present, or a
    device kind this does not know)."""
    cuda = device.startswith("cuda")
    if device != "cpu" and (gpu_possible or not (cuda or device == "auto")):
        return None
    if cuda:  # no GPU: what torch says for any cuda device
        raise UserError(f"--device {device}: CUDA is not available on this machine")
    if dtype == "auto":  # on the CPU, always float32
        return "float32"
    if dtype not in DTYPE_NAMES:
        raise UserError(f"--dtype {dtype!r}: choose auto, {', '.join(DTYPE_NAMES)}")
    return dtype


@cache
def _gpu_possible() -> bool:
    return gpu_possible()


def gpu_possible(
    dev: Path = Path("/dev"), torch_version: Path | None = None, platform: str = sys.platform
) -> bool:
    """False only where `torch.cuda.is_available()` is certainly False: torch was built for
    neither CUDA nor ROCm, or the machine shows no GPU (Linux without the driver's device nodes;
    macOS, which no CUDA build of torch supports). Anything else may hold a GPU."""
    if not _gpu_build(torch_version or _torch_version_file()):
        return False
    if platform == "darwin":
        return False
    if platform.startswith("linux"):
        try:
            return any(entry.name.startswith(_GPU_NODES) for entry in dev.iterdir())
        except OSError:  # an unreadable /dev proves nothing
            return True
    return True


def _torch_version_file() -> Path | None:
    """torch's `version.py`, found without importing torch (None if torch is not installed)."""
    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "version.py"


def _gpu_build(version_file: Path | None) -> bool:
    """Whether torch was built with CUDA or ROCm (HIP), read from the `cuda` and `hip` constants
    its build writes into `torch/version.py`; True whenever that cannot be read for certain."""
    if version_file is None:
        return True
    try:
        tree = ast.parse(version_file.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return True
    found: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in ("cuda", "hip"):
            try:
                found[target.id] = ast.literal_eval(value)
            except (ValueError, TypeError, SyntaxError, RecursionError):
                return True
    if set(found) != {"cuda", "hip"}:
        return True
    return found["cuda"] is not None or found["hip"] is not None
