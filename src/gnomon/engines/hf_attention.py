"""Attention over a prefix shared by every row of a batch, for gnomon's own decoding loop.

In few-shot generation every row of a batch starts with the same ~1000-token block of examples.
transformers' caches hold keys and values per row, so a shared prefix would be copied into every
row, concatenated again at every step, and re-read row by row. Here the prefix's keys and values
are kept once (batch 1) and every row's queries meet them in one matrix product per layer; only a
row's own tokens (the rest of its prompt and what it generated) are kept per row, in buffers
allocated once per batch and written in place.

It plugs into transformers as an attention function registered under `NAME`: during one of our
forward passes (`activate`) the model's config names it and the function takes the batch's keys
and values from a context variable; the model itself then builds no mask and keeps no cache.
Whether a model's attention really goes through it, and computes what the model computes, is
checked once per model against the model's own forward pass (`hf_decode.Decoder.supported`);
what it does not do (sliding windows, soft-capped or sink attention) raises `Unsupported`.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from transformers import AttentionInterface

from gnomon.engines.prefix_attention import attend

NAME = "gnomon_shared_prefix"
_ACTIVE: contextvars.ContextVar[RowCache | None] = contextvars.ContextVar("gnomon_kv", default=None)
# per-call options this attention does not implement; any of them set means another computation
_UNSUPPORTED = ("sliding_window", "softcap", "s_aux", "sinks", "position_bias")
# attention scores (float32) one slice of a long pass may hold: 2**25 is 128 MiB
SCORES_AT_ONCE = 2**25


class Unsupported(Exception):
    """The model asks its attention for something the shared-prefix attention does not do."""


class RowCache:
    """Keys and values of one decoding batch: the shared prefix's once, each row's own in
    buffers of `capacity` columns. Every row writes column `filled` at each step, so rows of
    different prompt lengths stay one batch: the columns a shorter row does not use (padding
    between the prefix and its suffix) are masked out, and its position ids carry on from its
    real length, so what it computes is what it would compute alone."""

    def __init__(
        self,
        rows: int,
        capacity: int,
        prefix: list[tuple[torch.Tensor, torch.Tensor]] | None,
        device: torch.device,
    ) -> None:
        self.rows, self.capacity = rows, capacity
        self.prefix = prefix
        self.keys: dict[int, torch.Tensor] = {}
        self.values: dict[int, torch.Tensor] = {}
        self.real = torch.zeros(rows, capacity, dtype=torch.bool, device=device)
        self.filled = 0
        self._bias: torch.Tensor | None = None
        self._width = 0
        self.calls = 0

    def begin(self, real: torch.Tensor) -> None:
        """Before a forward pass of `real.shape[1]` new columns (`real`: which are tokens)."""
        width = real.shape[1]
        if self.filled + width > self.capacity:
            raise ValueError(f"{self.filled + width} columns for a cache of {self.capacity}")
        self.real[:, self.filled : self.filled + width] = real
        seen = self.filled + width
        visible = self.real[:, None, :seen]  # (rows, 1, seen)
        if width > 1:  # new column j sees the columns up to its own
            causal = torch.ones(width, seen, dtype=torch.bool, device=real.device)
            visible = visible & causal.tril(self.filled)
        bias = torch.zeros(visible.shape, dtype=torch.float32, device=real.device)
        self._bias = bias.masked_fill_(~visible, float("-inf"))[:, None, None]
        self._width = width
        self.calls = 0

    def end(self, layers: int) -> None:
        """After the forward pass: every attention layer must have gone through `attend`."""
        if self.calls != layers:
            raise Unsupported(f"{self.calls} attention calls for {layers} layers")
        self.filled += self._width
        self._bias = None

    def select(self, rows: torch.Tensor) -> None:
        """Keep only these rows (the others finished): copies the row buffers, not the prefix."""
        self.keys = {i: k.index_select(0, rows) for i, k in self.keys.items()}
        self.values = {i: v.index_select(0, rows) for i, v in self.values.items()}
        self.real = self.real.index_select(0, rows)
        self.rows = int(rows.numel())

    def layer_prefix(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """This layer's keys and values over the whole cache, for a batch of one row: what a
        later batch takes as its shared prefix."""
        return self.keys[layer][:, :, : self.filled], self.values[layer][:, :, : self.filled]

    def attend(
        self,
        layer: int,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        scaling: float | None,
    ) -> torch.Tensor:
        """Softmax attention of the new columns' queries over the prefix and the rows' visible
        columns, as one softmax (`prefix_attention.attend`: the two parts merge through their
        log-sum-exps). Returns (rows, new columns, heads, head_dim), as transformers' attention
        functions do."""
        if self._bias is None:
            raise Unsupported("attention called outside a decoding step")
        self.calls += 1
        rows, heads, width, dim = query.shape
        kv_heads = key.shape[1]
        start, seen = self.filled, self.filled + width
        if layer not in self.keys:
            shape = (rows, kv_heads, self.capacity, dim)
            self.keys[layer] = key.new_empty(shape)
            self.values[layer] = value.new_empty(shape)
        self.keys[layer][:, :, start:seen] = key
        self.values[layer][:, :, start:seen] = value
        scale = scaling if scaling is not None else dim**-0.5
        prefix = self.prefix[layer] if self.prefix is not None else None
        # long passes (a batch's prompts) go in slices of query columns, so the scores held at
        # once stay near SCORES_AT_ONCE whatever the batch; column j sees columns up to its own
        room = rows * heads * (seen + (prefix[0].shape[-2] if prefix is not None else 0))
        step = max(1, SCORES_AT_ONCE // room)
        parts = []
        for lo in range(0, width, step):
            hi = min(width, lo + step)
            parts.append(
                self._part(
                    query[:, :, lo:hi],
                    self.keys[layer][:, :, : start + hi],
                    self.values[layer][:, :, : start + hi],
                    self._bias[..., lo:hi, : start + hi],
                    prefix,
                    scale,
                )
            )
        out = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        return out.to(query.dtype).contiguous()

    @staticmethod
    def _part(
        query: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        bias: torch.Tensor,  # (rows, 1, 1, width, seen)
        prefix: tuple[torch.Tensor, torch.Tensor] | None,
        scale: float,
    ) -> torch.Tensor:
        return attend(query, keys, values, bias[:, :, 0], prefix, scale)


def _attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    cache = _ACTIVE.get()
    if cache is None:
        raise Unsupported("the shared-prefix attention ran outside gnomon's decoding loop")
    asked = [name for name in _UNSUPPORTED if kwargs.get(name) is not None]
    if asked or dropout or not getattr(module, "is_causal", True):
        raise Unsupported(f"attention with {asked or 'dropout or no causal mask'}")
    layer = getattr(module, "layer_idx", None)
    if not isinstance(layer, int):
        raise Unsupported("an attention module without a layer index")
    return cache.attend(layer, query, key, value, scaling), None


AttentionInterface.register(NAME, _attention)


@contextmanager
def activate(model: Any, cache: RowCache) -> Iterator[None]:
    """For one forward pass: the model's attention is ours, over `cache`. The config is shared
    by the model's modules, so setting it once routes every layer; it is put back after."""
    config = model.config
    before = config._attn_implementation
    token = _ACTIVE.set(cache)
    config._attn_implementation = NAME
    try:
        yield
    finally:
        config._attn_implementation = before
        _ACTIVE.reset(token)
