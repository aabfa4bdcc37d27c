"""The HF engine's fast paths (shared contexts, shared few-shot prefixes, KV-cached continuation
tails, batching) against the slow, obvious computation: one full forward pass per request."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch

from gnomon.data import load_split
from gnomon.engines.base import (
    FailedResult,
    GenerateRequest,
    GenerateResult,
    ScoreRequest,
    ScoreResult,
)
from gnomon.engines.hf import HFEngine
from gnomon.errors import UserError
from gnomon.hub import resolve
from gnomon.prompts import Renderer, Sample

TOL = 1e-4  # engine vs naive forward pass
SAME = 1e-5  # engine vs itself at another batch size
SHORT_WINDOW = 48


# ----------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def model_dir(request: pytest.FixtureRequest) -> Path:
    return request.getfixturevalue(f"{request.param}_dir")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def engine(model_dir: Path) -> HFEngine:
    return HFEngine(str(model_dir), device="cpu", dtype="float32", batch_size=8)


@pytest.fixture(scope="module")
def short_engine(model_dir: Path) -> HFEngine:
    return HFEngine(
        str(model_dir), device="cpu", dtype="float32", batch_size=4, max_length=SHORT_WINDOW
    )


def render(data_root: Path, bench: str, split: str, shots: int | None = None) -> list[Sample]:
    spec = resolve(bench)
    rows = load_split(spec, split, data_root)
    pool = load_split(spec, spec.fewshot.split, data_root) if spec.fewshot.split else []
    return Renderer(spec, shots).render(rows, pool, spec.fewshot.split == split)


@pytest.fixture(scope="module")
def mmlu(data_root: Path) -> list[Sample]:
    return render(data_root, "mmlu", "test")


@pytest.fixture(scope="module")
def arc(data_root: Path) -> list[Sample]:
    return render(data_root, "arc_easy", "test")


def mmlu_requests(samples: Sequence[Sample]) -> list[ScoreRequest]:
    return [ScoreRequest(s.context, " " + c) for s in samples for c in s.choices]


def arc_requests(samples: Sequence[Sample]) -> list[ScoreRequest]:
    return [ScoreRequest(s.context, " " + c) for s in samples for c in s.choices]


def one_subject(samples: Sequence[Sample], n: int) -> list[Sample]:
    subject = samples[0].cluster
    chosen = [s for s in samples if s.cluster == subject][:n]
    assert len(chosen) == n
    return chosen


def collect(engine: HFEngine, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
    """Run `score`, checking that every request index is answered exactly once."""
    got: dict[int, ScoreResult] = {}
    for batch in engine.score(requests):
        assert isinstance(batch, list) and batch
        for index, result in batch:
            assert index not in got, f"request {index} answered twice"
            got[index] = result
    assert sorted(got) == list(range(len(requests)))
    return [got[i] for i in range(len(requests))]


def naive(engine: HFEngine, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
    """One full forward pass per request over lm-evaluation-harness's window, no caches."""
    window = engine.max_length
    out = []
    for req in requests:
        ctx, cont = engine.encode_pair(req.context, req.continuation)
        whole = ctx + cont
        inp = whole[-(window + 1) :][:-1]
        with torch.inference_mode():
            logits = engine.model(input_ids=torch.tensor([inp])).logits[0]
        logp = torch.log_softmax(logits[-len(cont) :].float(), dim=-1)
        target = torch.tensor(cont)
        out.append(
            ScoreResult(
                float(logp.gather(1, target[:, None]).sum()),
                bool((logp.argmax(-1) == target).all()),
                len(whole) > window + 1,
            )
        )
    return out


def assert_close(got: list[ScoreResult], want: list[ScoreResult], tol: float) -> None:
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        # float32 sums of many tokens: allow one-ulp noise on large values too
        assert abs(g.logprob - w.logprob) <= tol + 1e-7 * abs(w.logprob), (i, g, w)
        assert g.is_greedy == w.is_greedy, (i, g, w)
        assert g.truncated == w.truncated, (i, g, w)


def greedy_tokens(engine: HFEngine, ids: list[int], n: int) -> list[int]:
    """Greedy decoding by hand: a full forward pass per new token, stopping at EOS."""
    ids, new = list(ids), []
    for _ in range(n):
        with torch.inference_mode():
            nxt = int(engine.model(input_ids=torch.tensor([ids])).logits[0, -1].argmax())
        new.append(nxt)
        if nxt == engine.tokenizer.eos_token_id:
            break
        ids.append(nxt)
    return new


def greedy_requests(engine: HFEngine, contexts: Sequence[str]) -> list[ScoreRequest]:
    """Continuations the model itself would write, so `is_greedy` is True for some requests."""
    out = []
    for ctx in contexts:
        for n in (1, 3):
            new = greedy_tokens(engine, engine.encode(ctx), n)
            text = engine.tokenizer.decode(new)
            if text.strip() and engine.encode_pair(ctx, text)[1] == new:
                out.append(ScoreRequest(ctx, text))
    return out


def edge_requests() -> list[ScoreRequest]:
    return [
        ScoreRequest("Question: Which planet moves the river?\nAnswer: ", "B"),  # trailing space
        ScoreRequest("The teacher holds the lantern.\n\n", "The river moves."),
        ScoreRequest("A. small ring\nAnswer:\t ", "the heavy planet"),
        ScoreRequest("", "The bright river moves slowly."),  # empty context
        ScoreRequest("", " A"),
        ScoreRequest("Question: Which planet moves the river?\nAnswer:", " B"),
        ScoreRequest("Question: Which planet moves the river?\nAnswer:", " B"),  # duplicate
    ]


# ----------------------------------------------------------------- tokenisation


def test_encode_pair_moves_trailing_whitespace_into_the_continuation(engine: HFEngine) -> None:
    ctx, cont = engine.encode_pair("Question: x\nAnswer: ", "B")
    assert (ctx, cont) == engine.encode_pair("Question: x\nAnswer:", " B")
    whole = engine.encode("Question: x\nAnswer: B")
    assert ctx + cont == whole
    assert ctx == engine.encode("Question: x\nAnswer:")
    ctx, cont = engine.encode_pair("", "the river")
    assert ctx == [engine.prefix_token_id]
    assert cont == engine.tokenizer.encode("the river", add_special_tokens=False)


# ----------------------------------------------------------------- scoring


def test_mmlu_five_shot_matches_naive(engine: HFEngine, mmlu: list[Sample]) -> None:
    requests = mmlu_requests(one_subject(mmlu, 4) + mmlu[-2:])  # two subjects: two prefix groups
    assert all(len(engine.encode_pair(r.context, r.continuation)[1]) == 1 for r in requests)
    assert_close(collect(engine, requests), naive(engine, requests), TOL)


def test_arc_multi_token_continuations_match_naive(engine: HFEngine, arc: list[Sample]) -> None:
    requests = arc_requests(arc[:6])
    lengths = {len(engine.encode_pair(r.context, r.continuation)[1]) for r in requests}
    assert len(lengths) >= 4 and min(lengths) <= 2 < 10 < max(lengths)
    assert_close(collect(engine, requests), naive(engine, requests), TOL)


def test_mixture_matches_naive_at_every_batch_size(
    engine: HFEngine, mmlu: list[Sample], arc: list[Sample]
) -> None:
    shots = one_subject(mmlu, 3)
    requests = (
        mmlu_requests(shots)
        # multi-token continuations on top of a shared few-shot prefix
        + [ScoreRequest(s.context, f" {'ABCD'[i]}. text {i}") for s in shots for i in range(2)]
        + arc_requests(arc[6:10])
        + edge_requests()
        + greedy_requests(engine, [shots[0].context, arc[0].context, "The river"])
    )
    random.Random(0).shuffle(requests)
    want = naive(engine, requests)
    assert any(w.is_greedy for w in want) and not all(w.is_greedy for w in want)
    results = {}
    for batch_size in (1, 3, 64):
        engine.batch_size = batch_size
        try:
            results[batch_size] = collect(engine, requests)
        finally:
            engine.batch_size = 8
        assert_close(results[batch_size], want, TOL)
    assert_close(results[3], results[1], SAME)
    assert_close(results[64], results[1], SAME)


def test_empty_request_list(engine: HFEngine) -> None:
    assert list(engine.score([])) == []
    assert list(engine.generate([])) == []


def boundary_requests(engine: HFEngine, total: int) -> ScoreRequest:
    """A request whose context + continuation is exactly `total` tokens."""
    text = "The bright river moves the quiet planet near the forest and the teacher holds"
    words = text.split(" ")
    for cont in (" the lantern", " lantern", " the small lantern slowly"):
        for n in range(1, 200):
            ctx = " ".join(words[i % len(words)] for i in range(n))
            c, k = engine.encode_pair(ctx, cont)
            if len(c) + len(k) == total:
                return ScoreRequest(ctx, cont)
    raise AssertionError(f"no request of exactly {total} tokens")


def test_truncation_matches_naive_on_the_left_truncated_input(
    short_engine: HFEngine, mmlu: list[Sample], arc: list[Sample]
) -> None:
    assert short_engine.max_length == SHORT_WINDOW
    requests = (
        mmlu_requests(one_subject(mmlu, 2))  # ~400-token contexts
        + arc_requests(arc[:4])  # some fit, some do not, depending on the answer's length
        + [ScoreRequest(arc[0].context, " " + " ".join(arc[0].choices))]  # a long continuation
        + edge_requests()
        + [
            boundary_requests(short_engine, SHORT_WINDOW + 1),  # fits exactly
            boundary_requests(short_engine, SHORT_WINDOW + 2),  # one token too many
        ]
    )
    want = naive(short_engine, requests)
    assert want[-2].truncated is False and want[-1].truncated is True
    assert 5 < sum(w.truncated for w in want) < len(want) - 5
    for batch_size in (1, 3, 64):
        short_engine.batch_size = batch_size
        try:
            assert_close(collect(short_engine, requests), want, TOL)
        finally:
            short_engine.batch_size = 4


def test_continuation_longer_than_the_window_is_a_user_error(short_engine: HFEngine) -> None:
    words = " ".join(["the river moves"] * 40)
    with pytest.raises(UserError, match="window"):
        collect(short_engine, [ScoreRequest("Question:", " " + words)])


def test_truncated_flag_is_per_request_when_fitted_contexts_coincide(qwen2_dir: Path) -> None:
    probe = HFEngine(str(qwen2_dir), device="cpu", dtype="float32")
    tail = " the river moves the bright planet near the forest"
    long_ctx, short_ctx = "Hello" + tail, tail
    a, b = probe.encode(long_ctx), probe.encode(short_ctx)
    cut = len(a) - len(b)
    assert cut > 0 and a[cut:] == b  # qwen2 has no BOS: the short context is a token suffix
    cont = " lantern"
    n_cont = len(probe.encode_pair(long_ctx, cont)[1])
    # a window that cuts exactly `cut` tokens off the long context and fits the short one
    window = len(a) + n_cont - cut - 1
    eng = HFEngine(str(qwen2_dir), device="cpu", dtype="float32", max_length=window)
    requests = [ScoreRequest(long_ctx, cont), ScoreRequest(short_ctx, cont)]
    want = naive(eng, requests)
    assert [w.truncated for w in want] == [True, False]
    assert_close(collect(eng, requests), want, TOL)


def test_prefix_reuse_saves_work(engine: HFEngine, mmlu: list[Sample]) -> None:
    requests = mmlu_requests(one_subject(mmlu, 5))
    assert len(requests) == 20
    naive_tokens = 0
    for r in requests:
        ctx, cont = engine.encode_pair(r.context, r.continuation)
        naive_tokens += len(ctx) + len(cont) - 1
    engine.tokens_computed = 0
    results = collect(engine, requests)
    assert 0 < engine.tokens_computed < 0.4 * naive_tokens
    assert_close(results, naive(engine, requests), TOL)


# ----------------------------------------------------------------- generation


def collect_gen(engine: HFEngine, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
    got: dict[int, GenerateResult] = {}
    for batch in engine.generate(requests):
        for index, result in batch:
            assert index not in got
            got[index] = result
    assert sorted(got) == list(range(len(requests)))
    return [got[i] for i in range(len(requests))]


GEN_CONTEXTS = [
    "Question: Tom has 3 apples. He buys 2 more. How many apples does Tom have?\nAnswer:",
    "The river",
    "A",
    "The following are multiple choice questions (with answers) about world religions.\n\n"
    "Which of the following best describes the temple?\nA. ring\nB. monk\nAnswer:",
    "Skiing: the small river moves slowly",
]


def alone(engine: HFEngine, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
    old = engine.batch_size
    engine.batch_size = 1
    try:
        return [collect_gen(engine, [r])[0] for r in requests]
    finally:
        engine.batch_size = old


def test_batched_greedy_generation_equals_generating_alone(engine: HFEngine) -> None:
    sizes = (12, 7, 12, 3, 9)
    requests = [GenerateRequest(c, (), n) for c, n in zip(GEN_CONTEXTS, sizes, strict=True)]
    single = alone(engine, requests)
    assert collect_gen(engine, requests) == single
    # and alone equals greedy decoding by hand, token by token
    for req, res in zip(requests, single, strict=True):
        new = greedy_tokens(engine, engine.encode(req.context), req.max_tokens)
        assert res.text == engine.tokenizer.decode(new, skip_special_tokens=True)
        assert res.truncated is False


def test_max_tokens_is_respected(engine: HFEngine) -> None:
    ctx = GEN_CONTEXTS[0]
    new = greedy_tokens(engine, engine.encode(ctx), 16)
    assert len(new) == 16  # the tiny models do not emit EOS here
    sizes = (16, 1, 2, 5)
    texts = [r.text for r in collect_gen(engine, [GenerateRequest(ctx, (), n) for n in sizes])]
    for n, text in zip(sizes, texts, strict=True):
        assert text == engine.tokenizer.decode(new[:n], skip_special_tokens=True)
        assert texts[0].startswith(text)
    assert len(set(texts)) == len(sizes)


def pick_stop(context: str, text: str) -> tuple[str, int] | None:
    """A substring of the generated text whose first occurrence (also across the prompt
    boundary) is strictly inside the text."""
    for start in range(max(1, len(text) // 3), len(text) - 4):
        for size in (4, 3, 5):
            stop = text[start : start + size]
            if (
                stop.strip()
                and text.find(stop) == start
                and (context + text).find(stop) == len(context) + start
            ):
                return stop, start
    return None


@pytest.fixture(scope="module")
def full_generations(engine: HFEngine) -> list[tuple[str, str, str, int]]:
    """(context, 20-token greedy text, a stop string it contains, where the stop starts)."""
    requests = [GenerateRequest(c, (), 20) for c in GEN_CONTEXTS]
    out = []
    for ctx, res in zip(GEN_CONTEXTS, collect_gen(engine, requests), strict=True):
        picked = pick_stop(ctx, res.text)
        if picked is not None:
            out.append((ctx, res.text, *picked))
    assert len(out) >= 2
    return out


def test_stop_sequences_cut_the_text_before_the_stop(
    engine: HFEngine, full_generations: list[tuple[str, str, str, int]]
) -> None:
    (ctx, full, stop, start), (ctx2, full2, stop2, start2) = full_generations[:2]
    assert collect_gen(engine, [GenerateRequest(ctx, (stop,), 20)])[0].text == full[:start]
    # several stops: the earliest wins; one that never appears changes nothing
    later = full2[start2 + 2 :]
    got = collect_gen(engine, [GenerateRequest(ctx2, ("@@@", later, stop2), 20)])[0].text
    assert got == full2[:start2]
    assert collect_gen(engine, [GenerateRequest(ctx, ("@@@",), 20)])[0].text == full


def test_one_requests_stop_string_does_not_cut_another_request(
    engine: HFEngine, full_generations: list[tuple[str, str, str, int]]
) -> None:
    ctx, full, stop, start = full_generations[0]
    requests = [GenerateRequest(ctx, (stop,), 20), GenerateRequest(ctx, (), 20)]
    got = collect_gen(engine, requests)
    assert got[0].text == full[:start]  # the request that asked for the stop
    assert got[1].text == full  # alone, this request generates past the other's stop string


def test_generation_truncates_long_prompts_from_the_left(short_engine: HFEngine) -> None:
    long_ctx = " ".join(["The bright river moves the quiet planet."] * 12)
    ids = short_engine.encode(long_ctx)
    assert len(ids) > SHORT_WINDOW
    requests = [GenerateRequest(long_ctx, (), 8), GenerateRequest("The river", (), 8)]
    got = collect_gen(short_engine, requests)
    assert [g.truncated for g in got] == [True, False]
    new = greedy_tokens(short_engine, ids[-(SHORT_WINDOW - 8) :], 8)
    assert got[0].text == short_engine.tokenizer.decode(new, skip_special_tokens=True)
    # a budget that fills the window leaves no room for any prompt: that request fails, alone
    both = [GenerateRequest("The river", (), SHORT_WINDOW), GenerateRequest("The river", (), 8)]
    failed, fine = collect_gen(short_engine, both)
    assert isinstance(failed, FailedResult) and "max_tokens" in failed.reason
    assert f"{SHORT_WINDOW}-token window" in failed.reason
    assert isinstance(fine, GenerateResult) and fine.text == got[1].text
