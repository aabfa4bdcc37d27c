"""The model side of `gnomon serve`: check a request against the window, then have the engine
generate and read log-probabilities, and shape what it returns as OpenAI does.

Generation is `HFEngine.generate_tokens`, the path `HFEngine.generate` takes, so greedy text over
HTTP is the text a local run produces; it runs on the scheduler's thread and stops at the next
step once its request's cancel flag is set. Log-probabilities (echo scoring) are `EchoScorer`'s:
a request's prompts share the computation of their common tokens, and successive requests that
of a few-shot block. Chat prompts are the engine's rendering of the
conversation (`HFEngine.prompt_text`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from gnomon.engines.base import GenerateRequest
from gnomon.engines.hf_echo import EchoScorer
from gnomon.engines.hf_types import Generation, TokenLogprobs
from gnomon.errors import UserError
from gnomon.serve.errors import APIError
from gnomon.serve.logprobs import TokenTexts, display_tokens, token_texts
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
        self.scorer = EchoScorer(engine)
        self._pieces: dict[int, str] = {}  # each alternative's spelling, decoded once
        self._texts = TokenTexts(self.tokenizer)  # prompts' token texts, shared parts once

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
        prompts: list[Prompt],
        *,
        temperature: float,
        top_p: float,
        stop: list[str],
        seed: int | None,
        echo: bool,
        logprobs: int | None,
        cancel: threading.Event,
    ) -> list[Choice]:
        """One choice per prompt, in order. On the scheduler's thread; raises `Cancelled` as
        soon as `cancel` is seen.

        Each prompt generates on its own, as a one-prompt request would (so its text does not
        depend on the list it came in); the log-probabilities of all of them are computed
        together (`EchoScorer`): the prompts' shared tokens once, the rest in one batch."""
        gens = []
        for prompt in prompts:
            _check(cancel)
            gens.append(
                self.engine.generate_tokens(
                    [prompt.ids],
                    max_tokens=prompt.max_tokens,
                    until=stop,
                    temperature=temperature,
                    seed=seed,
                    top_p=top_p,
                    cancel=cancel.is_set,
                )[0]
            )
        _check(cancel)  # a generation cut short by cancellation is not a result
        shaped: list[dict[str, Any] | None] = [None] * len(prompts)
        if logprobs is not None:
            news = [gen.tokens[: self._kept(gen)] for gen in gens]
            # without echo only generated tokens are reported: a prompt with none needs no pass
            wanted = [i for i, new in enumerate(news) if echo or new]
            results = self.scorer.logprobs(
                [prompts[i].ids + news[i] for i in wanted], logprobs, lambda: _check(cancel)
            )
            found = dict(zip(wanted, results, strict=True))
            for i, (prompt, new) in enumerate(zip(prompts, news, strict=True)):
                shaped[i] = self._logprobs(
                    found.get(i), prompt.ids, new, logprobs, echo, len(prompt.text)
                )
        return [
            Choice(gen.text, gen.finish_reason, len(prompt.ids), len(gen.tokens), lp)
            for prompt, gen, lp in zip(prompts, gens, shaped, strict=True)
        ]

    def _kept(self, gen: Generation) -> int:
        """How many generated tokens the answer's text spans: none from EOS on, none past a
        stop string."""
        new = gen.tokens
        texts = token_texts(self.tokenizer, new)
        # EOS is special, so its text is empty: keep the tokens before it
        kept = next((i for i, t in enumerate(new) if t in self.eos_ids), len(new))
        at = 0
        for i, piece in enumerate(texts[:kept]):
            if at >= len(gen.text):
                return i
            at += len(piece)
        return kept

    def _logprobs(
        self,
        result: TokenLogprobs | None,
        prompt_ids: list[int],
        new: list[int],
        top: int,
        echo: bool,
        prompt_chars: int,
    ) -> dict[str, Any]:
        """OpenAI's `logprobs` object for the prompt (with echo) and the generated tokens, from
        the numbers of `prompt_ids + new` (None when there are no tokens to report)."""
        seq = prompt_ids + new
        if result is None:
            result = TokenLogprobs([], [])
        first = 0 if echo else len(prompt_ids)
        texts = self._texts(prompt_ids) if echo else []
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
        piece = self._pieces.get(token_id)
        if piece is None:
            piece = self._pieces[token_id] = self.tokenizer.decode(
                [token_id], skip_special_tokens=False
            )
        return piece

    def chat_prompt(self, request: GenerateRequest) -> str:
        """The conversation as the engine renders it for generation."""
        try:
            return self.engine.prompt_text(request)
        except UserError as exc:
            message = str(exc)
            if "no chat template" in message:
                message += "; use /v1/completions"
            raise APIError(400, message, param="messages") from None
