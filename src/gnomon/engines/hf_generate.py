"""Generation for the transformers engine: one path for `HFEngine.generate` and for `gnomon
serve` (gnomon's own decoding loop, `hf_decode`, which runs a shared few-shot prefix once; or
`model.generate` for a model that loop does not reproduce), conversations through the chat
template, per-row seeded sampling, and the token log-probabilities serve's `echo` needs. A mixin,
so `hf.py` keeps to loading and scoring.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Sequence
from itertools import groupby
from typing import TYPE_CHECKING, Any, Literal

import torch

from gnomon.engines.answers import opens_thinking
from gnomon.engines.base import FailedResult, GenerateBatch, GenerateRequest, GenerateResult
from gnomon.engines.hf_answers import RowReader
from gnomon.engines.hf_chat import NotRendered, render
from gnomon.engines.hf_types import Generation, TokenLogprobs, cancel_criteria
from gnomon.engines.planning import batches
from gnomon.errors import UserError

if TYPE_CHECKING:  # both import transformers, which `generate` loads only when it runs
    from gnomon.engines.hf_decode import Decoder, Row
    from gnomon.engines.stop_text import StopText

TOP_P = 0.95  # sampling.TOP_P


class HFGeneration:
    """What `HFEngine` brings: the loaded model and tokenizer, and its forward-pass helpers."""

    model: Any
    tokenizer: Any
    name: str
    device: torch.device
    batch_size: int
    max_length: int
    min_shared_prefix: int
    call_cost: float
    tokens_computed: int
    _pad_id: int
    _fast: bool

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def _hidden(self, **kwargs: Any) -> tuple[torch.Tensor, Any]:
        raise NotImplementedError

    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def generate(self, requests: Sequence[GenerateRequest]) -> Iterator[GenerateBatch]:
        """Prompts sharing a few-shot prefix run it once (see `hf_decode`); each row stops at
        its own stop strings, EOS or max_tokens. A conversation is rendered by the model's chat
        template first; one the template cannot render, or a prompt with no tokens, is that
        request's `FailedResult`. Sampling draws each row from its own request's seed (see
        `sampling`), so a sample does not depend on its batch."""
        reader = RowReader.of(self.tokenizer, self.model.generation_config.eos_token_id)
        encoded, failed = [], []
        opened: dict[int, bool] = {}  # rows whose prompt leaves them inside a `<think>` block
        for index, req in enumerate(requests):
            try:
                prompt = self._prompt(req)
            except NotRendered as exc:
                failed.append((index, FailedResult(str(exc))))
                continue
            tokens = self.encode(prompt)
            if not tokens:
                failed.append((index, FailedResult("the prompt is empty after tokenisation")))
                continue
            too_long = self._overflow(req, len(tokens))
            if too_long is not None:
                failed.append((index, FailedResult(too_long)))
                continue
            room = self.max_length - req.max_tokens
            opened[index] = opens_thinking(prompt)
            encoded.append((index, tokens[-room:], len(tokens) > room))
        if failed:
            yield failed
        decoder = self._decoder()
        with torch.inference_mode():
            if decoder is None:
                yield from self._generate_with_model(encoded, requests, reader, opened)
                return
            rows = [self._row(tokens, requests[i], opened[i]) for i, tokens, _ in encoded]
            for batch in decoder.run(rows, top_p=TOP_P):
                done: list[tuple[int, GenerateResult | FailedResult]] = []
                for i, new in batch:
                    index, tokens, truncated = encoded[i]
                    read = reader.read(new, requests[index], truncated, len(tokens), opened[index])
                    done.append((index, read))
                yield done

    def _overflow(self, request: GenerateRequest, prompt_tokens: int) -> str | None:
        """Why this request cannot be generated within the model's window, or None. A plain
        prompt too long for its budget is cut from the left, as lm-evaluation-harness cuts it;
        a conversation is not (its cut would drop the template's start and the first turns),
        and no prompt can be when the budget alone fills the window."""
        room = self.max_length - request.max_tokens
        if room > 0 and (request.messages is None or prompt_tokens <= room):
            return None
        what = "conversation" if request.messages is not None else "prompt"
        return (
            f"the {what} ({prompt_tokens} tokens) and max_tokens ({request.max_tokens}) do not "
            f"fit the model's {self.max_length}-token window; lower --max-tokens"
            + (" or use a model with a longer window" if room > 0 else "")
        )

    def _row(self, tokens: list[int], request: GenerateRequest, opened: bool = False) -> Row:
        from gnomon.engines.hf_decode import Row

        stops = self._stops(request.until)
        thinking = True  # every answer's thinking is split off (`RowReader.read`)
        return Row(
            tokens, request.max_tokens, stops, request.temperature, request.seed, thinking, opened
        )

    def _stops(self, until: Sequence[str]) -> tuple[str, ...]:
        """The stop strings generation watches for: the request's and EOS's text."""
        eos = self._eos_text()
        return tuple(sorted(set(until) | ({eos} if eos else set())))

    def _decoder(self) -> Decoder | None:
        """gnomon's decoding loop for this model, or None where it does not reproduce what the
        model computes (checked once per engine)."""
        if not hasattr(self, "_own_decoder"):
            from gnomon.engines.hf_decode import Decoder

            try:
                decoder: Decoder | None = Decoder(self)
            except Exception:  # a config it cannot read: model.generate's path
                decoder = None
            self._own_decoder = decoder if decoder is not None and decoder.supported() else None
        return self._own_decoder

    def _generate_with_model(
        self,
        encoded: list[tuple[int, list[int], bool]],
        requests: Sequence[GenerateRequest],
        reader: RowReader,
        opened: dict[int, bool],
    ) -> Iterator[GenerateBatch]:
        """`model.generate`'s path: a batch shares its stop strings and token budget, so one
        request's stop never ends another's generation; within that, longest first."""

        def shared(
            e: tuple[int, list[int], bool],
        ) -> tuple[tuple[str, ...], int, float, bool]:
            req = requests[e[0]]
            return req.until, req.max_tokens, req.temperature, opened[e[0]]

        encoded = sorted(encoded, key=lambda e: (*shared(e), -len(e[1])))
        for _, same in groupby(encoded, key=shared):
            for chunk in batches(list(same), self.batch_size):
                yield self._generate_batch(chunk, requests, reader, opened[chunk[0][0]])

    def _prompt(self, request: GenerateRequest) -> str:
        if request.messages is None:
            if request.tools is not None:
                raise NotRendered("tools need a conversation (messages), not a plain prompt")
            return request.context
        return render(self.tokenizer, self.name, request.messages, request.tools)

    def _generate_batch(
        self,
        chunk: list[tuple[int, list[int], bool]],
        requests: Sequence[GenerateRequest],
        reader: RowReader,
        opened: bool,
    ) -> list[tuple[int, GenerateResult | FailedResult]]:
        rows = [requests[index] for index, _, _ in chunk]
        first = rows[0]
        done = self.generate_tokens(
            [t for _, t, _ in chunk],
            max_tokens=first.max_tokens,
            until=first.until,
            thinking=True,
            opened=opened,
            temperature=[r.temperature for r in rows],
            seed=[r.seed for r in rows],  # each row its own stream: batching changes nothing
        )
        return [
            (index, reader.read(gen.tokens, requests[index], truncated, len(tokens), opened))
            for (index, tokens, truncated), gen in zip(chunk, done, strict=True)
        ]

    def generate_tokens(
        self,
        rows: list[list[int]],
        *,
        max_tokens: int,
        until: Sequence[str] = (),
        thinking: bool = False,
        opened: bool = False,
        temperature: float | Sequence[float] = 0.0,
        seed: int | None | Sequence[int | None] = 0,
        top_p: float = TOP_P,
        cancel: Callable[[], bool] | None = None,
    ) -> list[Generation]:
        """The generation `generate` runs, for `gnomon serve` too, so greedy text over HTTP is
        the text a local run produces. Each row stops at EOS or any of `until` in its
        generated text (with `thinking`, only outside a `<think>` block, as `RowReader.read`
        reads a conversation; `opened`: the prompt left the row inside one). `temperature`
        (one, or one per row) 0 is greedy; above it samples (top-p), each row from its own
        stream seeded by its `seed` (a fresh random seed where None), so a row's text never
        depends on its batch. `cancel`, polled between
        decoding steps, ends the generation early (the caller then discards what it got)."""
        if max_tokens == 0:
            return [Generation([], "", "length") for _ in rows]
        temps = [temperature] * len(rows) if isinstance(temperature, float | int) else temperature
        seeds = [seed] * len(rows) if seed is None or isinstance(seed, int) else seed
        decoder = self._decoder()
        if decoder is None:
            news = self._model_generate(
                rows, max_tokens, until, (thinking, opened), temps, seeds, top_p, cancel
            )
        else:
            from gnomon.engines.hf_decode import Row

            stops = self._stops(until)
            spec = [
                Row(list(t), max_tokens, stops, float(temp), s, thinking, opened)
                for t, temp, s in zip(rows, temps, seeds, strict=True)
            ]
            news = [[] for _ in rows]
            with torch.inference_mode():
                for batch in decoder.run(spec, top_p=top_p, cancel=cancel):
                    for i, new in batch:
                        news[i] = new
        return [Generation(new, *self._cut(new, until, max_tokens)) for new in news]

    def _model_generate(
        self,
        rows: list[list[int]],
        max_tokens: int,
        until: Sequence[str],
        thinking: tuple[bool, bool],  # a conversation; its prompt opened a `<think>` block
        temps: Sequence[float],
        seeds: Sequence[int | None],
        top_p: float,
        cancel: Callable[[], bool] | None,
    ) -> list[list[int]]:
        """One `model.generate` call, rows left-padded into one batch; each row's new tokens
        (a row that stopped early is followed by padding)."""
        width = max(len(t) for t in rows)
        ids = [[self._pad_id] * (width - len(t)) + t for t in rows]
        mask = [[0] * (width - len(t)) + [1] * len(t) for t in rows]
        stops = self._stops(until)
        from transformers import LogitsProcessorList, StoppingCriteriaList

        from gnomon.engines.sampling import SeededSampler

        processors = LogitsProcessorList()
        if any(t > 0 for t in temps):
            fresh = [secrets.randbits(63) if s is None else s for s in seeds]
            processors.append(SeededSampler(list(temps), fresh, top_p))
        criteria = StoppingCriteriaList()
        if stops:
            criteria.append(self._stop_text().criteria(stops, width, *thinking))
        if cancel is not None:
            criteria.extend(cancel_criteria(cancel))
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=torch.tensor(ids, device=self.device),
                attention_mask=torch.tensor(mask, device=self.device),
                max_new_tokens=max_tokens,
                do_sample=False,  # sampling, where asked, is the seeded processor's
                temperature=None,
                top_p=None,
                top_k=None,
                logits_processor=processors,
                stopping_criteria=criteria,
                pad_token_id=self._pad_id,
            )
        self.tokens_computed += sum(map(len, rows)) + int(out[:, width:].numel())
        return [out[row, width : width + max_tokens].tolist() for row in range(len(rows))]

    def _stop_text(self) -> StopText:
        """The engine's one stop-string check (it learns which tokens can end a stop string
        as it goes), for its decoding loop and for `model.generate`'s path alike."""
        if not hasattr(self, "_own_stop_text"):
            from gnomon.engines.stop_text import StopText

            eos = self.model.generation_config.eos_token_id
            self._own_stop_text = StopText(RowReader.of(self.tokenizer, eos))
        return self._own_stop_text

    def _eos_text(self) -> str:
        eos_id = self.tokenizer.eos_token_id
        if eos_id is None:
            return ""
        return self.tokenizer.decode([eos_id], skip_special_tokens=False)

    def _cut(
        self, new: list[int], until: Sequence[str], max_tokens: int
    ) -> tuple[str, Literal["stop", "length"]]:
        """The decoded text before the first stop string (or EOS's text), and why it ended."""
        full = self.tokenizer.decode(new, skip_special_tokens=True)
        cut = min((full.index(s) for s in (*until, self._eos_text()) if s and s in full),
                  default=len(full))  # fmt: skip
        hit_eos = self.tokenizer.eos_token_id in new
        stopped = cut < len(full) or hit_eos or len(new) < max_tokens
        return full[:cut], "stop" if stopped else "length"

    def token_logprobs(self, ids: list[int], top: int) -> TokenLogprobs:
        """Every token's log-probability given the tokens before it, and the `top` likeliest
        tokens at each position: one float32 forward pass through the head `score` reads."""
        if not ids:
            return TokenLogprobs([], [])
        with torch.inference_mode():
            states, _ = self._hidden(input_ids=torch.tensor([ids], device=self.device))
            logits = self._logits(states[0, :-1]) if self._fast else states[0, :-1].float()
            self.tokens_computed += len(ids)
            logp = torch.log_softmax(logits, dim=-1)  # row i-1 predicts token i
            targets = torch.tensor(ids[1:], device=self.device)
            chosen = logp.gather(1, targets[:, None]).squeeze(1).tolist()
            alternatives: list[list[tuple[int, float]] | None] = [None]
            if top > 0 and len(ids) > 1:
                values, indices = logp.topk(min(top, logp.shape[-1]), dim=-1)
                for row_ids, row_values in zip(indices.tolist(), values.tolist(), strict=True):
                    alternatives.append(list(zip(row_ids, row_values, strict=True)))
            else:
                alternatives.extend([] for _ in ids[1:])
        return TokenLogprobs([None, *chosen], alternatives)

    def prompt_text(self, request: GenerateRequest) -> str:
        """The text a request puts before the answer: its `context`, or its conversation (and
        tools) through the tokenizer's chat template; a UserError says why it cannot be."""
        try:
            return self._prompt(request)
        except NotRendered as exc:
            raise UserError(str(exc)) from None
