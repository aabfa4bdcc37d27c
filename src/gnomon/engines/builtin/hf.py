"""`hf:` — a transformers causal LM: a hub id, a local model directory or a local GGUF file.

A local model is named for the store by its files (a GGUF by its bytes, a directory by its small
files and its weights' sizes and times), so results follow the model, not the path.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from gnomon import text
from gnomon.engines.base import Engine
from gnomon.engines.gguf_file import check_gguf, find_gguf, gguf_identity, named_like_gguf
from gnomon.engines.refs import ApiSettings, LoadOptions, ModelRef
from gnomon.engines.registry import EngineKind
from gnomon.errors import UserError

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")
_TEXT_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json")


def parse(name: str, revision: str | None, model: str) -> ModelRef:
    if not name:
        raise UserError("--model names no model")
    path = Path(name).expanduser()
    looks_local = name.startswith(("/", "./", "../", "~")) or path.exists() or named_like_gguf(name)
    if looks_local:
        return _local_model(name, path)
    if name.count("/") > 1 or " " in name:
        raise UserError(f"--model {model!r} is neither a local directory nor a hub id (org/name)")
    return ModelRef("hf", name, revision, False)


def _local_model(name: str, path: Path) -> ModelRef:
    """A model directory, a GGUF file, or a folder whose only model is one GGUF file.

    A GGUF keeps the path it was named by (symlinks unresolved): transformers reads the
    tokenizer files beside it, and in a hub cache snapshot those sit beside the link, not the blob.
    """
    if path.is_file():
        check_gguf(path, name)
        return ModelRef("hf", os.path.abspath(path), None, True)
    if not path.is_dir():
        what = "GGUF file" if named_like_gguf(name) else "model directory"
        raise UserError(f"{what} not found: {name}")
    if (path / "config.json").is_file():
        return ModelRef("hf", str(path.resolve()), None, True)
    single = find_gguf(path, name)
    if single is None:
        raise UserError(
            f"{name}: not a transformers model directory (no config.json and no .gguf file)"
        )
    check_gguf(single, str(single))
    return ModelRef("hf", os.path.abspath(single), None, True)


def fingerprint(path: Path) -> str:
    """Content of the small files plus size and modification time of the weights: a changed
    checkpoint gets a new identity without hashing gigabytes."""
    digest = hashlib.sha256()
    for item in sorted(path.iterdir()):
        if item.name in _TEXT_FILES:
            digest.update(text.encode(item.name) + item.read_bytes())
        elif item.suffix in _WEIGHT_SUFFIXES:
            stat = item.stat()
            digest.update(text.encode(f"{item.name}:{stat.st_size}:{stat.st_mtime_ns}"))
    return digest.hexdigest()[:16]


def model_key(ref: ModelRef, dtype: str, api: ApiSettings | None) -> str:
    if ref.local:
        path = Path(ref.name)
        if path.is_file():  # a GGUF: named by its bytes
            return f"{ref.engine}:gguf:{gguf_identity(path)}|{dtype}"
        return f"{ref.engine}:local:{fingerprint(path)}|{dtype}"
    return f"{ref.engine}:{ref.name}@{ref.revision or 'main'}|{dtype}"


def load(ref: ModelRef, options: LoadOptions) -> Engine:
    from gnomon.engines.hf import HFEngine

    return HFEngine(
        ref.name,
        device=options.device,
        dtype=options.dtype,
        batch_size=options.batch_size,
        revision=ref.revision,
        threads=options.threads,
    )


ENGINE = EngineKind("hf", parse, model_key, load)
