"""When a generating row has met a stop string: in the text it generated, never the prompt's.

lm-evaluation-harness (and every OpenAI-compatible server) stops a row once a stop string
appears in the *generated* text and cuts the text before it. transformers' `StopStringCriteria`
also reads the prompt's last tokens, so a prompt ending in "\\n" with the stop "\\n\\n" ends after
one generated newline, a shorter answer than the reference's; and building it for a large
vocabulary costs seconds. Here a row is checked as `RowReader.read` reads its answer, so the
step a row stops at never changes its text: stopping later would cut the same text.

Each step costs one batched decode of the last few tokens of the rows whose newest token could
complete a stop string (`could_end`); only an occurrence that ends in the newest token is
confirmed against the row's whole text (which also applies reading's
rules: an unfinished `<think>` block holds no answer to stop).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from gnomon.engines.hf_answers import RowReader

# bytes of UTF-8 per character at most: byte-level tokens make one character of up to 4 tokens
_TOKENS_PER_CHAR = 4


class StopText:
    """Stop strings checked on generated tokens, many rows at a time."""

    def __init__(self, reader: RowReader) -> None:
        self.reader = reader
        self.tokenizer = reader.tokenizer
        self._could_end: dict[tuple[str, ...], dict[int, bool]] = {}

    def could_end(self, stops: tuple[str, ...], token: int) -> bool:
        """Whether this token, newest in a row, might complete one of `stops`: its text alone
        holds a stop's last character, or is empty or a broken character (a piece of one that
        earlier tokens began). A no skips the row's decode this step. Only speed rests on it:
        a token wrongly passed over would leave its row to end at EOS or its budget, and the
        answer is still cut at its first stop string when it is read."""
        known = self._could_end.setdefault(stops, {})
        if token not in known:
            text = self.tokenizer.decode([token], skip_special_tokens=True)
            ends = {s[-1] for s in stops if s}
            known[token] = (
                not text
                or "\ufffd" in text
                or any(c.isspace() for c in ends)  # a tokenizer may drop a piece's own space
                or any(c in text for c in ends)
            )
        return known[token]

    @staticmethod
    def window(stops: Sequence[str]) -> int:
        """Trailing tokens whose text holds any stop string that ends in the last of them."""
        longest = max((len(s) for s in stops), default=0)
        return _TOKENS_PER_CHAR * longest + 2 if longest else 0

    def hits(
        self,
        made: Sequence[Sequence[int]],
        stops: Sequence[tuple[str, ...]],
        thinking: Sequence[bool],
        opened: Sequence[bool] | None = None,
    ) -> list[bool]:
        """For each row (its generated ids, its stops, whether it is a conversation whose
        `<think>` block is not an answer; `opened`, whether its prompt opened that block): whether
        its text now holds a stop string."""
        opened = opened if opened is not None else [False] * len(made)
        found = [False] * len(made)
        texts: list[list[int]] = []
        asked: list[int] = []
        for i, (ids, row_stops) in enumerate(zip(made, stops, strict=True)):
            if row_stops and ids and self.could_end(row_stops, ids[-1]):
                start = max(0, len(ids) - self.window(row_stops))
                texts += [list(ids[start:]), list(ids[start:-1])]
                asked.append(i)
        if not asked:
            return found
        decoded = self.tokenizer.batch_decode(texts, skip_special_tokens=True)
        for n, i in enumerate(asked):
            # the newest token's text begins where the two decodes part (not at len(before):
            # a character cut short by the window's end decodes to replacement characters)
            new_at = len(os.path.commonprefix([decoded[2 * n], decoded[2 * n + 1]]))
            now = decoded[2 * n]
            fresh = any(now.find(s, max(0, new_at - len(s) + 1)) >= 0 for s in stops[i] if s)
            found[i] = fresh and self.reader.stopped(made[i], stops[i], thinking[i], opened[i])
        return found

    def criteria(
        self, stops: Sequence[str], prompt_width: int, thinking: bool = False, opened: bool = False
    ) -> Any:
        """The same check as `model.generate` stopping criteria, on a left-padded batch whose
        prompts fill the first `prompt_width` columns."""
        import torch
        from transformers import StoppingCriteria

        check = self
        row_stops = tuple(stops)

        class GeneratedTextStop(StoppingCriteria):
            def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kw: Any) -> Any:
                made = input_ids[:, prompt_width:].tolist()
                rows = len(made)
                hits = check.hits(made, [row_stops] * rows, [thinking] * rows, [opened] * rows)
                return torch.tensor(hits, dtype=torch.bool, device=input_ids.device)

        return GeneratedTextStop()
