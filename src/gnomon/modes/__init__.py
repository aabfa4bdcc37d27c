"""Modes turn a rendered sample into engine requests, and the engine's answers into a result."""

from __future__ import annotations

from gnomon.hub.spec import BenchmarkSpec
from gnomon.modes.base import Mode
from gnomon.modes.choice import ChoiceMode
from gnomon.modes.generate import GenerateMode


def mode_for(spec: BenchmarkSpec) -> Mode:
    return ChoiceMode(spec) if spec.mode == "choice" else GenerateMode(spec)


__all__ = ["Mode", "mode_for"]
