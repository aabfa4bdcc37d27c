"""Token texts in the shape of OpenAI's legacy `logprobs`.

The numbers themselves are `EchoScorer`'s (`engines/hf_echo.py`): loglikelihood scoring over HTTP
(`echo=true, max_tokens=0, logprobs=1`) sums them, so they are the quantity `HFEngine.score` reads.
Here is only how each token is spelled and where its text starts.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

# A token that ends inside a multi-byte character decodes to U+FFFD; its text is deferred to the
# token that completes the character. More than this many pending tokens is not a character.
_MAX_PENDING = 4
_REPLACEMENT = "\ufffd"
# Tokens of left context decoded with each token, so that decoders that strip or merge spaces at
# the start of a string treat the token as they would inside the text.
_WINDOW = 6


def token_texts(tokenizer: Any, ids: list[int]) -> list[str]:
    """Each token's contribution to `tokenizer.decode(ids, skip_special_tokens=True)`.

    Decoding tokens one by one is wrong for byte-level BPE (a character split over two tokens)
    and for SentencePiece (a leading space is stripped at the start of a string), so each token
    is decoded after a few tokens of left context and only the new text is kept. Special tokens
    contribute no text. The pieces join to the decoded text, which makes `text_offset` exact.
    """
    return _Pieces.start().extend(tokenizer, ids).texts


@dataclass(frozen=True)
class _Pieces:
    """`token_texts` after its first `len(texts)` steps: the texts so far and, after each step,
    how many tokens had had their text handed out. Step i reads only `ids[: i + 1]` and whether
    a token follows, so the state after step i serves any sequence that starts with the same
    `i + 1` tokens and goes on past them."""

    texts: list[str]
    emitted: list[int]

    @staticmethod
    def start() -> _Pieces:
        return _Pieces([], [])

    def upto(self, steps: int) -> _Pieces:
        return _Pieces(self.texts[:steps], self.emitted[:steps])

    def extend(self, tokenizer: Any, ids: list[int]) -> _Pieces:
        def decode(part: list[int]) -> str:
            return tokenizer.decode(
                part, skip_special_tokens=True, clean_up_tokenization_spaces=False
            )

        out, after = list(self.texts), list(self.emitted)
        emitted = after[-1] if after else 0  # ids[:emitted] have had their text handed out
        for i in range(len(out), len(ids)):
            start = max(0, emitted - _WINDOW)
            before = decode(ids[start:emitted])
            now = decode(ids[start : i + 1])
            pending = i + 1 - emitted
            if now.endswith(_REPLACEMENT) and i + 1 < len(ids) and pending < _MAX_PENDING:
                out.append("")
            else:
                if not now.startswith(before):  # a normaliser rewrote the context: keep the rest
                    before = before[: len(os.path.commonprefix([before, now]))]
                out.append(now[len(before) :])
                emitted = i + 1
            after.append(emitted)
        return _Pieces(out, after)


class TokenTexts:
    """`token_texts` that remembers the last few sequences it spelled, so a prompt that starts
    like one of them (the other choices of a question, the next question after the same
    few-shot block) decodes only from where it differs. The answers are `token_texts`'s."""

    def __init__(self, tokenizer: Any, keep: int = 8) -> None:
        self.tokenizer = tokenizer
        self.keep = keep
        self._kept: OrderedDict[tuple[int, ...], _Pieces] = OrderedDict()

    def __call__(self, ids: list[int]) -> list[str]:
        key = tuple(ids)
        best, steps = None, 0
        for seen, pieces in self._kept.items():
            # resumable after step i only where both sequences go on past token i
            n = min(_shared(seen, key), len(seen) - 1, len(key) - 1)
            if n > steps:
                best, steps = pieces, n
        base = best.upto(steps) if best is not None else _Pieces.start()
        pieces = base.extend(self.tokenizer, ids)
        self._kept[key] = pieces
        self._kept.move_to_end(key)
        while len(self._kept) > self.keep:
            self._kept.popitem(last=False)
        return pieces.texts


def _shared(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def display_tokens(tokenizer: Any, ids: list[int], texts: list[str]) -> list[str]:
    """Token strings for the `tokens` field: the text a token contributes, or for a special token
    (BOS, EOS) its own spelling, as OpenAI-compatible servers report it."""
    special = set(tokenizer.all_special_ids)
    return [
        tokenizer.convert_ids_to_tokens(t) if t in special else text
        for t, text in zip(ids, texts, strict=True)
    ]
