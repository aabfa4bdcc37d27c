"""Driving lm-evaluation-harness's `hf` backend for a benchmark: its CLI as a subprocess, its
logged samples read back in gnomon's terms, and the tokens it puts through the model counted with
its own code in process.

Used by `speed_sweep.py`. Importing this module is cheap; counting tokens
imports torch and lm-eval.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gnomon_side import Key, Outcome, run_logged

ScoreRequest = tuple[str, str]  # (context, continuation)
GenRequest = tuple[str, dict[str, Any], str]  # (context, generation kwargs, the output it gave)


def _dated(name: str, task: str) -> bool:
    return re.fullmatch(rf"samples_{re.escape(task)}_\d{{4}}-.*\.jsonl", name) is not None


def first_argmax(values: list[float]) -> int:
    return max(range(len(values)), key=lambda i: (values[i], -i))  # numpy's tie rule


def run_lm_eval(
    model_dir: Path,
    tasks_dir: Path,
    tasks: Sequence[str],
    key_of: Callable[[str, int], Key],
    out: Path,
    env: dict[str, str],
    extra: Sequence[str] = (),
    batch_size: int = 8,
) -> tuple[Outcome, list[ScoreRequest], list[GenRequest]]:
    """One `python -m lm_eval run` into a fresh output dir; `key_of(task, doc_id)` names each
    logged sample in gnomon's terms. Returns the outcome and the requests it sent."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    cmd = [
        sys.executable, "-m", "lm_eval", "run",
        "--model", "hf",
        "--model_args", f"pretrained={model_dir},dtype=float32",
        "--tasks", ",".join(tasks),
        "--include_path", str(tasks_dir),
        "--batch_size", str(batch_size),
        "--device", "cpu",
        "--log_samples",
        "--output_path", str(out / "out"),
        *extra,
    ]  # fmt: skip
    ran = run_logged(cmd, out / "log.txt", env)
    (results_file,) = (out / "out").rglob("results_*.json")
    results = json.loads(results_file.read_text(encoding="utf-8"))
    outcome = Outcome(ran.wall_s, ran.cpu_s, float(results["total_evaluation_time_seconds"]))
    scored: list[ScoreRequest] = []
    generated: list[GenRequest] = []
    for task in tasks:
        # samples_<task>_<date>.jsonl: a task named like another's prefix must not match it
        (samples_file,) = (
            f for f in (out / "out").rglob(f"samples_{task}_*.jsonl") if _dated(f.name, task)
        )
        for line in samples_file.read_text(encoding="utf-8").splitlines():
            sample = json.loads(line)
            key = key_of(task, int(sample["doc_id"]))
            if key in outcome.predictions:
                continue  # logged once per filter (gsm8k: strict-match, flexible-extract)
            args = sample["arguments"]
            ordered = [args[k] for k in sorted(args, key=lambda k: int(k.rsplit("_", 1)[1]))]
            outcome.prompts[key] = ordered[0]["arg_0"]
            if isinstance(ordered[0]["arg_1"], dict):  # generate_until: (context, gen kwargs)
                text = sample["resps"][0][0]
                outcome.predictions[key] = text
                generated.append((ordered[0]["arg_0"], ordered[0]["arg_1"], text))
            else:  # loglikelihood: filtered_resps holds (loglikelihood, is_greedy) per choice
                lls = [float(r[0]) for r in sample["filtered_resps"]]
                outcome.predictions[key] = first_argmax(lls)
                outcome.logprobs[key] = lls
                scored.extend((a["arg_0"], a["arg_1"]) for a in ordered)
    return outcome, scored, generated


class TokenCounter:
    """Tokens lm-eval's `hf` backend puts through the model for given requests, measured with
    lm-eval's own code rather than re-derived: its request merging, truncation, sorting and
    batching run exactly as in the timed runs, with the model's forward pass replaced by
    zeros of the right shape (the counts do not depend on it, and this keeps the measurement
    out of the timed runs)."""

    def __init__(self, model_dir: Path, batch_size: int) -> None:
        from lm_eval.models import huggingface as hf_backend

        self._hf = hf_backend
        self.lm = hf_backend.HFLM(
            pretrained=str(model_dir), device="cpu", dtype="float32", batch_size=batch_size
        )

    def loglikelihood(self, requests: list[ScoreRequest]) -> tuple[int, int]:
        """Non-padding tokens, and positions computed with lm-eval's right-padding.

        `HFLM.loglikelihood` merges requests whose context + continuation[:-1] coincide (its
        one-token-continuation cache) and hands each batch's rows unpadded to `pad_and_concat`,
        so summing their lengths gives the tokens, and rows x padded width the positions."""
        import torch
        from lm_eval.api.instance import Instance

        hf, lm = self._hf, self.lm
        counts = {"tokens": 0, "padded": 0}
        real_pad = hf.pad_and_concat

        def counting_pad(max_length: int, tensors: list, padding_side: str = "right"):
            counts["tokens"] += sum(int(t.shape[-1]) for t in tensors)
            counts["padded"] += max_length * len(tensors)
            return real_pad(max_length, tensors, padding_side=padding_side)

        vocab = lm.model.config.vocab_size
        real_call = lm._model_call
        hf.pad_and_concat = counting_pad
        lm._model_call = lambda inps, **_: torch.zeros(*inps.shape, vocab)
        try:
            instances = [
                Instance(request_type="loglikelihood", doc={}, arguments=pair, idx=i)
                for i, pair in enumerate(requests)
            ]
            lm.loglikelihood(instances, disable_tqdm=True)
        finally:
            hf.pad_and_concat = real_pad
            lm._model_call = real_call
        return counts["tokens"], counts["padded"]

    def generate(self, requests: list[GenRequest]) -> tuple[int, int]:
        """Prompt tokens (non-padding), and prompt + generated positions (rows x steps per
        batch, as gnomon counts its own).

        `HFLM.generate_until` batches and truncates as in the timed runs; a stand-in for
        `_model_generate` records each batch. How many steps a batch ran is read from the outputs
        of the timed run: a batch runs until its last row stops, and a row that gave fewer than
        `max_gen_toks` tokens stopped early, at about its output's length plus the stop string
        (an estimate only when every row of a batch stopped early)."""
        from lm_eval.api.instance import Instance

        lm = self.lm
        steps_of: dict[str, int] = {}
        for context, kwargs, text in requests:
            budget = int(kwargs.get("max_gen_toks", lm.max_gen_toks))
            made = len(lm.tok_encode(text, add_special_tokens=False))
            stop = max(
                (len(lm.tok_encode(s, add_special_tokens=False)) for s in kwargs.get("until", [])),
                default=1,
            )
            steps_of[context] = budget if made >= budget else min(budget, made + stop)
        counts = {"prompt": 0, "positions": 0}
        batch: list[str] = []
        real_encode, real_generate = lm.tok_batch_encode, lm._model_generate

        def recording_encode(strings: list[str], **kwargs: Any):
            batch[:] = strings
            return real_encode(strings, **kwargs)

        def recording_generate(context, attention_mask, **_: Any):
            prompt = int(attention_mask.sum())
            counts["prompt"] += prompt
            counts["positions"] += prompt + len(batch) * max(steps_of[c] for c in batch)
            return context  # no new tokens: lm-eval decodes "", which nothing here reads

        lm.tok_batch_encode, lm._model_generate = recording_encode, recording_generate
        try:
            instances = [
                Instance(request_type="generate_until", doc={}, arguments=(c, k), idx=i)
                for i, (c, k, _) in enumerate(requests)
            ]
            lm.generate_until(instances, disable_tqdm=True)
        finally:
            lm.tok_batch_encode, lm._model_generate = real_encode, real_generate
        return counts["prompt"], counts["positions"]
