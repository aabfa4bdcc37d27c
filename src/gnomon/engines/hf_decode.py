"""gnomon's own decoding loop for the transformers engine: few-shot generation without
recomputing the few-shot block for every question.

- Prompts sharing a long token prefix (the same few-shot examples) form a group
  (`planning.prefix_groups`); the prefix runs once, batch 1, and its keys and values serve every
  batch of the group, never copied per row (`hf_attention`).
- A batch lays each row out as [prefix][padding][rest of its prompt][generated], every row
  writing the same cache column at each step, so rows of different lengths decode as one batch;
  the padding is masked and position ids run on from each row's real length.
- Batches are sized by memory, not a row count (`rows_per_batch`).
- A row leaves its batch the step it ends (EOS, a stop string, its max_tokens), with its cache
  rows and its random stream, so finished rows cost nothing.

What a row generates is what `model.generate` generates for its prompt alone: logits of the last
position in float32, argmax (or the row's seeded draw, `sampling`), stopping at the model's EOS
ids and once a stop string appears in the generated text (`stop_text`: lm-evaluation-harness's
rule, not transformers' `StopStringCriteria`, which also reads the prompt's tail). A model or
generation config this loop does not reproduce goes through `model.generate`
(`Decoder.supported`).
"""

from __future__ import annotations

import copy
import inspect
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from gnomon.engines.hf_attention import RowCache, activate
from gnomon.engines.planning import ContextWork, prefix_groups

if TYPE_CHECKING:
    from gnomon.engines.hf_generate import HFGeneration

# a batch never holds more than this many times `batch_size` rows, however short they are
MAX_ROWS_PER_SLOT = 8
KV_BUDGET = 512 * 2**20  # bytes of per-row cache a decoding batch may fill
# generation-config fields that cannot change a greedy or seeded pass: token ids, lengths (set
# per call), sampling knobs (`model.generate` is called with do_sample=False), output switches
_INERT = frozenset(
    ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id",
     "transformers_version", "_from_model_config", "max_length", "max_new_tokens", "do_sample",
     "temperature", "top_k", "top_p", "min_p", "top_h", "typical_p", "epsilon_cutoff",
     "eta_cutoff", "use_cache", "cache_implementation", "cache_config", "max_cache_len",
     "output_attentions", "output_hidden_states", "output_scores", "output_logits",
     "return_dict_in_generate", "compile_config", "disable_compile", "length_penalty",
     "early_stopping", "renormalize_logits")
)  # fmt: skip
# fields that change nothing at these values
_NEUTRAL: dict[str, object] = {
    "repetition_penalty": 1.0, "encoder_repetition_penalty": 1.0, "num_beams": 1,
    "num_return_sequences": 1, "no_repeat_ngram_size": 0, "encoder_no_repeat_ngram_size": 0,
    "min_length": 0, "min_new_tokens": 0, "guidance_scale": 1.0, "remove_invalid_values": False,
    "num_beam_groups": 1, "diversity_penalty": 0.0,
}  # fmt: skip


@dataclass(frozen=True)
class Row:
    """One prompt to continue, and when to stop."""

    prompt: list[int]
    max_tokens: int
    stops: tuple[str, ...] = ()  # met in the generated text (`stop_text`)
    temperature: float = 0.0
    seed: int | None = 0  # None: a fresh random seed (sampling only)
    thinking: bool = False  # a conversation: a stop string inside `<think>` does not end it
    opened: bool = False  # its prompt (a chat template) opened the `<think>` block


@dataclass
class Group:
    """Rows whose first `prefix_len` tokens are the same, in batches (lists of row indices)."""

    prefix_len: int
    batches: list[list[int]] = field(default_factory=list)


def rows_per_batch(
    batch_size: int, prefix_len: int, width: int, new_tokens: int, token_bytes: int = 0
) -> int:
    """How many rows of `width` prompt tokens past a shared prefix, each generating up to
    `new_tokens`, make one batch: as many as keep the batch's cache (the prefix once, then
    `width + new_tokens` columns per row) within what `batch_size` whole prompts would hold,
    `batch_size * (prefix_len + width + new_tokens)`, and at most MAX_ROWS_PER_SLOT times
    `batch_size`. Without a shared prefix that is `batch_size` rows; under an 8-shot block it is
    several times more, and the more rows a step carries, the less each one costs.

    Given `token_bytes` (one token's keys and values over all layers), rows also fill KV_BUDGET
    bytes of cache if that allows more (still at most the cap), shared prefix or not: a decoding
    step of a small model costs about the same for 8 rows as for 64, so rows are what make it
    cheap, and memory is what bounds them."""
    per_row = max(1, width + new_tokens)
    rows = batch_size + (batch_size - 1) * prefix_len // per_row
    if token_bytes > 0:
        rows = max(rows, KV_BUDGET // (token_bytes * per_row))
    return max(1, min(rows, MAX_ROWS_PER_SLOT * batch_size))


def plan(
    prompts: Sequence[Sequence[int]],
    new_tokens: Sequence[int],
    batch_size: int,
    min_prefix: int,
    token_bytes: int = 0,
    call_cost: float = 0.0,
) -> list[Group]:
    """Group prompts by shared prefix, then cut each group (longest rest of prompt first, so
    padding stays small) into batches by `rows_per_batch`.

    A group decodes in batches of its own, and every batch pays a forward call per new token
    however few rows it has: a prefix that a handful of prompts happen to share (5 shots drawn
    at random from a small pool often open with the same one) saves less prefill than the
    extra batch's decoding costs. So a group must save more tokens than that batch's calls cost,
    `call_cost` (one call's fixed cost, in tokens' worth of compute) times its steps and two."""
    works = [ContextWork(tuple(p), [(i, [], False)]) for i, p in enumerate(prompts)]
    steps = max(new_tokens, default=0)
    groups = []
    for shared in prefix_groups(works, min_prefix, call_cost * (steps + 2) / 2):
        group = Group(shared.prefix_len)
        batch: list[int] = []
        width = most = 0
        for work in shared.contexts:
            index = work.conts[0][0]
            rest = len(work.tokens) - shared.prefix_len
            w, t = max(width, rest), max(most, new_tokens[index])
            fits = rows_per_batch(batch_size, shared.prefix_len, w, t, token_bytes)
            if batch and len(batch) + 1 > fits:
                group.batches.append(batch)
                batch, w, t = [], rest, new_tokens[index]
            batch.append(index)
            width, most = w, t
        if batch:
            group.batches.append(batch)
        groups.append(group)
    return groups


def plain_generation(model: Any) -> bool:
    """Whether `model.generate(do_sample=False)` with this model's generation config is plain
    greedy decoding with EOS: no repetition penalty, banned or forced tokens, beams, minimum
    length, time limit or configured stop strings (those stay `model.generate`'s)."""
    config = copy.deepcopy(model.generation_config)
    for key, value in config.to_diff_dict().items():
        if key not in _INERT and (key not in _NEUTRAL or value != _NEUTRAL[key]):
            return False
    return True


class Decoder:
    """The loop, over one engine's model (forward helpers, window, batch size, counter)."""

    def __init__(self, engine: HFGeneration) -> None:
        self.engine = engine
        self.model = engine.model
        self.device = engine.device
        self.layers = int(self._text_config().num_hidden_layers)
        eos = engine.model.generation_config.eos_token_id
        self.eos = {eos} if isinstance(eos, int) else set(eos or ())
        self.stop_text = engine._stop_text()
        # off the fast path the model returns logits: only the last position's are read
        takes = inspect.signature(self.model.forward).parameters
        self._extra = (
            {"logits_to_keep": 1} if not engine._fast and "logits_to_keep" in takes else {}
        )

    def token_bytes(self) -> int:
        """One token's keys and values over every layer, in the model's dtype."""
        config = self._text_config()
        heads = int(getattr(config, "num_attention_heads", 1) or 1)
        kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
        head_dim = getattr(config, "head_dim", None) or int(config.hidden_size) // heads
        size = torch.tensor([], dtype=self.model.dtype).element_size()
        return 2 * self.layers * kv_heads * int(head_dim) * size

    def _text_config(self) -> Any:
        config = self.model.config
        return getattr(config, "text_config", None) or config

    # --------------------------------------------------------------- forward
    def _forward(
        self, cache: RowCache, ids: torch.Tensor, positions: torch.Tensor, real: torch.Tensor
    ) -> torch.Tensor:
        """One forward pass of new columns over `cache`; the last column's hidden state (or
        logits, off the fast path) per row."""
        cache.begin(real)
        with activate(self.model, cache):
            states, _ = self.engine._hidden(
                input_ids=ids,
                position_ids=positions,
                attention_mask=None,
                use_cache=False,
                **self._extra,
            )
        cache.end(self.layers)
        return states[:, -1]

    def _logits(self, last: torch.Tensor) -> torch.Tensor:
        """float32 logits, as `model.generate` reads them."""
        return self.engine._logits(last) if self.engine._fast else last.float()

    def _prefill(self, cache: RowCache, prompts: list[list[int]], start: int) -> torch.Tensor:
        """Each row's tokens from `start` on, right-aligned at the cache's next columns (the
        padding before a shorter row masked), position ids running on from `start`."""
        width = max(map(len, prompts))
        pad = self.engine._pad_id
        ids, positions, real = [], [], []
        for p in prompts:
            gap = width - len(p)
            ids.append([pad] * gap + p)
            positions.append([max(start + j - gap, 0) for j in range(width)])
            real.append([False] * gap + [True] * len(p))
        return self._forward(
            cache,
            torch.tensor(ids, device=self.device),
            torch.tensor(positions, device=self.device),
            torch.tensor(real, device=self.device),
        )

    def prefix(self, tokens: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """A shared prefix's keys and values per layer, computed once."""
        cache = RowCache(1, len(tokens), None, self.device)
        self._prefill(cache, [tokens], 0)
        self.engine.tokens_computed += len(tokens)
        return [cache.layer_prefix(layer) for layer in range(self.layers)]

    # --------------------------------------------------------------- support
    def supported(self) -> bool:
        """Whether this loop computes what the model computes: the generation config is plain
        greedy decoding, and on a probe (a shared prefix, rows of different lengths, padding
        at the start and in the middle, one decoding step) the last logits match the model's
        own forward pass on each row alone, as `HFEngine` trusts its fast scoring path. Any
        failure (`Unsupported`, an architecture that takes other arguments) means no."""
        if not plain_generation(self.model):
            return False
        vocab = int(self.model.get_input_embeddings().num_embeddings)
        seq = [(7 * i + 3) % vocab for i in range(12)]
        rows = [seq[:9], seq[:6]]
        tolerance = 1e-3 if self.model.dtype == torch.float32 else 5e-2
        counted = self.engine.tokens_computed
        try:
            with torch.inference_mode():
                for start in (4, 0):
                    cache = RowCache(2, 9, self.prefix(seq[:start]) if start else None, self.device)
                    self._prefill(cache, [r[start:-1] for r in rows], start)
                    positions = torch.tensor([[8], [5]], device=self.device)
                    ids = torch.tensor([[r[-1]] for r in rows], device=self.device)
                    real = torch.ones(2, 1, dtype=torch.bool, device=self.device)
                    mine = self._logits(self._forward(cache, ids, positions, real))
                    for row, got in zip(rows, mine, strict=True):
                        ids = torch.tensor([row], device=self.device)
                        want = self.model(input_ids=ids).logits[0, -1].float()
                        if not torch.allclose(got, want, atol=tolerance, rtol=tolerance):
                            return False
        except Exception:  # anything the probe trips on leaves model.generate's path
            return False
        finally:
            self.engine.tokens_computed = counted
        return True

    # --------------------------------------------------------------- the loop
    def run(
        self, rows: Sequence[Row], *, top_p: float, cancel: Callable[[], bool] | None = None
    ) -> Iterator[list[tuple[int, list[int]]]]:
        """Each batch's (row index, generated tokens), batch by batch. `cancel`, polled between
        steps, ends the generation (what was made so far comes back; the caller discards it)."""
        engine = self.engine
        nothing = [i for i, r in enumerate(rows) if r.max_tokens <= 0]
        if nothing:
            yield [(i, []) for i in nothing]
        todo = [i for i, r in enumerate(rows) if r.max_tokens > 0]
        groups = plan(
            [rows[i].prompt for i in todo],
            [rows[i].max_tokens for i in todo],
            engine.batch_size,
            engine.min_shared_prefix,
            self.token_bytes(),
            engine.call_cost,
        )
        for group in groups:
            group.batches = [[todo[i] for i in batch] for batch in group.batches]
            prefix = None
            if group.prefix_len:
                prefix = self.prefix(rows[group.batches[0][0]].prompt[: group.prefix_len])
            for batch in group.batches:
                yield self._batch(rows, batch, group.prefix_len, prefix, top_p, cancel)
                if cancel is not None and cancel():
                    return

    def _batch(
        self,
        rows: Sequence[Row],
        batch: list[int],
        start: int,
        prefix: list[tuple[torch.Tensor, torch.Tensor]] | None,
        top_p: float,
        cancel: Callable[[], bool] | None,
    ) -> list[tuple[int, list[int]]]:
        from gnomon.engines.sampling import SeededSampler

        engine = self.engine
        live = [rows[i] for i in batch]
        rests = [r.prompt[start:] for r in live]
        width = max(map(len, rests))
        cache = RowCache(len(live), width + max(r.max_tokens for r in live), prefix, self.device)
        last = self._prefill(cache, rests, start)
        engine.tokens_computed += sum(map(len, rests))

        sampler = None
        if any(r.temperature > 0 for r in live):
            seeds = [secrets.randbits(63) if r.seed is None else r.seed for r in live]
            sampler = SeededSampler([r.temperature for r in live], seeds, top_p)
        made: list[list[int]] = [[] for _ in live]
        at = list(range(len(live)))  # live row -> its place in `batch`
        positions = torch.tensor([start + len(r) for r in rests], device=self.device)
        while True:
            logits = self._logits(last)
            chosen = sampler.choose(logits) if sampler else logits.argmax(-1)
            tokens = chosen.tolist()
            done = [False] * len(at)
            for i, (slot, token) in enumerate(zip(at, tokens, strict=True)):
                made[slot].append(token)
                done[i] = token in self.eos or len(made[slot]) >= live[slot].max_tokens
            self._stops(at, live, made, done)
            keep = [i for i, d in enumerate(done) if not d]
            if not keep or (cancel is not None and cancel()):
                break
            if len(keep) < len(at):
                index = torch.tensor(keep, device=self.device)
                cache.select(index)
                chosen, positions = chosen[index], positions[index]
                at = [at[i] for i in keep]
                if sampler:
                    sampler.keep(keep)
            real = torch.ones(len(at), 1, dtype=torch.bool, device=self.device)
            last = self._forward(cache, chosen[:, None], positions[:, None], real)
            engine.tokens_computed += len(at)
            positions = positions + 1
        return [(index, made[slot]) for slot, index in enumerate(batch)]

    def _stops(
        self, at: list[int], live: list[Row], made: list[list[int]], done: list[bool]
    ) -> None:
        """Mark the live rows whose generated text now holds one of their stop strings."""
        asked = [i for i, slot in enumerate(at) if not done[i] and live[at[i]].stops]
        if not asked:
            return
        hits = self.stop_text.hits(
            [made[at[i]] for i in asked],
            [live[at[i]].stops for i in asked],
            [live[at[i]].thinking for i in asked],
            [live[at[i]].opened for i in asked],
        )
        for i, hit in zip(asked, hits, strict=True):
            done[i] = done[i] or hit
