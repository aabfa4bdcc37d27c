"""Choosing an engine from a `--model` string, and naming the model for the store.

`--model PREFIX:NAME` picks the engine registered under PREFIX (`registry.py`; no prefix means
`hf`). The model's identity is worked out without loading it, so a run whose results are all
stored never loads the model at all.
"""

from __future__ import annotations

from gnomon.engines.base import Engine
from gnomon.engines.builtin.hf import fingerprint
from gnomon.engines.refs import ApiSettings, LoadOptions, ModelRef
from gnomon.engines.registry import DEFAULT, EngineKind, available, find

__all__ = [
    "ApiSettings",
    "EngineKind",
    "LoadOptions",
    "ModelRef",
    "available",
    "engine_kind",
    "fingerprint",
    "load_engine",
    "model_key",
    "parse_model",
]


def parse_model(model: str, revision: str | None = None) -> ModelRef:
    prefix, sep, name = model.partition(":")
    if not sep or len(prefix) <= 1:  # no prefix (or a Windows drive letter): a transformers model
        prefix, name = DEFAULT, model
    return find(prefix, model).parse(name, revision, model)


def engine_kind(ref: ModelRef) -> EngineKind:
    """The registered engine a parsed reference belongs to (e.g. to ask whether it is served)."""
    return find(ref.engine, ref.display)


def model_key(ref: ModelRef, dtype: str, api: ApiSettings | None = None) -> str:
    return engine_kind(ref).model_key(ref, dtype, api)


def load_engine(
    ref: ModelRef,
    *,
    device: str,
    dtype: str,
    batch_size: int,
    api: ApiSettings | None = None,
    threads: int | None = None,
) -> Engine:
    return engine_kind(ref).load(ref, LoadOptions(device, dtype, batch_size, api, threads))
