"""The model side of `gnomon serve`: tokenise, check the window, generate, read log-probabilities.

Generation is the same `model.generate` call `HFEngine.generate` makes, so greedy text over HTTP
is the text a local run produces; it runs on the scheduler's thread and stops at the next step once
its request's cancel flag is set.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from gnomon.serve.errors import APIError
from gnomon.serve.logprobs import display_tokens, forward_logprobs, token_texts
from gnomon.serve.scheduler import Cancelled

if TYPE_CHECKING:
    from gnomon.engines.hf import HFEngine

MAX_TOP_LOGPROBS = 5


@dataclass(frozen=True)
class Choice:
    text: str  # the completion only (the prompt is prepended by the caller for echo)
    finish_reason: Literal["stop", "length"]
    prompt_tokens: int
    completion_tokens: int
    logprobs: dict[str, Any] | None


@dataclass(frozen=True)
class Prompt:
    """A prompt checked against the window before it takes a place in the queue."""

    text: str
    ids: list[int]
    max_tokens: int


class _Cancel(StoppingCriteria):
    """Ends `generate` at the next step once the request's cancel flag is set."""

    def __init__(self, cancel: threading.Event) -> None:
        self.cancel = cancel

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> Any:
        rows = input_ids.shape[0]
        return torch.full((rows,), self.cancel.is_set(), dtype=torch.bool, device=input_ids.device)


def _check(cancel: threading.Event) -> None:
    if cancel.is_set():
        raise Cancelled("the request was cancelled")


class Server:
    """The model side: tokenise, check the window, generate, read log-probabilities."""

    def __init__(self, engine: HFEngine) -> None:
        self.engine = engine
        self.tokenizer = engine.tokenizer
        eos_id = self.tokenizer.eos_token_id
        self.eos_ids = {eos_id} if eos_id is not None else set()
        self.eos_text = (
            self.tokenizer.decode([eos_id], skip_special_tokens=False) if eos_id is not None else ""
        )

    def prepare(self, prompt: str, max_tokens: int | None) -> Prompt:
        ids = self.engine.encode(prompt)
        window = self.engine.max_length
        if not ids:
            raise APIError(400, "the prompt is empty after tokenisation", param="prompt")
        if max_tokens is None:  # as OpenAI's chat API: until a stop, EOS or the window's end
            max_tokens = max(window - len(ids), 0)
        if len(ids) + max_tokens > window:
            raise APIError(
                400,
                f"this model's maximum context length is {window} tokens; the prompt has "
                f"{len(ids)} tokens and max_tokens is {max_tokens}",
                code="context_length_exceeded",
                param="prompt",
            )
        return Prompt(prompt, ids, max_tokens)

    def complete(
        self,
        prompt: Prompt,
        *,
        temperature: float,
        top_p: float,
        stop: list[str],
        seed: int | None,
        echo: bool,
        logprobs: int | None,
        cancel: threading.Event,
    ) -> Choice:
        """On the scheduler's thread; raises `Cancelled` as soon as `cancel` is seen."""
        ids, max_tokens = prompt.ids, prompt.max_tokens
        _check(cancel)
        new = self._generate(ids, max_tokens, temperature, top_p, stop, seed, cancel)
        _check(cancel)  # a generation cut short by cancellation is not a result
        text, finish, kept = self._finish(new, max_tokens, stop)
        lp = None
        if logprobs is not None:
            lp = self._logprobs(ids, new[:kept], logprobs, echo, len(prompt.text))
        return Choice(text, finish, len(ids), len(new), lp)

    def _generate(
        self,
        ids: list[int],
        max_tokens: int,
        temperature: float,
        top_p: float,
        stop: list[str],
        seed: int | None,
        cancel: threading.Event,
    ) -> list[int]:
        """The same `model.generate` call `HFEngine.generate` makes for a batch of one, so greedy
        text over HTTP is the text a local run produces."""
        if max_tokens == 0:
            return []
        sampling: dict[str, Any] = {"do_sample": False, "temperature": None, "top_p": None}
        if temperature > 0:
            if seed is not None:
                torch.manual_seed(seed)
            sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p}
        stops = sorted(set(stop) | ({self.eos_text} if self.eos_text else set()))
        engine = self.engine
        with torch.inference_mode():
            out = engine.model.generate(
                input_ids=torch.tensor([ids], device=engine.device),
                attention_mask=torch.ones(1, len(ids), dtype=torch.long, device=engine.device),
                max_new_tokens=max_tokens,
                top_k=None,
                **sampling,
                stop_strings=stops or None,
                stopping_criteria=StoppingCriteriaList([_Cancel(cancel)]),
                tokenizer=self.tokenizer,
                pad_token_id=engine.pad_id,
            )
        engine.tokens_computed += int(out.shape[1])
        return out[0, len(ids) : len(ids) + max_tokens].tolist()

    def _finish(
        self, new: list[int], max_tokens: int, stop: list[str]
    ) -> tuple[str, Literal["stop", "length"], int]:
        """Text cut at the first stop string (or EOS); how many generated tokens it keeps."""
        texts = token_texts(self.tokenizer, new)
        # decoded as HFEngine.generate decodes, so local and served greedy text agree exactly
        full = self.tokenizer.decode(new, skip_special_tokens=True)
        cut = len(full)
        for s in (*stop, self.eos_text):
            if s and s in full:
                cut = min(cut, full.index(s))
        # EOS is special, so its text is empty: keep the tokens before it
        kept = next((i for i, t in enumerate(new) if t in self.eos_ids), len(new))
        hit_eos = kept < len(new)
        at = 0
        for i, piece in enumerate(texts[:kept]):
            if at >= cut:
                kept = i
                break
            at += len(piece)
        stopped = cut < len(full) or hit_eos or len(new) < max_tokens
        return full[:cut], "stop" if stopped else "length", kept

    def _logprobs(
        self, prompt_ids: list[int], new: list[int], top: int, echo: bool, prompt_chars: int
    ) -> dict[str, Any]:
        engine = self.engine
        seq = prompt_ids + new
        result = forward_logprobs(engine.model, engine.device, seq, top)
        first = 0 if echo else len(prompt_ids)
        texts = token_texts(self.tokenizer, prompt_ids) if echo else []
        texts += token_texts(self.tokenizer, new)
        ids = seq[first:]
        offsets, at = [], 0
        for i, piece in enumerate(texts):
            if echo and i == len(prompt_ids):
                at = prompt_chars  # the completion is appended to the prompt as given
            offsets.append(at)
            at += len(piece)
        tokens = display_tokens(self.tokenizer, ids, texts)
        top_logprobs: list[dict[str, float] | None] = []
        for i, (token_id, token) in enumerate(zip(ids, tokens, strict=True)):
            alternatives = result.top[first + i]
            if alternatives is None:
                top_logprobs.append(None)
                continue
            entry = {self._piece(t): lp for t, lp in alternatives if t != token_id}
            chosen = result.logprobs[first + i]
            if top > 0 and chosen is not None:
                entry[token] = chosen
            top_logprobs.append(dict(sorted(entry.items(), key=lambda kv: -kv[1])))
        return {
            "tokens": tokens,
            "token_logprobs": result.logprobs[first:],
            "top_logprobs": top_logprobs,
            "text_offset": offsets,
        }

    def _piece(self, token_id: int) -> str:
        return self.tokenizer.decode([token_id], skip_special_tokens=False)

    def chat_prompt(self, messages: list[dict[str, Any]]) -> str:
        if not getattr(self.tokenizer, "chat_template", None):
            raise APIError(
                400,
                "this model's tokenizer has no chat template; use /v1/completions",
                param="messages",
            )
        try:
            return self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
        except Exception as exc:  # jinja raises its own types for messages a template refuses
            raise APIError(400, f"the chat template failed: {exc}", param="messages") from None
