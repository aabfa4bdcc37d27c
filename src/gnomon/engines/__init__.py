"""Choosing an engine from a `--model` string, and naming the model for the store.

The model's identity is worked out without loading it, so a run whose results are all stored
never loads the model at all.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from gnomon import text
from gnomon.engines.base import Engine
from gnomon.engines.gguf_file import check_gguf, find_gguf, gguf_identity, named_like_gguf
from gnomon.errors import UserError

ENGINES = ("hf", "openai")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")
_TEXT_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json")


@dataclass(frozen=True)
class ModelRef:
    engine: str
    name: str  # a hub id, a local directory or a local GGUF file
    revision: str | None
    local: bool

    @property
    def display(self) -> str:
        return f"{self.engine}:{self.name}"


@dataclass(frozen=True)
class ApiSettings:
    """How to reach a served model (`--model openai:NAME`). The key itself is read at load time
    from an environment variable or a file, never taken from the command line or stored."""

    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    api_key_file: Path | None = None
    chat: bool = False  # chat completions instead of (legacy) completions
    concurrency: int = 8
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    max_retries: int = 6  # per request, after the first attempt
    timeout: float = 60.0  # seconds for one HTTP request, sent to fully read
    model_id: str | None = None  # the served model's identity in the store, instead of NAME@URL

    def __post_init__(self) -> None:
        import math

        if not (math.isfinite(self.timeout) and self.timeout > 0):
            raise UserError(f"--timeout {self.timeout}: give a number of seconds above 0")
        if self.max_retries < 0:
            raise UserError(f"--max-retries {self.max_retries}: give 0 or more")
        if self.model_id is not None and (
            not self.model_id.strip() or not self.model_id.isprintable()
        ):
            raise UserError(f"--model-id {self.model_id!r}: give a non-empty printable name")

    def api_key(self) -> str | None:
        if self.api_key_file is not None:
            try:
                return self.api_key_file.read_text(encoding="utf-8").strip() or None
            except OSError as exc:
                raise UserError(f"cannot read --api-key-file: {exc.strerror}") from None
        return os.environ.get(self.api_key_env) or None


def parse_model(model: str, revision: str | None = None) -> ModelRef:
    engine, sep, name = model.partition(":")
    if not sep or len(engine) <= 1:  # no prefix (or a Windows drive letter): a transformers model
        engine, name = "hf", model
    if engine not in ENGINES:
        raise UserError(
            f"unknown engine {engine!r} in --model {model!r}; available: {', '.join(ENGINES)}"
        )
    if engine == "openai":
        if not name:
            raise UserError("--model openai:NAME needs the served model's name")
        return ModelRef(engine, name, None, False)
    if not name:
        raise UserError("--model names no model")
    path = Path(name).expanduser()
    looks_local = name.startswith(("/", "./", "../", "~")) or path.exists() or named_like_gguf(name)
    if looks_local:
        return _local_model(engine, name, path)
    if name.count("/") > 1 or " " in name:
        raise UserError(f"--model {model!r} is neither a local directory nor a hub id (org/name)")
    return ModelRef(engine, name, revision, False)


def _local_model(engine: str, name: str, path: Path) -> ModelRef:
    """A model directory, a GGUF file, or a folder whose only model is one GGUF file.

    A GGUF keeps the path it was named by (symlinks unresolved): transformers reads the
    tokenizer files beside it, and in a hub cache snapshot those sit beside the link, not the blob.
    """
    if path.is_file():
        check_gguf(path, name)
        return ModelRef(engine, os.path.abspath(path), None, True)
    if not path.is_dir():
        what = "GGUF file" if named_like_gguf(name) else "model directory"
        raise UserError(f"{what} not found: {name}")
    if (path / "config.json").is_file():
        return ModelRef(engine, str(path.resolve()), None, True)
    single = find_gguf(path, name)
    if single is None:
        raise UserError(
            f"{name}: not a transformers model directory (no config.json and no .gguf file)"
        )
    check_gguf(single, str(single))
    return ModelRef(engine, os.path.abspath(single), None, True)


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


def model_key(ref: ModelRef, dtype: str, api: ApiSettings | None = None) -> str:
    if ref.engine == "openai":
        if api and api.model_id is not None:  # the user vouches: same model wherever it is served
            return f"openai:id:{api.model_id.strip()}"
        base = (api.base_url if api else None) or "https://api.openai.com/v1"
        return f"openai:{ref.name}@{base.rstrip('/')}"
    if ref.local:
        path = Path(ref.name)
        if path.is_file():  # a GGUF: named by its bytes
            return f"{ref.engine}:gguf:{gguf_identity(path)}|{dtype}"
        return f"{ref.engine}:local:{fingerprint(path)}|{dtype}"
    return f"{ref.engine}:{ref.name}@{ref.revision or 'main'}|{dtype}"


def load_engine(
    ref: ModelRef, *, device: str, dtype: str, batch_size: int, api: ApiSettings | None = None
) -> Engine:
    if ref.engine == "openai":
        from gnomon.engines.openai import OpenAIEngine

        api = api or ApiSettings()
        return OpenAIEngine(
            ref.name,
            (api.base_url or "https://api.openai.com/v1").rstrip("/"),
            api_key=api.api_key(),
            mode="chat" if api.chat else "completions",
            concurrency=api.concurrency,
            requests_per_minute=api.requests_per_minute,
            tokens_per_minute=api.tokens_per_minute,
            max_retries=api.max_retries,
            timeout=api.timeout,
        )
    from gnomon.engines.hf import HFEngine

    return HFEngine(
        ref.name, device=device, dtype=dtype, batch_size=batch_size, revision=ref.revision
    )
