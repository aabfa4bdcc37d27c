"""Few-shot generation through gnomon's own decoding loop (`engines/hf_decode.py`): a shared
prefix runs once, rows of different lengths decode as one batch, finished rows leave it, and what
each row generates is what `model.generate` generates for its prompt alone, cut before the first
stop string in the generated text (lm-evaluation-harness's rule)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
import torch

from gnomon.engines.base import GenerateRequest, GenerateResult
from gnomon.engines.hf import HFEngine
from gnomon.engines.hf_answers import RowReader
from gnomon.engines.hf_decode import KV_BUDGET, MAX_ROWS_PER_SLOT, plan, rows_per_batch
from gnomon.engines.sampling import SeededSampler
from gnomon.tiny import synthetic_rows

MAX_NEW = 24


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def model_dir(request: pytest.FixtureRequest) -> Path:
    return request.getfixturevalue(f"{request.param}_dir")


@pytest.fixture(scope="module")
def engine(model_dir: Path) -> HFEngine:
    engine = HFEngine(str(model_dir), device="cpu", dtype="float32", batch_size=8)
    assert engine._decoder() is not None  # the tests below exercise gnomon's loop, not a fallback
    return engine


def few_shot_prompts(shots: int = 4, questions: int = 8) -> list[str]:
    """GSM8K-format prompts: the same `shots` worked examples, then one question each."""
    pool = synthetic_rows("gsm8k", "train", shots)
    block = "".join(f"Question: {r['question']}\nAnswer: {r['answer']}\n\n" for r in pool)
    return [
        f"{block}Question: {r['question']}\nAnswer:"
        for r in synthetic_rows("gsm8k", "test", questions)
    ]


OTHERS = ["The river", "A", "Skiing: the small river moves slowly near the quiet harbor"]


def alone_tokens(engine: HFEngine, request: GenerateRequest) -> list[int]:
    """The reference: `model.generate` on this one prompt (left-truncated to the window), with
    EOS and (for sampling) the seeded processor the engine always used, for the whole budget:
    lm-evaluation-harness cuts at the first stop string afterwards, as `RowReader.read` does."""
    ids = engine.encode(request.context)[-(engine.max_length - request.max_tokens) :]
    processors = None
    if request.temperature > 0:
        from transformers import LogitsProcessorList

        processors = LogitsProcessorList([SeededSampler([request.temperature], [request.seed])])
    with torch.inference_mode():
        out = engine.model.generate(
            input_ids=torch.tensor([ids]),
            max_new_tokens=request.max_tokens,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            logits_processor=processors,
            pad_token_id=engine.pad_id,
        )
    return out[0, len(ids) :].tolist()


def alone(engine: HFEngine, request: GenerateRequest) -> GenerateResult:
    """The reference result: `alone_tokens` read as the engine reads a row."""
    room = engine.max_length - request.max_tokens
    full = engine.encode(request.context)
    reader = RowReader.of(engine.tokenizer, engine.model.generation_config.eos_token_id)
    new = alone_tokens(engine, request)
    return reader.read(new, request, len(full) > room, len(full[-room:]))


def collect(engine: HFEngine, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
    got: dict[int, GenerateResult] = {}
    for batch in engine.generate(requests):
        for index, result in batch:
            assert index not in got and not isinstance(result, str)
            got[index] = result  # type: ignore[assignment]
    assert sorted(got) == list(range(len(requests)))
    return [got[i] for i in range(len(requests))]


def stop_inside(text: str, at: float) -> str | None:
    """A 3-character piece of `text` starting near fraction `at` of it (a stop string that
    ends the generation part way)."""
    start = int(len(text) * at)
    piece = text[start : start + 3]
    return piece if piece.strip() else None


@pytest.fixture(scope="module")
def mixed_requests(engine: HFEngine) -> list[GenerateRequest]:
    """Few-shot prompts and unrelated ones; stop strings met early, late or never, GSM8K's own
    stops, and several budgets, so rows leave their batch at many different steps."""
    prompts = few_shot_prompts() + OTHERS
    requests = []
    for i, prompt in enumerate(prompts):
        full = alone(engine, GenerateRequest(prompt, (), MAX_NEW)).text
        stop = stop_inside(full, (0.15, 0.5, 0.85)[i % 3])
        requests.append(GenerateRequest(prompt, ("Question:", "\n\n"), MAX_NEW))
        requests.append(GenerateRequest(prompt, (stop, "@@") if stop else ("@@",), MAX_NEW))
        requests.append(GenerateRequest(prompt, (), (1, 5, 9)[i % 3]))
    return requests


def test_a_stop_string_begun_in_the_prompt_does_not_end_the_generation(engine: HFEngine) -> None:
    """A stop string counts in the generated text only: the prompt's last character and the
    generation's first ones together are not a stop (transformers' `StopStringCriteria` would
    have stopped there, and lm-evaluation-harness would not)."""
    prompts = few_shot_prompts(questions=4)
    requests = []
    for prompt in prompts:
        full = alone(engine, GenerateRequest(prompt, (), MAX_NEW)).text
        across = prompt[-1] + full[:2]
        assert across not in full  # met only across the prompt's end
        requests.append(GenerateRequest(prompt, (across,), MAX_NEW))
    want = [alone(engine, r) for r in requests]
    assert all(w.finish_reason == "length" and w.completion_tokens == MAX_NEW for w in want)
    assert collect(engine, requests) == want
    engine.model.generation_config.repetition_penalty = 1.5  # model.generate's path, the same
    del engine._own_decoder
    try:
        assert engine._decoder() is None
        assert all(r.completion_tokens == MAX_NEW for r in collect(engine, requests))
    finally:
        engine.model.generation_config.repetition_penalty = 1.0
        del engine._own_decoder


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_greedy_generation_equals_model_generate_on_each_prompt_alone(
    engine: HFEngine, mixed_requests: list[GenerateRequest], batch_size: int
) -> None:
    want = [alone(engine, r) for r in mixed_requests]
    assert sum(w.finish_reason == "stop" for w in want) >= 8  # stop strings really are hit
    engine.batch_size = batch_size
    try:
        assert collect(engine, mixed_requests) == want
    finally:
        engine.batch_size = 8


def test_seeded_samples_do_not_depend_on_the_batch_and_match_the_previous_path(
    engine: HFEngine,
) -> None:
    prompts = few_shot_prompts(questions=5) + OTHERS[:2]
    requests = [
        GenerateRequest(p, ("\n\n",) if i % 2 else (), 6 + 4 * (i % 3), temperature=1.0, seed=i)
        for i, p in enumerate(prompts)
    ]
    # the same prompt several times (pass@k): all of it but its last token is shared
    requests += [
        GenerateRequest(prompts[0], (), 8, temperature=0.8, seed=100 + k) for k in range(3)
    ]
    # before gnomon's loop, a sample came from model.generate with the seeded processor
    want = [alone(engine, r) for r in requests]
    assert collect(engine, requests) == want
    assert collect(engine, requests[::-1]) == want[::-1]
    assert [collect(engine, [r])[0] for r in requests] == want
    greedy = collect(engine, [GenerateRequest(r.context, r.until, r.max_tokens) for r in requests])
    assert [g.text for g in greedy] != [w.text for w in want]  # it did sample


def test_the_shared_prefix_is_computed_once_and_finished_rows_leave_the_batch(
    engine: HFEngine,
) -> None:
    prompts = few_shot_prompts(questions=6)
    budgets = [1, 2, 4, 8, 16, 24]
    requests = [GenerateRequest(p, (), n) for p, n in zip(prompts, budgets, strict=True)]
    ids = [engine.encode(p) for p in prompts]
    shared = 0
    while all(len(t) > shared + 1 and t[shared] == ids[0][shared] for t in ids):
        shared += 1
    rows_seen: list[int] = []
    hook = engine._base.register_forward_pre_hook(
        lambda _, args, kwargs: rows_seen.append(kwargs["input_ids"].shape[0]), with_kwargs=True
    )
    engine.tokens_computed = 0
    try:
        results = collect(engine, requests)
    finally:
        hook.remove()
    assert [r.completion_tokens for r in results] == budgets
    # the prefix once, each question's own tokens, and each generated token but the last
    fed = sum(n - 1 for n in budgets)
    assert engine.tokens_computed == shared + sum(len(t) - shared for t in ids) + fed
    naive = sum(map(len, ids)) + fed
    assert engine.tokens_computed < 0.35 * naive
    # a prefix pass of one row, one pass over the six questions, then one step per token,
    # each carrying only the rows still generating
    assert rows_seen == [1, 6, 5, 4, 4, 3, 3, 3, 3, *[2] * 8, *[1] * 8][: len(rows_seen)]
    assert len(rows_seen) == 2 + max(budgets) - 1


def test_a_generation_config_eos_id_ends_a_row_as_model_generate_ends_it(model_dir: Path) -> None:
    engine = HFEngine(str(model_dir), device="cpu", dtype="float32", batch_size=4)
    prompts = few_shot_prompts(questions=4)
    first = alone_tokens(engine, GenerateRequest(prompts[0], (), MAX_NEW))
    extra = first[len(first) // 2]  # a token the first row generates part way
    engine.model.generation_config.eos_token_id = [engine.tokenizer.eos_token_id, extra]
    requests = [GenerateRequest(p, (), MAX_NEW) for p in prompts]
    want = [alone(engine, r) for r in requests]
    assert want[0].completion_tokens < MAX_NEW and want[0].finish_reason == "stop"
    assert engine._decoder() is not None
    assert collect(engine, requests) == want


def test_left_truncated_prompts_decode_as_model_generate_on_the_kept_tokens(
    model_dir: Path,
) -> None:
    prompts = few_shot_prompts(shots=2, questions=4)
    probe = HFEngine(str(model_dir), device="cpu", dtype="float32")
    lengths = sorted(len(probe.encode(p)) for p in prompts)
    window = lengths[1] + 10  # the two longest prompts are cut from the left, the others fit
    engine = HFEngine(str(model_dir), device="cpu", dtype="float32", max_length=window)
    requests = [GenerateRequest(p, ("\n\n",), 10) for p in prompts] + [
        GenerateRequest(OTHERS[2], (), 10)
    ]
    want = [alone(engine, r) for r in requests]
    assert 1 <= sum(w.truncated for w in want) < len(want)
    assert collect(engine, requests) == want


def test_generate_tokens_ends_at_cancel_between_steps(engine: HFEngine) -> None:
    polls = []

    def cancel() -> bool:
        polls.append(1)
        return len(polls) >= 3

    ids = engine.encode(few_shot_prompts(questions=1)[0])
    [gen] = engine.generate_tokens([ids], max_tokens=MAX_NEW, cancel=cancel)
    assert 1 <= len(gen.tokens) <= 4
    [whole] = engine.generate_tokens([ids], max_tokens=MAX_NEW)
    assert whole.tokens[: len(gen.tokens)] == gen.tokens and len(whole.tokens) > 4


def test_a_generation_config_the_loop_does_not_reproduce_goes_through_model_generate(
    llama_dir: Path,
) -> None:
    engine = HFEngine(str(llama_dir), device="cpu", dtype="float32")
    engine.model.generation_config.repetition_penalty = 1.5
    assert engine._decoder() is None
    requests = [GenerateRequest(p, ("\n\n",), 12) for p in few_shot_prompts(questions=3)]
    assert collect(engine, requests) == [alone(engine, r) for r in requests]


def test_a_gpt2_model_decodes_through_the_loop(llama_dir: Path, tmp_path: Path) -> None:
    """Absolute position embeddings and a fused attention projection: another attention code
    path through the same loop."""
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tokenizer = AutoTokenizer.from_pretrained(llama_dir)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_embd=64,
        n_layer=2,
        n_head=4,
        n_positions=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)  # peaked logits: greedy choices far from ties
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    engine = HFEngine(str(tmp_path), device="cpu", dtype="float32", batch_size=3)
    assert engine._decoder() is not None
    requests = [GenerateRequest(p, ("\n\n",), 12) for p in few_shot_prompts(questions=4) + OTHERS]
    assert collect(engine, requests) == [alone(engine, r) for r in requests]


# ----------------------------------------------------------------- batch sizes, no model


def test_a_shared_prefix_lets_more_rows_into_a_batch() -> None:
    # no shared prefix: batch_size rows, as model.generate batches took them
    assert rows_per_batch(8, 0, 60, 256) == 8
    assert rows_per_batch(1, 1000, 60, 256) == 1
    # under a 1000-token few-shot block: the cache of 8 whole prompts holds 30 short rows
    assert rows_per_batch(8, 1000, 60, 256) == 8 + 7 * 1000 // 316 == 30
    assert rows_per_batch(4, 5000, 2, 1) == 4 * MAX_ROWS_PER_SLOT


def test_plan_groups_by_prefix_and_cuts_batches_by_the_budget() -> None:
    block = list(range(100, 400))  # 300 shared tokens
    few_shot = [block + [1000 + i] * (5 + i % 4) for i in range(40)]
    strays = [[1, 2, 3], [9] * 50, [4, 5]]
    prompts = few_shot + strays
    groups = plan(prompts, [32] * len(prompts), batch_size=4, min_prefix=32)
    shared, loose = groups
    assert shared.prefix_len == 300 and loose.prefix_len == 0
    assert sorted(i for b in shared.batches for i in b) == list(range(40))
    assert sorted(i for b in loose.batches for i in b) == [40, 41, 42]
    assert max(map(len, shared.batches)) == rows_per_batch(4, 300, 8, 32) > 4
    # within a group, longest first: the first batch's first row has the widest suffix
    assert len(prompts[shared.batches[0][0]]) == max(map(len, few_shot))


def test_a_small_model_fills_its_cache_budget_with_rows() -> None:
    # 1 KiB of keys and values per token: 64 rows of 316 tokens are far under the budget
    assert rows_per_batch(8, 1000, 60, 256, token_bytes=1024) == 8 * MAX_ROWS_PER_SLOT
    # a large model's rows are bounded by memory: 50 KiB per token
    big = rows_per_batch(8, 1000, 60, 256, token_bytes=50 * 1024)
    assert big == KV_BUDGET // (50 * 1024 * 316) and 30 <= big < 8 * MAX_ROWS_PER_SLOT
    # without a shared prefix too, but a whole prompt per row
    assert rows_per_batch(8, 0, 900, 256, token_bytes=1024) == 8 * MAX_ROWS_PER_SLOT
    assert rows_per_batch(8, 0, 900, 256, token_bytes=100 * 1024) == 8  # the floor stays


def test_a_prefix_a_few_prompts_happen_to_share_is_not_worth_its_own_batches() -> None:
    # 5 shots drawn at random from a small pool: pairs of prompts open with the same 100-token
    # shot, and each pair as a group would decode in a batch of its own, 64 calls for 2 rows
    shots = [list(range(1000 * k, 1000 * k + 100)) for k in range(20)]
    prompts = [shots[i // 2] + [5000 + i] * 400 for i in range(40)]
    kept = plan(prompts, [64] * 40, batch_size=8, min_prefix=32, call_cost=0.0)
    assert len(kept) == 20 and all(g.prefix_len == 100 for g in kept)
    pooled = plan(prompts, [64] * 40, batch_size=8, min_prefix=32, call_cost=15.0)
    assert [g.prefix_len for g in pooled] == [0]
    assert sum(map(len, pooled[0].batches)) == 40 and len(pooled[0].batches) == 5
    # a few-shot block shared by all of them still is: it saves far more than a batch costs
    block = list(range(100, 900))
    few_shot = [block + [5000 + i] * 40 for i in range(40)]
    (group,) = plan(few_shot, [64] * 40, batch_size=8, min_prefix=32, call_cost=15.0)
    assert group.prefix_len == 800
