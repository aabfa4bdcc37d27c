"""A sandbox for programs a model wrote: own processes, limits, no network, nothing left over.

See `isolation.probe().describe()` for what this host isolates and what it cannot. The names
below load on first use: the store imports `gnomon.sandbox.hidden` on every command, and should
not pay for the runner's imports.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gnomon.sandbox.isolation import Isolation, probe
    from gnomon.sandbox.runner import Limits, Program, Sandbox, Verdict

__all__ = ["Isolation", "Limits", "Program", "Sandbox", "Verdict", "probe"]
_HOMES = {"Isolation": "isolation", "probe": "isolation"} | dict.fromkeys(
    ("Limits", "Program", "Sandbox", "Verdict"), "runner"
)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"gnomon.sandbox.{_HOMES[name]}"), name)
