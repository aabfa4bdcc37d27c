"""Tokenising contexts and their continuations exactly as lm-evaluation-harness does, at a fraction
of the cost.

lm-evaluation-harness finds a continuation's tokens as `encode(context + continuation)` after the
first `len(encode(context))` tokens, so a 4-choice question tokenises its 700-token context five
times. For a small model that was over a third of the scoring time.

Where a tokenizer's pipeline is local (it splits text into pre-tokens first, and its model then
tokenises each pre-token on its own: byte-level BPE, Metaspace, WordPiece, ...), text appended to a
context cannot change the tokens of the context far before its end. So each context is tokenised
once; an anchor is chosen a few dozen characters before its end at a token boundary, checked by
tokenising the context's tail alone (it must give exactly the context's last tokens); and each
continuation is tokenised together with that short tail only. Tokenizers whose pipeline is not
known to be local (no pre-tokenizer, a normaliser that prepends, BPE dropout), contexts whose
anchor fails its check, and texts beginning with the BOS string take the full path. The first
pairs of every call are also tokenised in full and compared, so a tokenizer that breaks the
locality argument anyway turns the shortcut off for the engine rather than changing a score.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

TAIL_CHARS = 48  # an anchor sits at least this far before the context's end
ANCHOR_TRIES = 4  # token boundaries tried per context
MIN_SHARED_CHARS = 256  # a shorter common opening is tokenised again, not reused
SPOT_CHECKS = 2  # pairs per call also tokenised in full and compared

_SPLITTING = {
    "ByteLevel", "Split", "Whitespace", "WhitespaceSplit", "Punctuation", "Digits", "Metaspace",
    "BertPreTokenizer", "CharDelimiterSplit", "UnicodeScripts",
}  # fmt: skip
_LOCAL_NORMALIZERS = {"NFC", "NFD", "NFKC", "NFKD", "Lowercase", "BertNormalizer"}
_PER_PIECE_MODELS = {"BPE", "WordPiece", "WordLevel", "Unigram"}


def _splits(pre: dict[str, Any]) -> bool | None:
    """True: cuts text into pieces locally; None: leaves pieces whole, mapping characters
    locally (byte-level without its regex); False: anything else."""
    kind = pre.get("type")
    if kind == "ByteLevel" and not pre.get("use_regex", True):
        return None
    if kind == "Metaspace" and pre.get("split") is False:
        return None if pre.get("prepend_scheme") == "never" else False
    return kind in _SPLITTING


def _pre_is_local(pre: dict[str, Any] | None) -> bool:
    """A pre-tokenizer whose pieces depend only on nearby text (so the model sees each piece
    alone): one that splits, or a sequence of local steps of which one splits."""
    if pre is None:
        return False
    if pre.get("type") == "Sequence":
        steps = [_splits(p) for p in pre.get("pretokenizers") or []]
        return all(s is not False for s in steps) and any(s is True for s in steps)
    return _splits(pre) is True


def _normalizer_is_local(norm: dict[str, Any] | None) -> bool:
    if norm is None:
        return True
    if norm.get("type") == "Sequence":
        return all(_normalizer_is_local(n) for n in norm.get("normalizers") or [])
    return norm.get("type") in _LOCAL_NORMALIZERS


def pipeline_is_local(tokenizer: Any) -> bool:
    """Whether the fast tokenizer's pipeline tokenises each pre-token on its own."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return False
    try:
        spec = json.loads(backend.to_str())
    except (ValueError, AttributeError):
        return False
    model = spec.get("model") or {}
    if model.get("type") not in _PER_PIECE_MODELS or model.get("dropout"):
        return False
    return _pre_is_local(spec.get("pre_tokenizer")) and _normalizer_is_local(spec.get("normalizer"))


def _common_prefix(a: str, b: str) -> int:
    """Length of the common opening, by halving (slice comparisons run in C)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        mid = (low + high + 1) // 2
        if a[:mid] == b[:mid]:
            low = mid
        else:
            high = mid - 1
    return low


@dataclass(frozen=True)
class _Anchor:
    cut: int  # character offset in the context where the tail starts
    index: int  # the context token that starts there


def _boundaries(spans: Sequence[tuple[int, int]], limit: int) -> list[_Anchor]:
    """Up to ANCHOR_TRIES token boundaries at or before character `limit`, nearest first: a
    few, because a tokenizer that marks the start of a text (a Metaspace prepending its space)
    passes the check only where a word begins."""
    found: list[_Anchor] = []
    for j in range(len(spans) - 1, 0, -1):
        start, _ = spans[j]
        _, prev_end = spans[j - 1]
        if prev_end <= 0 or start <= 0 or prev_end > start:
            continue  # special tokens, or a character split over several tokens
        if prev_end <= limit:
            found.append(_Anchor(prev_end, j))
            if len(found) == ANCHOR_TRIES:
                break
    return found


class PairEncoder:
    """`encode_pairs` for one tokenizer; remembers whether its shortcut may be used."""

    def __init__(self, tokenizer: Any, shown: Callable[[str], str]) -> None:
        self.tokenizer = tokenizer
        self.shown = shown
        self.fast = pipeline_is_local(tokenizer)
        # what the last call's shortcuts served (for tests and reports): pairs whose
        # continuation was tokenised against an anchor, contexts built from another's tokens
        self.anchored = 0
        self.derived = 0

    def _plain(self, texts: Sequence[str], special: bool = True) -> list[list[int]]:
        """The tokenizer's own call: the reference every shortcut is checked against."""
        if not texts:
            return []
        out = self.tokenizer([self.shown(t) for t in texts], add_special_tokens=special)
        return [list(ids) for ids in out["input_ids"]]

    def _backend(self, texts: Sequence[str], special: bool) -> list[Any]:
        """The same encodings straight from the Rust tokenizer the call wraps, without building
        Python lists of every offset and mask for thousands of short texts."""
        if not texts:
            return []
        return list(self.tokenizer.backend_tokenizer.encode_batch(
            list(texts), add_special_tokens=special
        ))  # fmt: skip

    def encode_pairs(self, pairs: Sequence[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
        """(encode(context), encode(context + continuation)[len(encode(context)):]) per pair;
        contexts are non-empty and do not start with the BOS string."""
        self.anchored = self.derived = 0
        if not pairs:
            return []
        contexts = list(dict.fromkeys(c for c, _ in pairs))
        if not self.fast:
            return self._full(pairs, contexts)
        shown = [self.shown(c) for c in contexts]
        encoded, derived = self._encode_contexts(shown)
        tokens = {c: ids for c, (ids, _) in zip(contexts, encoded, strict=True)}
        anchors = self._anchors(contexts, shown, tokens, [spans for _, spans in encoded])
        fast = [(i, c, k) for i, (c, k) in enumerate(pairs) if c in anchors]
        tails = [
            e.ids
            for e in self._backend(
                [self.shown(c)[anchors[c].cut :] + self.shown(k) for _, c, k in fast],
                special=False,
            )
        ]
        out: list[tuple[list[int], list[int]] | None] = [None] * len(pairs)
        for (i, c, _), tail in zip(fast, tails, strict=True):
            ctx = tokens[c]
            out[i] = (ctx, tail[len(ctx) - anchors[c].index :])
        slow = [i for i, item in enumerate(out) if item is None]
        wholes = self._plain([pairs[i][0] + pairs[i][1] for i in slow])
        for i, whole in zip(slow, wholes, strict=True):
            ctx = tokens[pairs[i][0]]
            out[i] = (ctx, whole[len(ctx) :])
        checked = [i for i, _, _ in fast[:SPOT_CHECKS]]
        full = self._plain([pairs[i][0] + pairs[i][1] for i in checked])
        sample = [contexts[i] for i in derived[:SPOT_CHECKS]]
        agree = all(
            tokens[c] == ids for c, ids in zip(sample, self._plain(sample), strict=True)
        ) and all(
            whole[len(out[i][0]) :] == out[i][1]  # type: ignore[index]
            for i, whole in zip(checked, full, strict=True)
        )
        if not agree:
            self.fast = False  # the locality argument failed for this tokenizer
            return self._full(pairs, contexts)
        self.anchored, self.derived = len(fast), len(derived)
        return [item for item in out if item is not None]

    def _anchors(
        self,
        contexts: list[str],
        shown: list[str],
        tokens: dict[str, list[int]],
        offsets: list[list[tuple[int, int]]],
    ) -> dict[str, _Anchor]:
        """A checked anchor per context that has one: a token boundary at least TAIL_CHARS
        before the end whose tail, tokenised alone, gives the context's own tokens."""
        candidates = [
            (context, anchor)
            for context, text, spans in zip(contexts, shown, offsets, strict=True)
            for anchor in _boundaries(spans, len(text) - TAIL_CHARS)
        ]
        texts = [self.shown(c)[a.cut :] for c, a in candidates]
        tails = [e.ids for e in self._backend(texts, special=False)]
        anchors: dict[str, _Anchor] = {}
        for (context, anchor), tail in zip(candidates, tails, strict=True):
            if context not in anchors and tail == tokens[context][anchor.index :]:
                anchors[context] = anchor
        return anchors

    def _encode_contexts(
        self, shown: list[str]
    ) -> tuple[list[tuple[list[int], list[tuple[int, int]]]], list[int]]:
        """Each context's ids and offsets, and which were built from another's. Contexts that
        open like an earlier one (the same few-shot block) reuse its tokens up to a checked
        anchor inside the shared opening: only the rest is tokenised."""
        order = sorted(range(len(shown)), key=shown.__getitem__)
        bases: list[int] = []
        followers: list[tuple[int, int, int]] = []  # (context, its base, shared characters)
        for i in order:
            if bases:
                shared = _common_prefix(shown[bases[-1]], shown[i])
                if shared - TAIL_CHARS >= MIN_SHARED_CHARS:
                    followers.append((i, bases[-1], shared))
                    continue
            bases.append(i)
        out: list[Any] = [None] * len(shown)
        for i, e in zip(bases, self._backend([shown[i] for i in bases], True), strict=True):
            out[i] = (e.ids, e.offsets)
        # each base's candidate anchors for the openings its followers share, checked once
        wanted = {
            (base, a) for _, base, shared in followers
            for a in _boundaries(out[base][1], shared - TAIL_CHARS)
        }  # fmt: skip
        checks = sorted(wanted, key=lambda w: (w[0], w[1].cut))
        tails = self._backend([shown[b][a.cut :] for b, a in checks], special=False)
        good = {
            w for w, t in zip(checks, tails, strict=True) if t.ids == out[w[0]][0][w[1].index :]
        }
        plan: list[tuple[int, int, _Anchor]] = []
        lost: list[int] = []
        for i, base, shared in followers:
            usable = [
                a for a in _boundaries(out[base][1], shared - TAIL_CHARS) if (base, a) in good
            ]
            if usable:
                plan.append((i, base, usable[0]))
            else:
                lost.append(i)
        rests = self._backend([shown[i][a.cut :] for i, _, a in plan], special=False)
        for (i, base, a), rest in zip(plan, rests, strict=True):
            ids, spans = out[base]
            moved = [(s + a.cut, e + a.cut) for s, e in rest.offsets]
            out[i] = (ids[: a.index] + rest.ids, spans[: a.index] + moved)
        for i, e in zip(lost, self._backend([shown[i] for i in lost], True), strict=True):
            out[i] = (e.ids, e.offsets)
        return out, [i for i, _, _ in plan]

    def _full(
        self, pairs: Sequence[tuple[str, str]], contexts: list[str]
    ) -> list[tuple[list[int], list[int]]]:
        tokens = dict(zip(contexts, self._plain(contexts), strict=True))
        wholes = self._plain([c + k for c, k in pairs])
        out = []
        for (context, _), whole in zip(pairs, wholes, strict=True):
            out.append((tokens[context], whole[len(tokens[context]) :]))
        return out
