"""Modes turn a rendered sample into engine requests, and the engine's answers into a result."""

from __future__ import annotations

from gnomon.hub.spec import BenchmarkSpec
from gnomon.modes.base import Mode
from gnomon.modes.choice import ChoiceMode
from gnomon.modes.generate import GenerateMode


def mode_for(
    spec: BenchmarkSpec,
    samples: int = 1,
    temperature: float | None = None,
    choice_by_generation: bool = False,
) -> Mode:
    """`samples` and `temperature` apply to code benchmarks (pass@k) and chat benchmarks
    (`prompt.chat`; avg@k: each metric averaged over k answers, as reasoning-model reports
    give it); the others are greedy.
    `choice_by_generation` answers choice benchmarks by writing a letter, for endpoints that
    cannot score text."""
    if spec.mode == "choice" and choice_by_generation:
        from gnomon.modes.choice_generation import ChoiceAsGenerationMode

        return ChoiceAsGenerationMode(spec)
    if spec.mode == "choice":
        return ChoiceMode(spec)
    if spec.mode == "target":
        from gnomon.modes.target import TargetMode

        return TargetMode(spec)
    if spec.mode == "rolling":
        from gnomon.modes.rolling import RollingMode

        return RollingMode(spec)
    if spec.mode == "code":
        from gnomon.modes.code import CodeMode

        return CodeMode(spec, samples, temperature)
    if spec.mode == "tool_call":
        from gnomon.modes.tool_call import ToolCallMode

        return ToolCallMode(spec)
    if spec.mode == "judged":
        from gnomon.modes.judged import JudgedMode

        return JudgedMode(spec)
    if any(e.kind == "judge" for e in spec.extract):
        from gnomon.modes.judge_extract import JudgeExtractMode

        return JudgeExtractMode(spec)
    if spec.prompt.chat:  # the reasoning-model forms: avg@k over k sampled answers
        return GenerateMode(spec, samples, temperature)
    return GenerateMode(spec)


__all__ = ["Mode", "mode_for"]
