"""Attention over a shared prefix that is stored once, not once per row.

Scoring a few-shot benchmark runs many short suffixes after one long shared prefix. Handing the
model a KV cache of the prefix expanded over the batch makes transformers concatenate it with each
row's new keys (a copy of the prefix per row and per layer) and, for grouped-query models on CPU,
repeat every key head too: measured on a 256-wide model, over a third of a short-suffix batch's
time was those copies.

Here the prefix's keys and values stay one batch-1 tensor per layer and reach the attention as a
keyword argument (`shared_prefix`), which transformers passes from the model's forward down to the
attention function. The suffix's own keys live in an ordinary cache. Attention is computed in two
parts, the prefix (every suffix row's queries folded into one matrix product against the single
prefix, grouped heads folded in the same way) and the suffix (causal, with whatever mask
transformers built), and the two are merged exactly through their log-sum-exps. Without the
keyword, the original attention function runs unchanged, so generation and every other caller are
untouched. `HFEngine` checks at load that this path reproduces the model's own logits before it
uses it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

KEYWORD = "shared_prefix"
_WRAPPED: dict[str, Callable[..., Any]] = {}


def _part(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, bias: torch.Tensor | None,
    scaling: float,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Softmax attention output (B, H, L, D) and log-sum-exp (B, H, L, 1) of one part: on CPU
    through torch's fused flash kernel, which returns both; elsewhere in plain operations."""
    if query.device.type == "cpu":
        out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            query, key, value, 0.0, False, attn_mask=bias, scale=scaling
        )
        return out, lse.unsqueeze(-1)
    scores = torch.matmul(query, key.transpose(-1, -2)) * scaling
    if bias is not None:
        scores = scores + bias
    lse = torch.logsumexp(scores, dim=-1, keepdim=True)
    return torch.matmul(torch.exp(scores - lse), value), lse


def _bias(mask: torch.Tensor | None, q_len: int, kv_len: int, like: torch.Tensor) -> torch.Tensor:
    # float32 bias whatever the model's dtype: -inf must stay -inf
    """The additive mask of the suffix part: transformers' own (boolean or additive), else causal
    aligned to the end (a query sees every key up to its own position)."""
    if mask is not None:
        mask = mask[..., -q_len:, -kv_len:]
        if mask.dtype == torch.bool:
            bias = torch.zeros(mask.shape, dtype=like.dtype, device=like.device)
            return bias.masked_fill(~mask, float("-inf"))
        return mask.to(like.dtype)
    rows = torch.arange(q_len, device=like.device).unsqueeze(1) + (kv_len - q_len)
    allowed = torch.arange(kv_len, device=like.device).unsqueeze(0) <= rows
    bias = torch.zeros(allowed.shape, dtype=like.dtype, device=like.device)
    return bias.masked_fill(~allowed, float("-inf"))[None, None]


def attend(
    query: torch.Tensor,  # (B, H, S, D)
    key: torch.Tensor,  # (B, Hkv, K, D): each row's own keys (cached ones included)
    value: torch.Tensor,
    bias: torch.Tensor,  # additive, broadcastable to (B, 1, S, K)
    prefix: tuple[torch.Tensor, torch.Tensor] | None,  # (1, Hkv, P, D) each, seen by every query
    scaling: float,
) -> torch.Tensor:
    """Softmax attention of the queries over the shared prefix and their own rows' keys, as one
    softmax: the two parts' log-sum-exps merge exactly. (B, S, H, D), the layout transformers'
    attention functions return. A query that sees no key at all gets zeros, not NaN."""
    batch, heads, q_len, dim = query.shape
    kv_heads, kv_len = key.shape[1], key.shape[2]
    groups = heads // kv_heads
    # own rows: a group's heads fold into the query axis against their shared key head
    q_s = query.reshape(batch, kv_heads, groups * q_len, dim)
    bias = bias.expand(*bias.shape[:-2], q_len, kv_len).repeat(1, 1, groups, 1)
    out_s, lse_s = _part(q_s, key, value, bias.to(query.dtype), scaling)
    out_s = out_s.reshape(batch, kv_heads, groups, q_len, dim).float()
    lse_s = lse_s.reshape(batch, kv_heads, groups, q_len, 1).float()
    blind = ~torch.isfinite(lse_s)
    if bool(blind.any()):
        out_s = out_s.masked_fill(blind, 0.0)
        lse_s = lse_s.masked_fill(blind, float("-inf"))
    if prefix is None:
        out = out_s
    else:
        # prefix: every row and every head of a group attends to the same keys, so rows and
        # groups fold into the query axis of one (Hkv, G*B*S, D) x (Hkv, P, D) attention
        folded = query.view(batch, kv_heads, groups, q_len, dim).permute(1, 2, 0, 3, 4)
        folded = folded.reshape(1, kv_heads, groups * batch * q_len, dim)
        out_p, lse_p = _part(folded, prefix[0], prefix[1], None, scaling)
        out_p = out_p.reshape(kv_heads, groups, batch, q_len, dim).permute(2, 0, 1, 3, 4).float()
        lse_p = lse_p.reshape(kv_heads, groups, batch, q_len, 1).permute(2, 0, 1, 3, 4).float()
        lse = torch.logaddexp(lse_p, lse_s)
        out = out_p * torch.exp(lse_p - lse) + out_s * torch.exp(lse_s - lse)
    return out.reshape(batch, heads, q_len, dim).transpose(1, 2).contiguous().to(query.dtype)


def _wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    def attention(
        module: Any,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        attention_mask: torch.Tensor | None,
        *args: Any,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, None]:
        layers = kwargs.pop(KEYWORD, None)
        if layers is None:
            return original(module, query, key, value, attention_mask, *args, **kwargs)
        scaling = kwargs.get("scaling")
        if scaling is None:
            scaling = query.shape[-1] ** -0.5
        bias = _bias(attention_mask, query.shape[2], key.shape[2], query)
        return attend(query, key, value, bias, layers[module.layer_idx], scaling), None

    attention.__wrapped__ = original  # type: ignore[attr-defined]
    return attention


def install(model: Any) -> bool:
    """Wrap transformers' `sdpa` attention function (once per process) if `model` uses it and
    its attention is plain softmax attention over every earlier position; False otherwise (the
    engine then keeps the expanded cache)."""
    config = model.config
    if getattr(config, "_attn_implementation", None) != "sdpa":
        return False
    if getattr(config, "sliding_window", None) or getattr(config, "attention_chunk_size", None):
        return False  # the prefix part would ignore the window
    if any(t != "full_attention" for t in getattr(config, "layer_types", None) or ()):
        return False
    if "sdpa" in _WRAPPED:
        return True
    from transformers.modeling_utils import AttentionInterface

    original = AttentionInterface._global_mapping["sdpa"]
    _WRAPPED["sdpa"] = original
    AttentionInterface.register("sdpa", _wrapper(original))
    return True
