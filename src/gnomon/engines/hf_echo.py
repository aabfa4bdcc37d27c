"""Every token's log-probability for many prompts at once: the work behind `gnomon serve`'s echo.

Scoring over HTTP (`echo=true, max_tokens=0, logprobs=1`) asks for the log-probability of every
prompt token and its likeliest alternatives. A client sends a question's choices together, as a
list of prompts that differ only at the end, and successive questions share a few-shot block.
Computed one prompt at a time that is the same context over and over; here it is computed once:

- the prompts' common token prefix runs once, batch 1; the head is applied at each prefix
  position once and the result is shared by every prompt (position `p - 1`, which predicts each
  prompt's first own token, is one distribution read at several tokens);
- the rest of each prompt runs in a batch on top of the prefix's keys and values (right-padded,
  so no real position sees padding), with the head only at real positions that predict a token;
- a prefix computed for one request is kept (a few, least recently used first) with its keys,
  values and per-position results, keyed by its exact tokens, so the next request recomputes only
  from the first token where it differs. Keys and values at a position depend only on the tokens
  up to it, so a prefix of a kept prefix is reused as is; the numbers equal a fresh pass up to
  float rounding, the same trade `HFEngine.score` makes for its few-shot prefix.

The `TOP` likeliest alternatives are always computed (and kept) and a request's `logprobs` takes
the first of them, so an answer does not depend on what was asked, or kept, before it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from gnomon.engines.hf_types import TokenLogprobs

if TYPE_CHECKING:
    from gnomon.engines.hf import HFEngine

TOP = 5  # alternatives computed per position: the most a request may ask for
KEEP = 4  # prefixes kept for later requests
MIN_KEEP = 16  # shorter prefixes are not worth keeping
MAX_ROWS = 16  # prompts in one batch of the suffix pass
MAX_BATCH_TOKENS = 16_384  # rows x (prefix + width) in one suffix batch: bounds the cache copies
READ_ELEMENTS = 1 << 22  # head outputs (positions x vocabulary) read at once

Alternatives = list[tuple[int, float]]
Layers = list[tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class _Prefix:
    """Tokens that have been run, their keys and values, and each position's results (index
    i: token i's log-probability given the tokens before it, and the `TOP` alternatives there;
    None at 0, which nothing predicts)."""

    tokens: tuple[int, ...]
    layers: Layers
    logprobs: list[float | None]
    top: list[Alternatives | None]


def common_prefix(rows: Sequence[Sequence[int]]) -> int:
    """How many leading tokens every row shares."""
    first = rows[0]
    n = min(map(len, rows))
    for row in rows[1:]:
        i = 0
        while i < n and row[i] == first[i]:
            i += 1
        n = i
    return n


class EchoScorer:
    """Prompt log-probabilities on one `HFEngine`; holds the kept prefixes, so one per server,
    used from one thread (serve's model thread)."""

    def __init__(self, engine: HFEngine, keep: int = KEEP) -> None:
        self.engine = engine
        self.keep = keep
        self._kept: OrderedDict[tuple[int, ...], _Prefix] = OrderedDict()
        head = engine.model.get_output_embeddings()
        vocab = getattr(getattr(head, "weight", None), "shape", (len(engine.tokenizer),))[0]
        self._read_rows = max(1, READ_ELEMENTS // max(1, int(vocab)))

    def logprobs(
        self,
        rows: Sequence[Sequence[int]],
        top: int,
        check: Callable[[], None] | None = None,
    ) -> list[TokenLogprobs]:
        """Per row, each token's log-probability (None for the first) and its `top` (at most
        `TOP`) likeliest alternatives (None for the first). `check` runs between passes and may
        raise to stop the work (a cancelled request)."""
        if not rows:
            return []
        ids = [list(r) for r in rows]
        check = check or (lambda: None)
        p = common_prefix(ids)
        longer = [i for i, r in enumerate(ids) if len(r) > p]
        shared: _Prefix | None = None
        # each longer row's token p: read from the prefix's last position (none without one)
        first_lp: list[float | None] = [None] * len(longer)
        first_top: Alternatives | None = None
        with torch.inference_mode():
            if p:
                shared, lps, first_top = self._prefix(ids[0][:p], [ids[i][p] for i in longer])
                first_lp = list(lps)
            check()
            own = {i: ([first_lp[k]], [first_top]) for k, i in enumerate(longer)}
            layers = shared.layers if shared is not None else None
            for chunk in self._chunks([i for i in longer if len(ids[i]) > p + 1], ids, p):
                for i, (lps_i, tops_i) in self._tails(chunk, ids, p, layers).items():
                    own[i][0].extend(lps_i)
                    own[i][1].extend(tops_i)
                check()
        out = []
        for i, row in enumerate(ids):
            lp_row = list(shared.logprobs[: len(row)]) if shared else []
            top_row = list(shared.top[: len(row)]) if shared else []
            if i in own:
                lp_row += own[i][0]
                top_row += own[i][1]
            assert len(lp_row) == len(top_row) == len(row)
            out.append(TokenLogprobs(lp_row, [None if t is None else t[:top] for t in top_row]))
        return out

    # ------------------------------------------------------------------ the shared prefix
    def _prefix(
        self, tokens: list[int], next_tokens: list[int]
    ) -> tuple[_Prefix, list[float], Alternatives]:
        """Run `tokens` (from where a kept prefix stops matching) and keep the result; also the
        distribution after the last token, read at each of `next_tokens` (the rows' first own
        tokens), and its alternatives."""
        known, reused = self._lookup(tokens)
        engine = self.engine
        past = None
        if known is not None:
            past = engine._cache([(k[:, :, :reused], v[:, :, :reused]) for k, v in known.layers])
        ids = torch.tensor([tokens[reused:]], device=engine.device)
        states, cache = engine._hidden(input_ids=ids, past_key_values=past, use_cache=True)
        engine.tokens_computed += len(tokens) - reused
        states = states[0]
        # position j of this pass (absolute reused + j) predicts token reused + j + 1
        inner = len(tokens) - 1 - reused
        lps, tops = self._read(states[:inner], tokens[reused + 1 :])
        logprobs: list[float | None] = [None]
        top: list[Alternatives | None] = [None]
        if known is not None:
            logprobs, top = known.logprobs[: reused + 1], known.top[: reused + 1]
        result = _Prefix(tuple(tokens), engine._layers(cache), [*logprobs, *lps], [*top, *tops])
        self._store(result)
        first_lp: list[float] = []
        first_top: Alternatives = []
        if next_tokens:
            logp = engine._read(states[-1:])[0]
            first_lp = logp[torch.tensor(next_tokens, device=logp.device)].tolist()
            first_top = _top(logp[None])[0]
        return result, first_lp, first_top

    def _lookup(self, tokens: list[int]) -> tuple[_Prefix | None, int]:
        """The kept prefix sharing the most leading tokens with `tokens`, and how many of its
        positions can be reused: all but the last shared one, whose distribution must be read
        again at `tokens`' own next token."""
        best, shared = None, 0
        for known in self._kept.values():
            n = common_prefix([known.tokens, tokens])
            if n > shared:
                best, shared = known, n
        if best is None or shared < 2:
            return None, 0
        self._kept.move_to_end(best.tokens)
        return best, shared - 1

    def _store(self, prefix: _Prefix) -> None:
        """Keep `prefix` for later requests, unless it is short, or its cache does not hold one
        position per token (a sliding-window layer drops old ones): a slice of it would not be
        the keys and values of that many tokens."""
        if self.keep <= 0 or len(prefix.tokens) < MIN_KEEP:
            return
        if any(k.shape[-2] != len(prefix.tokens) for k, _ in prefix.layers):
            return
        self._kept[prefix.tokens] = prefix
        self._kept.move_to_end(prefix.tokens)
        while len(self._kept) > self.keep:
            self._kept.popitem(last=False)

    # ------------------------------------------------------------------ the rows' own tokens
    def _chunks(self, tails: list[int], rows: list[list[int]], p: int) -> list[list[int]]:
        """Rows longest first, cut so a batch holds at most `MAX_ROWS` rows and
        `MAX_BATCH_TOKENS` positions of keys and values."""
        ordered = sorted(tails, key=lambda i: -len(rows[i]))
        chunks: list[list[int]] = []
        for i in ordered:
            if chunks:
                last = chunks[-1]
                width = len(rows[last[0]]) - 1 - p  # its first (longest) row sets the width
                if len(last) < MAX_ROWS and (len(last) + 1) * (p + width) <= MAX_BATCH_TOKENS:
                    last.append(i)
                    continue
            chunks.append([i])
        return chunks

    def _tails(
        self, chunk: list[int], rows: list[list[int]], p: int, layers: Layers | None
    ) -> dict[int, tuple[list[float], list[Alternatives]]]:
        """Tokens p .. len-2 of each row in one batch (the last token predicts nothing), on top
        of the prefix's keys and values; position j predicts the row's token p + j + 1."""
        engine = self.engine
        tails = [rows[i][p:-1] for i in chunk]
        width = max(map(len, tails))
        ids = torch.tensor(
            [t + [engine._pad_id] * (width - len(t)) for t in tails], device=engine.device
        )
        kwargs: dict[str, Any] = {"input_ids": ids, "use_cache": layers is not None}
        if layers is not None:
            size = len(chunk)
            kwargs["past_key_values"] = engine._cache(
                [(k.expand(size, -1, -1, -1), v.expand(size, -1, -1, -1)) for k, v in layers]
            )
        states, _ = engine._hidden(**kwargs)
        engine.tokens_computed += sum(map(len, tails))
        at_row = torch.tensor([b for b, t in enumerate(tails) for _ in t], device=engine.device)
        at_col = torch.tensor([j for t in tails for j in range(len(t))], device=engine.device)
        targets = [tok for i in chunk for tok in rows[i][p + 1 :]]
        lps, tops = self._read(states[at_row, at_col], targets)
        out, at = {}, 0
        for i, t in zip(chunk, tails, strict=True):
            out[i] = (lps[at : at + len(t)], tops[at : at + len(t)])
            at += len(t)
        return out

    # ------------------------------------------------------------------ the head
    def _read(
        self, states: torch.Tensor, targets: Sequence[int]
    ) -> tuple[list[float], list[Alternatives]]:
        """At each state: the log-probability of its target token and the `TOP` alternatives,
        through the same head (and float64 softmax) `HFEngine.score` reads."""
        lps: list[float] = []
        tops: list[Alternatives] = []
        for at in range(0, len(targets), self._read_rows):
            logp = self.engine._read(states[at : at + self._read_rows])
            wanted = torch.tensor(targets[at : at + self._read_rows], device=logp.device)
            lps += logp.gather(1, wanted[:, None]).squeeze(1).tolist()
            tops += _top(logp)
        return lps, tops


def _top(logp: torch.Tensor) -> list[Alternatives]:
    values, indices = logp.topk(min(TOP, logp.shape[-1]), dim=-1)
    return [
        list(zip(i, v, strict=True)) for i, v in zip(indices.tolist(), values.tolist(), strict=True)
    ]
