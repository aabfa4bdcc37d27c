"""Token texts in the shape of OpenAI's legacy `logprobs`.

The numbers themselves are `HFEngine.token_logprobs`: loglikelihood scoring over HTTP (`echo=true,
max_tokens=0, logprobs=1`) sums them, so they are the quantity `HFEngine.score` reads. Here is only
how each token is spelled and where its text starts.
"""

from __future__ import annotations

import os
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

    def decode(part: list[int]) -> str:
        return tokenizer.decode(part, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    out: list[str] = []
    emitted = 0  # ids[:emitted] have had their text handed out
    for i in range(len(ids)):
        start = max(0, emitted - _WINDOW)
        before = decode(ids[start:emitted])
        now = decode(ids[start : i + 1])
        pending = i + 1 - emitted
        if now.endswith(_REPLACEMENT) and i + 1 < len(ids) and pending < _MAX_PENDING:
            out.append("")
            continue
        if not now.startswith(before):  # a normaliser rewrote the context: keep what differs
            before = before[: len(os.path.commonprefix([before, now]))]
        out.append(now[len(before) :])
        emitted = i + 1
    return out


def display_tokens(tokenizer: Any, ids: list[int], texts: list[str]) -> list[str]:
    """Token strings for the `tokens` field: the text a token contributes, or for a special token
    (BOS, EOS) its own spelling, as OpenAI-compatible servers report it."""
    special = set(tokenizer.all_special_ids)
    return [
        tokenizer.convert_ids_to_tokens(t) if t in special else text
        for t, text in zip(ids, texts, strict=True)
    ]
