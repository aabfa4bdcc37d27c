"""Planning the scoring work before any forward pass: which tokens must be computed, and how often.

Pure functions over token ids, so the sharing rules can be tested without a model:
- requests with the same context tokens share one forward pass over that context;
- contexts with a long common token prefix (a few-shot block) share one pass over that prefix;
- contexts are batched longest first, so padding is small.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Tokens = tuple[int, ...]


@dataclass
class ContextWork:
    """One distinct context and the continuations scored after it."""

    tokens: Tokens
    # (request index, continuation tokens, whether that request's context was cut to fit)
    conts: list[tuple[int, list[int], bool]] = field(default_factory=list)


@dataclass
class PrefixGroup:
    """Contexts sharing their first `prefix_len` tokens; that prefix is computed once."""

    prefix_len: int
    contexts: list[ContextWork]


def fit_to_window(ctx: list[int], cont: list[int], max_length: int) -> tuple[list[int], bool]:
    """lm-evaluation-harness's rule: the model sees (ctx + cont)[-(max_length + 1):][:-1]."""
    excess = len(ctx) + len(cont) - (max_length + 1)
    if excess <= 0:
        return ctx, False
    return ctx[excess:], True


def group_by_context(
    pairs: list[tuple[list[int], list[int]]], max_length: int
) -> list[ContextWork]:
    works: dict[Tokens, ContextWork] = {}
    for index, (ctx, cont) in enumerate(pairs):
        fitted, truncated = fit_to_window(ctx, cont, max_length)
        key = tuple(fitted)
        work = works.get(key)
        if work is None:
            work = works[key] = ContextWork(key)
        work.conts.append((index, cont, truncated))
    return list(works.values())


def _common_prefix(a: Tokens, b: Tokens, limit: int) -> int:
    n = min(len(a), len(b), limit)
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def prefix_groups(
    works: list[ContextWork], min_prefix: int, call_cost: float = 0.0
) -> list[PrefixGroup]:
    """Sort contexts so shared prefixes sit together, then cut groups where sharing stops paying.

    In sorted order the common prefix of a run of contexts is the smallest common prefix of
    neighbours. A context joins the running group while that stays at least `min_prefix` tokens
    and at least half of the group's current prefix, so one stray context cannot shrink a long
    few-shot prefix to a short one; a stray that sorts first is recognised by its neighbour
    sharing far more with the next context than with it. Every context keeps at least its last
    token outside the prefix: that position's logits score the continuation's first token.

    A group costs forward calls of its own (the prefix pass, and batches that cannot mix with
    other contexts); `call_cost` is one call's fixed cost in tokens' worth of compute. A group is
    kept only when the tokens it saves outweigh two such calls, so on a model so small that a
    call's overhead dwarfs its arithmetic, short shared prefixes are simply recomputed.
    """
    ordered = sorted(works, key=lambda w: w.tokens)
    shared = [
        _common_prefix(a.tokens, b.tokens, len(a.tokens))
        for a, b in zip(ordered, ordered[1:], strict=False)
    ]
    groups: list[PrefixGroup] = []
    loners: list[ContextWork] = []
    current: list[ContextWork] = []
    prefix = 0

    def close() -> None:
        if len(current) > 1:
            usable = min(prefix, min(len(w.tokens) for w in current) - 1)
            saved = (len(current) - 1) * usable
            if usable >= min_prefix and saved > 2 * call_cost:
                groups.append(PrefixGroup(usable, sorted(current, key=lambda w: -len(w.tokens))))
                return
        loners.extend(current)

    for i, work in enumerate(ordered):
        if current:
            common = min(prefix, shared[i - 1])
            if len(current) == 1:
                ahead = shared[i] if i < len(shared) else 0
                joins = common >= min_prefix and ahead < 2 * common
            else:
                joins = common >= min_prefix and common * 2 >= prefix
            if joins:
                current.append(work)
                prefix = common
                continue
            close()
        current = [work]
        prefix = len(work.tokens)
    if current:
        close()
    if loners:
        groups.append(PrefixGroup(0, sorted(loners, key=lambda w: -len(w.tokens))))
    return groups


def batches(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def token_chunks(items: list, sizes: list[int], max_items: int, max_tokens: int) -> list[list]:
    """`items` in order, cut into chunks of at most `max_items` items and `max_tokens` summed
    sizes; an item larger than `max_tokens` goes alone."""
    chunks: list[list] = []
    current: list = []
    total = 0
    for item, size in zip(items, sizes, strict=True):
        if current and (len(current) == max_items or total + size > max_tokens):
            chunks.append(current)
            current, total = [], 0
        current.append(item)
        total += size
    if current:
        chunks.append(current)
    return chunks


def rolling_windows(
    tokens: list[int], prefix_token: int, max_length: int
) -> list[tuple[list[int], list[int]]]:
    """A whole text's tokens as (context, continuation) pairs that predict each token once,
    lm-evaluation-harness's rolling windows with one token of context (its
    `get_rolling_token_windows(..., context_len=1)` made disjoint): the first window predicts up
    to `max_length` tokens after the prefix token; each later one predicts the next `max_length`
    tokens (fewer at the end) after the rest of a full window of the tokens before them. Every
    pair fills at most `max_length + 1` tokens, so none is cut by `fit_to_window`."""
    if max_length < 1:
        raise ValueError(f"max_length must be at least 1, got {max_length}")
    if not tokens:
        return []
    first = tokens[:max_length]
    windows = [([prefix_token], first)]
    done = len(first)
    while done < len(tokens):
        end = min(len(tokens), done + max_length)
        # the window holds tokens[end - max_length - 1 : end - 1]; what it predicts is the end
        # of that span shifted by one, and the rest of the span before it is the context
        context = tokens[end - max_length - 1 : done]
        windows.append((context, tokens[done:end]))
        done = end
    return windows
