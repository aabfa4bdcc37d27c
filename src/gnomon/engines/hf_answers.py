"""What one row of a local model's generation means: its text, why it ended, what it cost.

`model.generate` hands back a padded block of token ids for the whole batch; a row that finished
early is followed by padding. Here a row is read on its own: cut at its first end-of-sequence
token, decoded, cut at its first stop string, and, for a conversation, split into reasoning,
answer and tool calls.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from gnomon.engines.answers import THINK_OPEN, answer_part, cut, split_thinking
from gnomon.engines.base import GenerateRequest, GenerateResult, ToolCall
from gnomon.engines.tool_calls import parse_tool_calls

# markers a template may declare special (so a plain decode would drop them) that the answer
# needs to be read: tool-call blocks and thinking
KEPT_MARKERS = ("<tool_call>", "</tool_call>", "<think>", "</think>")


@dataclass(frozen=True)
class RowReader:
    """Decoding facts of one tokenizer: its end ids (tokenizer's and the generation config's),
    its padding id, and which special tokens are markers the answer needs (`KEPT_MARKERS`)."""

    tokenizer: Any
    end_ids: frozenset[int]
    pad_id: int
    kept: dict[int, str]  # special marker tokens that decoding must not drop
    end_text: str  # the end token's text: an answer never runs past it

    @classmethod
    def of(cls, tokenizer: Any, generation_eos: int | Sequence[int] | None) -> RowReader:
        ends = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
        if isinstance(generation_eos, int):
            ends.add(generation_eos)
        elif generation_eos:
            ends.update(generation_eos)
        pad = tokenizer.pad_token_id or tokenizer.eos_token_id or 0
        added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
        kept = {}
        for marker in KEPT_MARKERS:
            found = tokenizer.convert_tokens_to_ids(marker)
            token = added.get(found) if isinstance(found, int) else None
            if token is not None and str(token) == marker and getattr(token, "special", False):
                kept[found] = marker
        eos = tokenizer.eos_token_id
        end_text = tokenizer.decode([eos], skip_special_tokens=False) if eos is not None else ""
        return cls(tokenizer, frozenset(ends), pad, kept, end_text)

    def decode(self, ids: Sequence[int]) -> str:
        """Text without special tokens, as `skip_special_tokens` gives it, except the kept
        markers (decoded between them, so a marker survives the skipping)."""
        if not self.kept or not any(i in self.kept for i in ids):
            return self.tokenizer.decode(ids, skip_special_tokens=True)
        parts: list[str] = []
        run: list[int] = []
        for i in ids:
            if i in self.kept:
                parts += [self.tokenizer.decode(run, skip_special_tokens=True), self.kept[i]]
                run = []
            else:
                run.append(i)
        parts.append(self.tokenizer.decode(run, skip_special_tokens=True))
        return "".join(parts)

    def stopped(
        self, ids: Sequence[int], until: Sequence[str], thinking: bool = False, opened: bool = False
    ) -> bool:
        """Whether these generated ids hold a stop string where `read` looks for one: in the
        text before the first end id, and for a conversation (`thinking`) in its answer, not in
        a `<think>` block (an unclosed one holds no answer yet; `opened`: the prompt opened
        it, as reasoning models' chat templates do)."""
        ended = next((i for i, t in enumerate(ids) if t in self.end_ids), len(ids))
        text = self.decode(ids[:ended])
        return _holds_stop(THINK_OPEN + text if opened else text, until, thinking)

    def read(
        self,
        new: Sequence[int],
        request: GenerateRequest,
        truncated: bool,
        prompt_tokens: int,
        opened: bool = False,
    ) -> GenerateResult:
        """The result for one row's generated ids (at most `request.max_tokens` of them).
        `opened`: the prompt ended inside a `<think>` block, so the text starts as thinking."""
        new = list(new)
        ended = next((i for i, t in enumerate(new) if t in self.end_ids), None)
        ids = new[:ended] if ended is not None else _strip(new, {self.pad_id})
        text = self.decode(ids)
        until = [s for s in (*request.until, self.end_text) if s]
        # a reasoning model's thinking is never its answer, in a conversation or a prompt its
        # chat template rendered (`--chat`), as the served engine reads every answer; text
        # without `<think>` markers reads as it always did
        thinking = True
        if opened:
            text = THINK_OPEN + text
        if _holds_stop(text, until, thinking):
            stopped = _tokens_to(ids, lambda some: self.stopped(some, until, thinking, opened))
            finish, used = "stop", stopped
        elif ended is not None:
            finish, used = "stop", ended + 1
        else:
            finish, used = "length", len(ids)
        calls: tuple[ToolCall, ...] = ()
        # thinking first, so a stop string inside the reasoning cannot end the answer
        answer, reasoning = split_thinking(text)
        cut_text = cut(answer, until)
        if request.messages is not None and request.tools is not None:
            cut_text, calls = parse_tool_calls(cut_text)
            if calls:
                finish = "tool_calls"
        return GenerateResult(
            cut_text,
            truncated,
            reasoning=reasoning,
            finish_reason=finish,
            prompt_tokens=prompt_tokens,
            completion_tokens=used,
            tool_calls=calls,
        )


def _holds_stop(text: str, until: Sequence[str], thinking: bool) -> bool:
    """Whether `RowReader.stopped`'s text holds a stop string: a conversation's answer after
    its thinking, stripped on the left as `read` strips it (a stop may end the text still being
    generated)."""
    if thinking:
        answer = answer_part(text)
        text = answer.lstrip() if answer != text else text
    return cut(text, until) != text


def _strip(ids: list[int], pads: Collection[int]) -> list[int]:
    end = len(ids)
    while end and ids[end - 1] in pads:
        end -= 1
    return ids[:end]


def _tokens_to(ids: list[int], stopped: Callable[[list[int]], bool]) -> int:
    """The fewest leading tokens that hold a stop string (the tokens the model had to generate
    before it could be stopped)."""
    low, high = 1, len(ids)
    while low < high:
        mid = (low + high) // 2
        if stopped(ids[:mid]):
            high = mid
        else:
            low = mid + 1
    return high
