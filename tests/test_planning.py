"""The scoring planner: left truncation, merging identical contexts, grouping shared prefixes."""

from __future__ import annotations

import random

import pytest

from gnomon.engines.planning import (
    ContextWork,
    batches,
    fit_to_window,
    group_by_context,
    prefix_groups,
)

SHOTS = tuple(range(100, 200))  # a 100-token "few-shot block"


def work(tokens: tuple[int, ...], index: int = 0) -> ContextWork:
    return ContextWork(tuple(tokens), [(index, [7], False)])


def lcp(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def check_partition(works: list[ContextWork], min_prefix: int) -> list:
    """Every context in exactly one group; every grouped prefix is really shared, long enough,
    and leaves each context's last token outside."""
    groups = prefix_groups(works, min_prefix)
    seen = [id(w) for g in groups for w in g.contexts]
    assert sorted(seen) == sorted(id(w) for w in works)
    for g in groups:
        if g.prefix_len == 0:
            continue
        assert g.prefix_len >= min_prefix
        head = g.contexts[0].tokens[: g.prefix_len]
        for w in g.contexts:
            assert w.tokens[: g.prefix_len] == head
            assert len(w.tokens) - g.prefix_len >= 1
    return groups


def by_members(groups: list) -> dict[frozenset[tuple[int, ...]], int]:
    return {frozenset(w.tokens for w in g.contexts): g.prefix_len for g in groups}


# ----------------------------------------------------------------- fit_to_window


def harness_window(ctx: list[int], cont: list[int], max_length: int) -> list[int]:
    return (ctx + cont)[-(max_length + 1) :][:-1]


@pytest.mark.parametrize("max_length", [1, 2, 5, 8, 16])
def test_fit_to_window_matches_the_harness_rule(max_length: int) -> None:
    rng = random.Random(max_length)
    for _ in range(300):
        ctx = [rng.randrange(1000) for _ in range(rng.randint(1, 25))]
        cont = [rng.randrange(1000) for _ in range(rng.randint(1, max_length))]
        fitted, truncated = fit_to_window(ctx, cont, max_length)
        # the model sees the fitted context followed by all continuation tokens but the last
        assert fitted + cont[:-1] == harness_window(ctx, cont, max_length)
        assert truncated == (len(ctx) + len(cont) > max_length + 1)
        assert len(fitted) >= 1


def test_fit_to_window_boundary() -> None:
    ctx, cont = list(range(10)), [50, 51]
    # 10 + 2 = 12 = max_length + 1: fits exactly (the last token is never fed)
    assert fit_to_window(ctx, cont, 11) == (ctx, False)
    assert fit_to_window(ctx, cont, 10) == (ctx[1:], True)
    assert fit_to_window(ctx, cont, 3) == (ctx[-2:], True)


# ----------------------------------------------------------------- group_by_context


def test_identical_contexts_are_merged_with_all_their_continuations() -> None:
    a, b = [1, 2, 3, 4], [1, 2, 3, 5]
    pairs = [(a, [10]), (b, [11]), (a, [12, 13]), (a, [14]), (b, [15, 16, 17])]
    works = group_by_context(pairs, max_length=100)
    assert len(works) == 2
    got = {w.tokens: w.conts for w in works}
    assert got[tuple(a)] == [(0, [10], False), (2, [12, 13], False), (3, [14], False)]
    assert got[tuple(b)] == [(1, [11], False), (4, [15, 16, 17], False)]


def test_group_by_context_truncates_per_request() -> None:
    ctx = list(range(20))
    pairs = [(ctx, [1]), (ctx, [1, 2, 3, 4, 5])]
    works = group_by_context(pairs, max_length=20)
    # the same text context fits with a 1-token continuation but not with a 5-token one
    assert [(len(w.tokens), w.conts[0][2]) for w in works] == [(20, False), (16, True)]
    for w in works:
        ((i, cont, _),) = w.conts
        assert list(w.tokens) + cont[:-1] == harness_window(*pairs[i], 20)


# ----------------------------------------------------------------- prefix_groups


def test_contexts_sharing_a_long_prefix_are_grouped_at_the_longest_common_prefix() -> None:
    tails = [(1, 2, 3), (4, 5), (4, 6, 7, 8), (9,)]
    works = [work(SHOTS + t, i) for i, t in enumerate(tails)]
    groups = check_partition(works, 32)
    assert len(groups) == 1
    # (4, 5) and (4, 6, ..) share one more token, but the group's prefix is what all share
    assert groups[0].prefix_len == len(SHOTS)
    assert {w.tokens for w in groups[0].contexts} == {w.tokens for w in works}


def test_prefix_always_leaves_a_token_of_each_context_outside() -> None:
    # one context is the shared block itself, another extends it
    works = [work(SHOTS), work(SHOTS + (1, 2)), work(SHOTS + (3,))]
    groups = check_partition(works, 32)
    assert len(groups) == 1
    assert groups[0].prefix_len == len(SHOTS) - 1


def test_two_context_group_with_one_a_prefix_of_the_other() -> None:
    groups = check_partition([work(SHOTS[:50]), work(SHOTS[:80])], 32)
    assert by_members(groups) == {frozenset({SHOTS[:50], SHOTS[:80]}): 49}


def test_contexts_sharing_fewer_than_min_prefix_tokens_are_not_grouped() -> None:
    short = SHOTS[:31]
    works = [work(short + (1000 + i,) * 5) for i in range(4)]
    groups = check_partition(works, 32)
    assert [g.prefix_len for g in groups] == [0]
    assert len(groups[0].contexts) == 4
    # exactly min_prefix shared tokens is enough
    works = [work(SHOTS[:32] + (1000 + i,) * 5) for i in range(4)]
    assert [g.prefix_len for g in check_partition(works, 32)] == [32]


def test_a_single_context_is_never_a_prefix_group() -> None:
    groups = check_partition([work(SHOTS)], 32)
    assert [g.prefix_len for g in groups] == [0]


def test_separate_few_shot_blocks_form_separate_groups() -> None:
    other = tuple(range(300, 360))
    a = [work(SHOTS + (i, i)) for i in range(3)]
    b = [work(other + (i,)) for i in range(5)]
    loner = work((5, 6, 7))
    groups = check_partition([*b, loner, *a], 32)
    assert by_members(groups) == {
        frozenset(w.tokens for w in a): len(SHOTS),
        frozenset(w.tokens for w in b): len(other),
        frozenset({loner.tokens}): 0,
    }


def test_stray_context_sorting_after_the_group_does_not_shrink_its_prefix() -> None:
    group = [work(SHOTS + (500 + i, 7)) for i in range(4)]
    stray = work(SHOTS[:40] + (999, 5, 5))  # shares 40 tokens; sorts after the group
    groups = check_partition([*group, stray], 32)
    assert by_members(groups)[frozenset(w.tokens for w in group)] == len(SHOTS)


def test_stray_context_sorting_before_the_group_does_not_shrink_its_prefix() -> None:
    group = [work(SHOTS + (500 + i, 7)) for i in range(4)]
    stray = work(SHOTS[:40] + (0, 5, 5))  # shares 40 tokens; sorts before the group
    groups = check_partition([stray, *group], 32)
    assert by_members(groups).get(frozenset(w.tokens for w in group)) == len(SHOTS)


def test_random_contexts_are_partitioned_exactly_once() -> None:
    rng = random.Random(0)
    blocks = [tuple(rng.randrange(50) for _ in range(n)) for n in (10, 40, 70, 120)]
    for trial in range(40):
        works, seen = [], set()
        for _ in range(rng.randint(1, 30)):
            base = rng.choice(blocks)
            cut = rng.randint(0, len(base))
            tokens = base[:cut] + tuple(rng.randrange(50) for _ in range(rng.randint(1, 6)))
            if tokens not in seen:  # prefix_groups gets distinct contexts from group_by_context
                seen.add(tokens)
                works.append(work(tokens))
        min_prefix = rng.choice([1, 8, 32])
        groups = check_partition(works, min_prefix)
        for g in groups:
            if g.prefix_len:
                # never more than the longest common prefix minus the one kept token
                shared = min(lcp(g.contexts[0].tokens, w.tokens) for w in g.contexts)
                shortest = min(len(w.tokens) for w in g.contexts)
                assert g.prefix_len == min(shared, shortest - 1), trial


def test_batches_cover_items_in_order() -> None:
    items = list(range(10))
    assert batches(items, 3) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert batches(items, 64) == [items]
    assert batches([], 4) == []
