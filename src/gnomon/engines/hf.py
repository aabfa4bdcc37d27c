"""The Hugging Face transformers engine (CPU and CUDA).

Scoring follows lm-evaluation-harness's `hf` backend token for token (the same context/continuation
split, the same left truncation), but computes far less:
- each distinct context is run once, and its continuations' first tokens read from one row of
  logits; longer continuations run on top of the context's KV cache;
- a prefix shared by many contexts (the few-shot block) is run once and its KV cache reused;
- the output head is applied only at the positions that are read, never over the whole sequence.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch

from gnomon import text
from gnomon.engines.base import (
    Engine,
    ScoreRequest,
    ScoreResult,
)
from gnomon.engines.hf_generate import HFGeneration
from gnomon.engines.hf_rolling import HFRolling
from gnomon.engines.hf_tokens import PairEncoder
from gnomon.engines.planning import (
    ContextWork,
    batches,
    group_by_context,
    prefix_groups,
    token_chunks,
)
from gnomon.engines.prefix_attention import KEYWORD as SHARED
from gnomon.engines.prefix_attention import install as install_shared_prefix
from gnomon.engines.threads import ThreadPolicy
from gnomon.errors import UserError
from gnomon.prompts import ChatFormat
from gnomon.text import shown

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
DEFAULT_MAX_LENGTH = 2048
_READ_ROWS = 512  # positions read at once: float64 log-softmax rows over the whole vocabulary
_TOKENIZER_INFINITY = 1_000_000_000_000_000_019_884_624_838_656


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {device}: CUDA is not available on this machine")
    try:
        return torch.device(device)
    except RuntimeError:
        raise UserError(f"--device {device!r} is not a device torch knows") from None


def device_is_cpu(device: str) -> bool:
    return resolve_device(device).type == "cpu"


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if dtype not in DTYPES:
        raise UserError(f"--dtype {dtype!r}: choose auto, {', '.join(DTYPES)}")
    return DTYPES[dtype]


def pretrained_source(name_or_path: str) -> tuple[str, dict[str, str]]:
    """`from_pretrained` arguments: a GGUF file loads as its folder plus `gguf_file`."""
    path = Path(name_or_path)
    if path.is_file():
        return str(path.parent), {"gguf_file": path.name}
    return name_or_path, {}


@dataclass(frozen=True)
class _Tail:
    """A continuation longer than one token, waiting for its second pass."""

    row: int  # its context's row in the context batch
    index: int  # request index
    cont: list[int]
    logprob0: float  # log-probability of the first token, read from the context pass
    greedy0: bool
    truncated: bool


class HFEngine(HFRolling, HFGeneration, Engine):
    def __init__(
        self,
        name_or_path: str,
        *,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 8,
        revision: str | None = None,
        max_length: int | None = None,
        min_shared_prefix: int = 32,
        threads: int | None = None,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        # the first look at the machine's load spans the model's loading
        self.threads = ThreadPolicy(threads) if device_is_cpu(device) else None
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.batch_size = max(1, batch_size)
        self.min_shared_prefix = min_shared_prefix
        self.tokens_computed = 0
        self.name = name_or_path
        try:
            source, extra = pretrained_source(name_or_path)
            self.tokenizer = AutoTokenizer.from_pretrained(source, revision=revision, **extra)
            self.model = AutoModelForCausalLM.from_pretrained(
                source, revision=revision, dtype=self.dtype, **extra
            )
        except Exception as exc:  # loaders raise many types (OSError, safetensors, json, ...)
            text = str(exc).strip()
            first = text.splitlines()[0] if text else ""
            kind = type(exc).__name__
            if kind.islower():  # struct.error, zlib.error: the bare name reads as a prefix
                kind = f"{type(exc).__module__}.{kind}"
            raise UserError(f"cannot load model {name_or_path!r}: {kind}: {first[:300]}") from None
        # transformers types `to` through functools.wraps(nn.Module.to), which drops `self`
        self.model.to(self.device).eval()  # type: ignore[arg-type]
        self.max_length = max_length or self._resolve_max_length()
        self._base = getattr(self.model, self.model.base_model_prefix)
        self._head = self.model.get_output_embeddings()
        self._pad_id = self.tokenizer.pad_token_id or self.tokenizer.eos_token_id or 0
        if self.threads is not None:  # before the first forward pass: small passes on
            self.threads.tick()  # contended threads are where the time goes
        self._fast = self._check_fast_path()
        self._shared = install_shared_prefix(self.model) and self._check_shared_prefix()
        self._pairs = PairEncoder(self.tokenizer, shown)
        self.call_cost = self._measure_call_cost()

    # ----------------------------------------------------------------- tokenisation
    def _resolve_max_length(self) -> int:
        """lm-evaluation-harness's order: config fields, then the tokenizer, then 2048."""
        config = self.model.config
        text_config = getattr(config, "text_config", None)
        for cfg in (text_config, config):
            for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
                value = getattr(cfg, attr, None) if cfg is not None else None
                if isinstance(value, int) and value > 0:
                    return value
        limit = getattr(self.tokenizer, "model_max_length", None)
        if isinstance(limit, int) and 0 < limit < _TOKENIZER_INFINITY:
            return limit
        return DEFAULT_MAX_LENGTH

    @property
    def pad_id(self) -> int:
        """The id used to pad batches (pad, else EOS, else 0); padded positions are never read."""
        return self._pad_id

    @property
    def prefix_token_id(self) -> int:
        """Conditioning token for an empty context: BOS if the tokenizer has one, else EOS."""
        tok = self.tokenizer
        return tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id

    def encode(self, text: str) -> list[int]:
        """The tokenizer's own default special tokens, as lm-evaluation-harness uses them. A lone
        surrogate (kept exactly in the store) reaches the tokenizer as U+FFFD: it takes only
        valid Unicode."""
        text = shown(text)
        bos = self.tokenizer.bos_token
        if bos and text.startswith(bos):
            return self.tokenizer.encode(text, add_special_tokens=False)
        return self.tokenizer.encode(text)

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """Trailing context whitespace moves into the continuation; the continuation's tokens are
        those of encode(context + continuation) after the first len(encode(context)). An empty
        (or all-whitespace) context conditions on the BOS token, else EOS."""
        return self._encode_requests([ScoreRequest(context, continuation)])[0]

    def _encode_empty_context(self, continuation: str) -> tuple[list[int], list[int]]:
        cont = self.tokenizer.encode(shown(continuation), add_special_tokens=False)
        if cont and cont[0] == self.prefix_token_id:
            return cont[:1], cont[1:]
        return [self.prefix_token_id], cont

    # ----------------------------------------------------------------- forward helpers
    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Head (and any final scaling the architecture defines) on the rows that are read."""
        logits = self._head(hidden)
        config = self.model.config
        scale = getattr(config, "logit_scale", None)
        if isinstance(scale, int | float) and scale != 1:
            logits = logits * scale
        cap = getattr(config, "final_logit_softcapping", None)
        if cap:
            logits = torch.tanh(logits / cap) * cap
        return logits.float()

    def _check_fast_path(self) -> bool:
        """Trust the base-model-plus-head path only if it reproduces the model's own logits."""
        ids = torch.tensor([[self.prefix_token_id, 1, 2, 3]], device=self.device)
        with torch.inference_mode():
            full = self.model(input_ids=ids).logits[0, -1].float()
            hidden = self._base(input_ids=ids).last_hidden_state[0, -1:]
            mine = self._logits(hidden)[0]
        tolerance = 1e-3 if self.dtype == torch.float32 else 5e-2
        return bool(torch.allclose(full, mine, atol=tolerance, rtol=tolerance))

    def _measure_call_cost(self) -> float:
        """A forward call's fixed cost in tokens' worth of compute, from the best of a few
        1-token and 9-token passes. For a tiny model it is mostly Python and dispatch; for a
        large one on CPU, mostly reading every weight once, which a few more rows barely add to
        (about 8 tokens' worth for a 1,024-wide 24-layer model here). A model whose 1-token pass
        takes over 10 ms is timed once at each width: that is its size."""
        ids = torch.full((1, 9), self.prefix_token_id, device=self.device)
        best = [float("inf"), float("inf")]
        with torch.inference_mode():
            for _ in range(3):
                for i, width in enumerate((1, 9)):
                    start = time.perf_counter()
                    self._hidden(input_ids=ids[:, :width])
                    best[i] = min(best[i], time.perf_counter() - start)
                if best[0] > 0.01:
                    break
        per_token = max((best[1] - best[0]) / 8, 1e-9)
        return min(max(best[0] - per_token, 0.0) / per_token, 4096.0)

    def _check_shared_prefix(self) -> bool:
        """Trust the shared-prefix attention only if two rows run over a shared prefix give the
        logits of the same tokens run whole (the tails over a cache are covered by the tests)."""
        vocab = int(getattr(self.model.config, "vocab_size", 0) or 0)
        if vocab < 8:
            return False
        gen = torch.Generator().manual_seed(0)
        whole = torch.randint(3, vocab, (2, 16), generator=gen).to(self.device)
        whole[1, :10] = whole[0, :10]
        with torch.inference_mode():
            try:
                want = self.model(input_ids=whole).logits.float()
                prefix = self._layers(self.model(input_ids=whole[:1, :10], use_cache=True)
                                      .past_key_values)  # fmt: skip
                suffix = whole[:, 10:]
                out = self.model(
                    input_ids=suffix,
                    position_ids=torch.arange(10, 16, device=self.device).expand(2, -1),
                    past_key_values=self._cache([]),
                    use_cache=True,
                    **{SHARED: prefix},
                )
                got = out.logits.float()
            except Exception:  # an architecture whose forward does not carry the keyword
                return False
        tolerance = 1e-3 if self.dtype == torch.float32 else 5e-2
        return bool(torch.allclose(want[:, 10:], got, atol=tolerance, rtol=tolerance))

    def _hidden(self, **kwargs: Any) -> tuple[torch.Tensor, Any]:
        """Every forward pass (scoring, decoding, serving) goes through here, so here the CPU
        threads are re-chosen when other work on the machine has changed."""
        if self.threads is not None:
            self.threads.tick()
        if self._fast:
            out = self._base(**kwargs)
            return out.last_hidden_state, out.past_key_values
        out = self.model(**kwargs)
        return out.logits, out.past_key_values

    def _read(self, states: torch.Tensor) -> torch.Tensor:
        """Log-probabilities (float64) at the given rows of hidden states (or full logits)."""
        logits = self._logits(states) if self._fast else states.float()
        return torch.log_softmax(logits.double(), dim=-1)  # only read rows: exact is cheap

    def _cache(self, layers: list[tuple[torch.Tensor, torch.Tensor]]) -> Any:
        from transformers import DynamicCache

        return DynamicCache(ddp_cache_data=layers, config=self.model.config)

    @staticmethod
    def _layers(cache: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(layer.keys, layer.values) for layer in cache.layers]

    # ----------------------------------------------------------------- score
    def score(self, requests: Sequence[ScoreRequest]) -> Iterator[list[tuple[int, ScoreResult]]]:
        yield from self._score_pairs(self._encode_requests(requests))

    def _score_pairs(
        self, pairs: list[tuple[list[int], list[int]]]
    ) -> Iterator[list[tuple[int, ScoreResult]]]:
        works = group_by_context(pairs, self.max_length)
        with torch.inference_mode():
            for group in prefix_groups(works, self.min_shared_prefix, self.call_cost):
                prefix = None
                if group.prefix_len:
                    ids = torch.tensor([group.contexts[0].tokens[: group.prefix_len]])
                    _, cache = self._hidden(input_ids=ids.to(self.device), use_cache=True)
                    prefix = self._layers(cache)
                    self.tokens_computed += group.prefix_len
                for batch in batches(group.contexts, self.batch_size):
                    yield self._score_batch(batch, group.prefix_len, prefix)

    def _encode_requests(
        self, requests: Sequence[ScoreRequest]
    ) -> list[tuple[list[int], list[int]]]:
        split = []
        for req in requests:
            context, continuation = req.context, req.continuation
            n_spaces = len(context) - len(context.rstrip())
            if context and n_spaces:
                context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
            split.append((context, continuation))
        bos = self.tokenizer.bos_token
        plain = (p for p in split if p[0] and not (bos and p[0].startswith(bos)))
        paired = list(dict.fromkeys(plain))
        encoded = dict(zip(paired, self._pairs.encode_pairs(paired), strict=True))
        pairs = []
        for (context, continuation), req in zip(split, requests, strict=True):
            if (context, continuation) in encoded:
                ctx, cont = encoded[context, continuation]
            elif context:  # begins with the BOS string: no special tokens added
                ctx = self.encode(context)
                cont = self.encode(context + continuation)[len(ctx) :]
            else:
                ctx, cont = self._encode_empty_context(continuation)
            if not cont:
                raise UserError(f"empty continuation after tokenisation: {req.continuation!r:.60}")
            if len(cont) > self.max_length:
                raise UserError(
                    f"a continuation of {len(cont)} tokens exceeds the model's "
                    f"{self.max_length}-token window"
                )
            pairs.append((ctx, cont))
        return pairs

    def _prefix_kwargs(
        self, size: int, prefix: list[tuple[torch.Tensor, torch.Tensor]] | None
    ) -> dict[str, Any]:
        """How a batch of `size` rows sees the shared prefix: one copy through the shared-prefix
        attention where the model passed its check, else a cache expanded over the rows."""
        if prefix is None:
            return {}
        if self._shared:
            return {SHARED: prefix, "past_key_values": self._cache([])}
        expanded = [(k.expand(size, -1, -1, -1), v.expand(size, -1, -1, -1)) for k, v in prefix]
        return {"past_key_values": self._cache(expanded)}

    def _score_batch(
        self,
        works: list[ContextWork],
        prefix_len: int,
        prefix: list[tuple[torch.Tensor, torch.Tensor]] | None,
    ) -> list[tuple[int, ScoreResult]]:
        suffixes = [list(w.tokens[prefix_len:]) for w in works]
        width = max(map(len, suffixes))
        ids = torch.tensor([s + [self._pad_id] * (width - len(s)) for s in suffixes])
        size = len(works)
        kwargs: dict[str, Any] = {"input_ids": ids.to(self.device)}
        needs_cache = any(len(c) > 1 for w in works for _, c, _ in w.conts)
        kwargs.update(self._prefix_kwargs(size, prefix))
        if prefix is not None and self._shared:
            positions = torch.arange(prefix_len, prefix_len + width, device=self.device)
            kwargs["position_ids"] = positions.unsqueeze(0).expand(size, -1)
        kwargs["use_cache"] = needs_cache or "past_key_values" in kwargs
        states, cache = self._hidden(**kwargs)
        self.tokens_computed += sum(map(len, suffixes))
        last = torch.tensor([len(s) - 1 for s in suffixes], device=self.device)
        first = self._read(states[torch.arange(size, device=self.device), last])  # (B, V)
        greedy_first = first.argmax(-1).tolist()

        results: list[tuple[int, ScoreResult]] = []
        tails: list[_Tail] = []
        for row, work in enumerate(works):
            for req_index, cont, truncated in work.conts:
                lp0 = float(first[row, cont[0]])
                g0 = greedy_first[row] == cont[0]
                if len(cont) == 1:
                    results.append((req_index, ScoreResult(lp0, g0, truncated)))
                else:
                    tails.append(_Tail(row, req_index, cont, lp0, g0, truncated))
        if tails:
            layers = self._layers(cache)
            # the cache holds the prefix too unless the prefix is shared apart from it
            cached = 0 if self._shared else prefix_len
            ends = [cached + len(s) for s in suffixes]
            sizes = [len(t.cont) - 1 for t in tails]
            # up to four batches' worth of rows, and (for the long continuations of rolling
            # windows) no more tokens than `batch_size` full windows, as lm-eval runs at once
            budget = self.batch_size * self.max_length
            for chunk in token_chunks(tails, sizes, self.batch_size * 4, budget):
                results.extend(self._score_tails(chunk, ends, layers, prefix_len - cached, prefix))
        return results

    def _score_tails(
        self,
        chunk: list[_Tail],
        ends: list[int],
        layers: list[tuple[torch.Tensor, torch.Tensor]],
        offset: int,
        prefix: list[tuple[torch.Tensor, torch.Tensor]] | None,
    ) -> list[tuple[int, ScoreResult]]:
        """Continuation tokens after the first, on top of each context's cached keys/values.

        Rows of the context batch were right-padded, so each row's cache has a padded gap between
        its context end and the continuation; the attention mask hides it and the position ids
        carry on from the real context end (`offset` more where the shared prefix is kept apart
        from the cache).
        """
        rows = torch.tensor([t.row for t in chunk], device=self.device)
        cache = self._cache([(k.index_select(0, rows), v.index_select(0, rows)) for k, v in layers])
        past = layers[0][0].shape[-2]
        width = max(len(t.cont) - 1 for t in chunk)
        ids, mask, pos = [], [], []
        for t in chunk:
            end = ends[t.row]
            tail = t.cont[:-1]
            ids.append(tail + [self._pad_id] * (width - len(tail)))
            mask.append([1] * end + [0] * (past - end) + [1] * width)
            pos.append(list(range(offset + end, offset + end + width)))
        extra: dict[str, Any] = {SHARED: prefix} if offset and prefix is not None else {}
        states, _ = self._hidden(
            input_ids=torch.tensor(ids, device=self.device),
            attention_mask=torch.tensor(mask, device=self.device),
            position_ids=torch.tensor(pos, device=self.device),
            past_key_values=cache,
            use_cache=True,
            **extra,
        )
        n_read = [len(t.cont) - 1 for t in chunk]
        self.tokens_computed += sum(n_read)
        # one head call over every position that is read, none over padding
        row_ids = torch.tensor(
            [i for i, n in enumerate(n_read) for _ in range(n)], device=self.device
        )
        col_ids = torch.tensor([j for n in n_read for j in range(n)], device=self.device)
        targets = torch.tensor([tok for t in chunk for tok in t.cont[1:]], device=self.device)
        token_lp: list[float] = []
        token_greedy: list[bool] = []
        for at in range(0, len(targets), _READ_ROWS):  # a long text's rows, a slice at a time
            cut = slice(at, at + _READ_ROWS)
            logp = self._read(states[row_ids[cut], col_ids[cut]])
            token_lp += logp.gather(1, targets[cut, None]).squeeze(1).tolist()
            token_greedy += (logp.argmax(-1) == targets[cut]).tolist()
        out, at = [], 0
        for t, n in zip(chunk, n_read, strict=True):
            lp = t.logprob0 + sum(token_lp[at : at + n])
            greedy = t.greedy0 and all(token_greedy[at : at + n])
            out.append((t.index, ScoreResult(lp, greedy, t.truncated)))
            at += n
        return out

    def describe(self) -> dict[str, str]:
        return {
            "engine": "hf",
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
            "max_length": str(self.max_length),
            "fast_head": str(self._fast),
            "shared_prefix_attention": str(self._shared),
            "call_cost_tokens": f"{self.call_cost:.0f}",
            "threads": self.threads.describe() if self.threads else "",
            "path": str(Path(self.name)) if Path(self.name).exists() else self.name,
        }


def chat_format(name_or_path: str, revision: str | None, system: str | None) -> ChatFormat:
    """The model's own chat template, read from its tokenizer without loading the weights."""
    from transformers import AutoTokenizer

    try:
        source, extra = pretrained_source(name_or_path)
        tokenizer = AutoTokenizer.from_pretrained(source, revision=revision, **extra)
    except Exception as exc:  # loaders raise many types
        raise UserError(f"cannot load the tokenizer of {name_or_path!r}: {exc}") from None
    template = getattr(tokenizer, "chat_template", None)
    if not template:
        raise UserError(f"{name_or_path}: the tokenizer has no chat template; drop --chat")

    def apply(messages: list[dict[str, str]]) -> str:
        # tokenize=False returns the rendered text; the annotation covers every mode's return
        return cast(
            str,
            tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True),
        )

    digest = hashlib.sha256(text.encode(json.dumps([template, system]))).hexdigest()[:16]
    return ChatFormat(apply, system, digest)
