"""The scoring engine's speed tricks change no number: continuations tokenised against an anchor
equal lm-evaluation-harness's full tokenisation, the shared-prefix attention equals the expanded
cache and a full forward pass (also on a deep model, to the tolerance the README states), the
thread policy follows the machine's real load, and the planner drops sharing that costs more
forward calls than it saves."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import tokenizers as tk
import torch
from transformers import PreTrainedTokenizerFast

from gnomon.engines import threads as thread_policy
from gnomon.engines.base import ScoreRequest, ScoreResult
from gnomon.engines.hf import HFEngine
from gnomon.engines.hf_tokens import PairEncoder, pipeline_is_local
from gnomon.engines.planning import ContextWork, prefix_groups
from gnomon.text import shown
from gnomon.tiny import corpus

# the loglikelihood tolerance the README states: float32 sums in a different order
ABS_TOL = 1e-4
REL_TOL = 1e-5

# ----------------------------------------------------------------- tokenisation

PIECES = [
    "the", " river", " Answer:", "\n", "\n\n", "  ", "\t", " 123", "4567", "3.14", "!", "?!",
    " é", "e\u0301", " 中文", "🙂", "\u200b", " don't", "'s", " A.", " (B)", "\ud800", "x\udfff",
    "      ", " \n ", "ß", "İ",
]  # fmt: skip
CONTINUATIONS = [
    " A", "A", " B. text 2", "\n\nAnswer", "\u0301", "  x", "123", "🙂", " ", "s", "\n", "'t",
]  # fmt: skip


def random_pairs(seed: int, n: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    shots = "".join(rng.choice(PIECES) for _ in range(200))  # a shared few-shot block
    pairs = []
    for _ in range(n):
        question = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 40)))
        context = (shots + question).rstrip() or "x"
        if rng.random() < 0.2:  # a context sharing nothing
            context = "".join(rng.choice(PIECES) for _ in range(30)).rstrip() or "y"
        for cont in rng.sample(CONTINUATIONS, 4):
            pairs.append((context, cont))
    return pairs


def full_tokenisation(tok: PreTrainedTokenizerFast, pairs: list[tuple[str, str]]) -> list:
    """lm-evaluation-harness's rule, one text at a time."""
    out = []
    for context, cont in pairs:
        ctx = tok(shown(context))["input_ids"]
        whole = tok(shown(context + cont))["input_ids"]
        out.append((ctx, whole[len(ctx) :]))
    return out


def trained(
    model: tk.models.Model, pre: object, normalizer: object = None
) -> PreTrainedTokenizerFast:
    tok = tk.Tokenizer(model)
    tok.pre_tokenizer = pre
    if normalizer is not None:
        tok.normalizer = normalizer
    if isinstance(model, tk.models.WordPiece):
        trainer: tk.trainers.Trainer = tk.trainers.WordPieceTrainer(
            vocab_size=400, special_tokens=["[UNK]"]
        )
    else:
        trainer = tk.trainers.BpeTrainer(vocab_size=400, special_tokens=["<s>"])
    tok.train_from_iterator(corpus(), trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]")


def tokenizers_under_test(llama_dir: Path, qwen2_dir: Path) -> dict[str, Any]:
    from transformers import AutoTokenizer

    return {
        "byte-level (llama)": AutoTokenizer.from_pretrained(llama_dir),
        "regex split + byte-level (qwen2)": AutoTokenizer.from_pretrained(qwen2_dir),
        "metaspace bpe": trained(
            tk.models.BPE(), tk.pre_tokenizers.Metaspace(prepend_scheme="always")
        ),
        "wordpiece, lowercase": trained(
            tk.models.WordPiece(unk_token="[UNK]"),
            tk.pre_tokenizers.BertPreTokenizer(),
            tk.normalizers.Lowercase(),
        ),
    }


def test_anchored_tokenisation_equals_full_tokenisation(llama_dir: Path, qwen2_dir: Path) -> None:
    pairs = random_pairs(0, 60)
    for name, tok in tokenizers_under_test(llama_dir, qwen2_dir).items():
        assert pipeline_is_local(tok), name
        encoder = PairEncoder(tok, shown)
        got = encoder.encode_pairs(pairs)
        assert encoder.fast, f"{name}: the shortcut turned itself off"
        assert encoder.anchored > len(pairs) // 2, f"{name}: the shortcut was hardly used"
        assert encoder.derived > 10, f"{name}: no context reused the few-shot block's tokens"
        assert got == full_tokenisation(tok, pairs), name


def test_a_tokenizer_that_is_not_local_takes_the_full_path() -> None:
    tok = trained(tk.models.BPE(), None)  # no pre-tokenizer: merges may cross anything
    assert not pipeline_is_local(tok)
    pairs = random_pairs(1, 10)
    encoder = PairEncoder(tok, shown)
    assert encoder.encode_pairs(pairs) == full_tokenisation(tok, pairs)
    assert encoder.anchored == encoder.derived == 0


# ----------------------------------------------------------------- shared-prefix attention


def few_shot_requests(engine: HFEngine, n: int, seed: int) -> list[ScoreRequest]:
    """Questions after one long shared block, with one- and many-token continuations."""
    rng = random.Random(seed)
    words = corpus()[0].split()
    shots = " ".join(rng.choice(words) for _ in range(150))
    out = []
    for i in range(n):
        question = " ".join(rng.choice(words) for _ in range(rng.randint(3, 30)))
        context = f"{shots}\nQuestion {i}: {question}\nAnswer:"
        for cont in (" A", " B", " the river " * rng.randint(1, 3), f" {question[:20]}"):
            out.append(ScoreRequest(context, cont))
    return out


def scores(engine: HFEngine, requests: list[ScoreRequest]) -> list[ScoreResult]:
    got: dict[int, ScoreResult] = {}
    for batch in engine.score(requests):
        got.update(batch)
    return [got[i] for i in range(len(requests))]


def naive(engine: HFEngine, requests: list[ScoreRequest]) -> list[float]:
    out = []
    for req in requests:
        ctx, cont = engine.encode_pair(req.context, req.continuation)
        ids = (ctx + cont)[-(engine.max_length + 1) :][:-1]
        with torch.inference_mode():
            logits = engine.model(input_ids=torch.tensor([ids])).logits[0, -len(cont) :]
        logp = torch.log_softmax(logits.double(), dim=-1)
        out.append(float(logp.gather(1, torch.tensor(cont)[:, None]).sum()))
    return out


def assert_within_tolerance(got: list[ScoreResult], want: list[float]) -> None:
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert abs(g.logprob - w) <= ABS_TOL + REL_TOL * abs(w), (i, g.logprob, w)


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_shared_prefix_attention_equals_expanded_cache_and_full_pass(
    arch: str, request: pytest.FixtureRequest
) -> None:
    engine = HFEngine(
        str(request.getfixturevalue(f"{arch}_dir")), device="cpu", dtype="float32", threads=1
    )
    assert engine.describe()["shared_prefix_attention"] == "True"
    requests = few_shot_requests(engine, 12, seed=3)
    engine.batch_size = 5
    shared = scores(engine, requests)
    engine._shared = False
    expanded = scores(engine, requests)
    for a, b in zip(shared, expanded, strict=True):
        assert abs(a.logprob - b.logprob) <= 1e-5 + 1e-6 * abs(b.logprob)
        assert a.is_greedy == b.is_greedy
    assert_within_tolerance(shared, naive(engine, requests))


def test_a_sliding_window_model_keeps_the_expanded_cache(tmp_path: Path) -> None:
    from gnomon.tiny import build_model

    model = build_model(tmp_path / "m", "qwen2", seed=4)
    config = (model / "config.json").read_text()
    (model / "config.json").write_text(
        config.replace('"use_sliding_window": false', '"use_sliding_window": true').replace(
            '"sliding_window": null', '"sliding_window": 16'
        )
    )
    engine = HFEngine(str(model), device="cpu", dtype="float32", threads=1)
    if engine.model.config.sliding_window != 16:
        pytest.skip("this transformers version drops the window from a qwen2 config")
    assert engine.describe()["shared_prefix_attention"] == "False"
    requests = few_shot_requests(engine, 3, seed=5)
    assert_within_tolerance(scores(engine, requests), naive(engine, requests))


def test_deep_model_stays_within_the_stated_tolerance(tmp_path: Path) -> None:
    """24 layers: float32 differences grow with depth; the stated tolerance still holds."""
    from gnomon.tiny import build_model

    model = build_model(
        tmp_path / "deep", "llama", hidden_size=64, num_layers=24, num_heads=4,
        num_kv_heads=2, vocab_size=1024, seed=6,
    )  # fmt: skip
    engine = HFEngine(str(model), device="cpu", dtype="float32", threads=1)
    requests = few_shot_requests(engine, 10, seed=7)
    assert_within_tolerance(scores(engine, requests), naive(engine, requests))


# ----------------------------------------------------------------- threads


def stat_file(tmp_path: Path, busy: int, idle: int) -> Path:
    path = tmp_path / f"stat-{busy}-{idle}"
    # cpu0: user nice system idle iowait irq softirq steal (busy split over user and system)
    path.write_text(f"cpu  0 0 0 0 0 0 0 0\ncpu0 {busy // 2} 0 {busy - busy // 2} {idle} 0 0 0 0\n")
    return path


def test_free_cores_subtracts_this_process_own_time() -> None:
    before = thread_policy._Sample(0.0, (0, 0), 0.0)
    # 2 cores, 2 s: 400 ticks in all, 300 busy; this process used 1 core-second of them
    after = thread_policy._Sample(2.0, (300, 400), 1.0)
    assert thread_policy.free_cores(before, after, 2) == pytest.approx(1.0)
    assert thread_policy.threads_for(1.0, 2) == 1
    assert thread_policy.threads_for(1.9, 2) == 2
    assert thread_policy.threads_for(0.0, 2) == 1
    assert thread_policy.free_cores(before, thread_policy._Sample(2.0, None, 1.0), 2) is None


def test_busy_ticks_reads_only_the_usable_cpus(tmp_path: Path) -> None:
    path = tmp_path / "stat"
    path.write_text(
        "cpu  9 9 9 9 9 9 9 9\ncpu0 10 0 10 80 0 0 0 0\ncpu1 50 0 50 0 0 0 0 0\nintr 1 2 3\n"
    )
    assert thread_policy._busy_ticks([0], path) == (20, 100)
    assert thread_policy._busy_ticks([0, 1], path) == (120, 200)
    assert thread_policy._busy_ticks([5], path) is None


def test_asked_threads_are_used_as_given() -> None:
    before = torch.get_num_threads()
    try:
        policy = thread_policy.ThreadPolicy(1)
        policy.tick()
        assert torch.get_num_threads() == 1 and policy.describe() == "1"
    finally:
        torch.set_num_threads(before)


def test_automatic_threads_back_off_when_other_processes_take_every_core() -> None:
    cores = thread_policy.usable_cores()
    burners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(len(cores))
    ]
    before = torch.get_num_threads()
    try:
        time.sleep(0.3)
        policy = thread_policy.ThreadPolicy(None)
        time.sleep(0.5)
        policy.tick()
        assert policy.current == 1, policy.describe()
        assert policy.describe() == "auto (1)"
    finally:
        for p in burners:
            p.kill()
            p.wait()
        torch.set_num_threads(before)


# ----------------------------------------------------------------- planning


def test_sharing_that_costs_more_calls_than_it_saves_is_dropped() -> None:
    shared = tuple(range(100, 140))  # a 40-token shared prefix
    works = [ContextWork((*shared, i, i + 1)) for i in range(3)]
    (group,) = prefix_groups(works, min_prefix=32, call_cost=0.0)
    assert group.prefix_len == 40
    # 3 contexts save 2 x 40 = 80 tokens: kept below 40 tokens per call, dropped above
    assert prefix_groups(works, min_prefix=32, call_cost=39.0)[0].prefix_len == 40
    (loners,) = prefix_groups(works, min_prefix=32, call_cost=41.0)
    assert loners.prefix_len == 0 and len(loners.contexts) == 3


# ----------------------------------------------------------------- request keys


def test_score_request_keys_hash_the_context_once_and_equal_the_canonical_form() -> None:
    from gnomon.requests import canonical_key, request_key

    rng = random.Random(8)
    alphabet = [*PIECES, '"', "\\", "\x00", "\x1f", "</script>", "\ud83d", "\ude00", "\u2028"]
    for _ in range(300):
        context = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        for cont in rng.sample([*CONTINUATIONS, '"', "\\n", ""], 3):
            for model_key in ("hf:local:abc|float32", 'odd "key" \ud800'):
                req = ScoreRequest(context, cont)
                assert request_key(model_key, req) == canonical_key(model_key, req)
