"""The judge options of `gnomon run` and `gnomon score` (`--judge`, its server and limits,
`--judge-samples`) turned into what a run needs, and what a re-run would do for failures."""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

from gnomon.errors import UserError

if TYPE_CHECKING:
    from gnomon.engines import ApiSettings, ModelRef
    from gnomon.hub.spec import BenchmarkSpec


def retry_hint(failures: list[dict]) -> str:
    """What a re-run does for these failures: an engine's are asked again, but a judgment whose
    replies could not be read is read back from the store and fails again."""
    from gnomon.pipeline.scoring import JUDGMENT_FAILED

    settled = sum(1 for f in failures if f["reason"].startswith(JUDGMENT_FAILED))
    stays = (
        "a failed judgment's unreadable replies are stored, so the same command fails it again "
        "(another --judge or judge prompt asks anew)"
    )
    if settled == len(failures):
        return stays
    hint = "run the same command again to retry them"
    return hint + (f" ({settled} of them failed judgments: {stays})" if settled else "")


def judge_samples(specs: list[BenchmarkSpec], samples: int | None) -> list[BenchmarkSpec]:
    """`--judge-samples K` on every rating judge of the run; refused where none rates."""
    from gnomon.modes.judged import with_judge_samples

    if samples is not None and not any(
        s.judge is not None and s.judge.verdict == "rating" for s in specs
    ):
        raise UserError("--judge-samples is for benchmarks judged by rating; none of these is")
    return [with_judge_samples(s, samples) for s in specs]


def judge_options(
    judge: str | None,
    base_url: str | None,
    api_key_env: str,
    model_id: str | None,
    *,
    max_retries: int | None = None,
    timeout: float | None = None,
    own_limits: bool = False,
) -> tuple[ModelRef | None, ApiSettings | None]:
    """The judge's model and, for a served one, how to reach it (always its chat API). A served
    judge is a request like the model's: a run's `--max-retries` / `--timeout` hold for it too
    (the caller passes them), so `--max-retries 0` never waits through a judge's backoff."""
    from gnomon.engines import ApiSettings, parse_model

    served_only = "--judge-max-retries and --judge-timeout are for a served judge (openai:)"
    if judge is None:
        if base_url is not None or model_id is not None:
            raise UserError("--judge-base-url and --judge-model-id describe a judge: add --judge")
        if own_limits:
            raise UserError(served_only + ": add --judge")
        return None, None
    if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
        raise UserError(f"--judge-timeout {timeout}: give a number of seconds above 0")
    try:
        ref = parse_model(judge)
    except UserError as exc:
        raise UserError(str(exc).replace("--model", "--judge")) from None
    if ref.engine != "openai" and (base_url is not None or model_id is not None):
        raise UserError("--judge-base-url and --judge-model-id are for a served judge (openai:)")
    if ref.engine != "openai" and own_limits:
        raise UserError(served_only)
    settings = ApiSettings(base_url, api_key_env, chat=True, model_id=model_id)
    if max_retries is not None:
        settings = dataclasses.replace(settings, max_retries=max_retries)
    if timeout is not None:
        settings = dataclasses.replace(settings, timeout=timeout)
    return ref, settings
