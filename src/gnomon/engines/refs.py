"""What names a model and how to reach it, apart from any engine's code: the CLI parses these
before deciding whether a model needs loading at all."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from gnomon.errors import UserError


@dataclass(frozen=True)
class ModelRef:
    engine: str  # the registered prefix (hf, openai, or a plugin's)
    name: str  # for hf: a hub id, a local directory or a local GGUF file
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


@dataclass(frozen=True)
class LoadOptions:
    """Everything `gnomon run` / `gnomon serve` say about loading, handed to an engine's `load`.
    A dataclass rather than keyword arguments, so a new option does not break plugins."""

    device: str = "auto"
    dtype: str = "auto"
    batch_size: int = 8
    api: ApiSettings | None = None
    # torch intra-op threads for engines that compute here (None: the engine chooses); never
    # part of a key, since it does not change answers
    threads: int | None = None

    def __post_init__(self) -> None:
        check_threads(self.threads)


def check_threads(threads: int | None) -> None:
    """`--threads` is a count of threads: 1 or more (None leaves the choice to the engine)."""
    if threads is not None and (isinstance(threads, bool) or threads < 1):
        raise UserError(
            f"--threads {threads}: give 1 or more (or leave it out to let gnomon choose)"
        )
