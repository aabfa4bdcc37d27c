"""Engines are found by the prefix of `--model` (`hf:`, `openai:`, a plugin's) in a registry.

An engine is one module that defines `ENGINE = EngineKind(...)`: how to read the model name after
the prefix, how to name the model for the store without loading it, and how to load it. Built-in
engines are the modules of `gnomon.engines.builtin` (adding one is adding a module there); other
packages add engines through the `gnomon.engines` entry point group, whose entry points name such
a module (or the `EngineKind` itself). Entry points are read only for a prefix that is not built
in, so a broken plugin cannot affect `hf:` or `openai:` runs, and it is loaded only when asked for.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType
from typing import TYPE_CHECKING, Any

from gnomon.engines.refs import ApiSettings, LoadOptions, ModelRef
from gnomon.errors import UserError

if TYPE_CHECKING:
    from gnomon.engines.base import Engine

GROUP = "gnomon.engines"
DEFAULT = "hf"  # a --model without a prefix is a transformers model


@dataclass(frozen=True)
class EngineKind:
    """One engine, as the registry knows it; importing the module that defines it must be cheap
    (the engine's own heavy imports belong inside `load`)."""

    prefix: str
    # (name after the prefix, --revision, --model as typed) -> the model's reference; raises
    # UserError for a name this engine cannot use
    parse: Callable[[str, str | None, str], ModelRef]
    # (reference, dtype, API settings) -> the model's identity in the store, without loading it
    model_key: Callable[[ModelRef, str, ApiSettings | None], str]
    load: Callable[[ModelRef, LoadOptions], Engine]
    served: bool = False  # the model runs elsewhere: no device or dtype of ours applies


def plain_name(prefix: str) -> Callable[[str, str | None, str], ModelRef]:
    """`parse` for engines whose model name is free text: anything but empty."""

    def parse(name: str, revision: str | None, model: str) -> ModelRef:
        if not name:
            raise UserError(f"--model {prefix}:NAME needs a model name")
        return ModelRef(prefix, name, revision, False)

    return parse


_builtin: dict[str, EngineKind] | None = None
_plugins: dict[str, EngineKind] = {}


def builtin() -> dict[str, EngineKind]:
    """The engines shipped with gnomon, by prefix: every module of `gnomon.engines.builtin`."""
    global _builtin
    if _builtin is None:
        from gnomon.engines import builtin as package

        found: dict[str, EngineKind] = {}
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            kind = _kind_of(module)
            if kind is None or kind.prefix in found:
                raise RuntimeError(f"{module.__name__}: no ENGINE, or a prefix already taken")
            found[kind.prefix] = kind
        _builtin = found
    return _builtin


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def available() -> list[str]:
    """Every prefix `--model` accepts: the built-in ones first, then installed plugins'."""
    names = list(builtin())
    return names + sorted(n for n in _entry_points() if n not in names)


def find(prefix: str, model: str) -> EngineKind:
    """The engine for `prefix`; an unknown or broken one is a one-line UserError."""
    kinds = builtin()
    if prefix in kinds:
        return kinds[prefix]
    if prefix in _plugins:
        return _plugins[prefix]
    point = _entry_points().get(prefix)
    if point is None:
        raise UserError(
            f"unknown engine {prefix!r} in --model {model!r}; available: {', '.join(available())}"
        )
    _plugins[prefix] = _load_plugin(point)
    return _plugins[prefix]


def _load_plugin(point: EntryPoint) -> EngineKind:
    where = f"engine {point.name!r} (entry point {point.value!r}"
    where += f" of {point.dist.name})" if point.dist is not None else ")"
    try:
        loaded = point.load()
    except Exception as exc:  # a plugin may fail in any way; the user gets one line
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise UserError(f"{where} failed to load: {type(exc).__name__}: {first}") from None
    kind = _kind_of(loaded)
    if kind is None:
        raise UserError(f"{where} is not an EngineKind nor a module defining ENGINE = EngineKind")
    if kind.prefix != point.name:
        raise UserError(f"{where} declares the prefix {kind.prefix!r}, not {point.name!r}")
    return kind


def _kind_of(obj: Any) -> EngineKind | None:
    if isinstance(obj, ModuleType):
        obj = getattr(obj, "ENGINE", None)
    return obj if isinstance(obj, EngineKind) else None
