"""`gnomon serve` computes a list of prompts together, and a few-shot block once across requests.

What it computes must not depend on how it was asked: a list answers each prompt exactly as a
request of its own would (numbers, alternatives, spelling, offsets), and a prompt whose start was
computed for an earlier request gets the numbers a fresh server computes. Both are checked
against a plain forward pass of the whole prompt, the definition of the numbers.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch
from loopback import running

from gnomon.engines.hf import HFEngine
from gnomon.engines.hf_echo import EchoScorer
from gnomon.serve.app import create_app
from gnomon.serve.logprobs import TokenTexts, token_texts
from gnomon.serve.model import Server
from gnomon.serve.scheduler import Cancelled

NAME = "tiny"
FEW_SHOT = (
    "The following are questions about rivers.\n\nQuestion: Which river is old?\nA. The small one\n"
    "B. The old one\nAnswer: B\n\nQuestion: Who walks near the garden?\nA. The doctor\n"
    "B. Maria\nAnswer: A\n\n"
)
QUESTION = FEW_SHOT + "Question: Which river moves most slowly?\nA. The small river\nAnswer:"
PROMPTS = [
    QUESTION + " A",
    QUESTION + " B",
    QUESTION + " The small river moves slowly near the ancient garden",  # longer
    QUESTION,  # the shared part itself
    "Maria carries the heavy lantern",  # shares nothing (but BOS, where there is one)
    QUESTION + " A",  # twice
]


def _engine(path: Path) -> HFEngine:
    return HFEngine(str(path), device="cpu", dtype="float32", batch_size=4)


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def model_dir(request, llama_dir: Path, qwen2_dir: Path) -> Path:
    return {"llama": llama_dir, "qwen2": qwen2_dir}[request.param]


@pytest.fixture
def served(model_dir: Path) -> Iterator[tuple[HFEngine, httpx.Client]]:
    """A fresh server: nothing kept from another test."""
    engine = _engine(model_dir)
    with running(create_app(engine, NAME)) as url, httpx.Client(base_url=url, timeout=60) as c:
        yield engine, c


def _echo(client: httpx.Client, prompt: str | list[str], top: int = 3) -> list[dict]:
    body = {"model": NAME, "prompt": prompt, "echo": True, "max_tokens": 0, "logprobs": top}
    response = client.post("/v1/completions", json=body)
    assert response.status_code == 200, response.text
    return response.json()["choices"]


def _forward(engine: HFEngine, text: str) -> list[float]:
    """Each token's log-probability from one plain forward pass of the whole prompt."""
    ids = engine.encode(text)
    with torch.inference_mode():
        logits = engine.model(input_ids=torch.tensor([ids])).logits[0].float()
    logp = torch.log_softmax(logits, -1)[torch.arange(len(ids) - 1), ids[1:]]
    return logp.tolist()


def _assert_same(a: dict, b: dict, tol: float = 1e-5) -> None:
    """Two `logprobs` objects: same tokens and offsets, numbers and alternatives within tol."""
    assert a["tokens"] == b["tokens"] and a["text_offset"] == b["text_offset"]
    for x, y in zip(a["token_logprobs"], b["token_logprobs"], strict=True):
        assert (x is None) == (y is None) and (x is None or abs(x - y) <= tol)
    for x, y in zip(a["top_logprobs"], b["top_logprobs"], strict=True):
        if x is None or y is None:
            assert x is y
            continue
        assert x.keys() == y.keys()
        assert all(abs(x[k] - y[k]) <= tol for k in x)


def test_a_list_answers_each_prompt_as_alone(served, model_dir: Path) -> None:
    engine, client = served
    listed = _echo(client, PROMPTS)
    assert [c["index"] for c in listed] == list(range(len(PROMPTS)))
    assert [c["text"] for c in listed] == PROMPTS
    engine_alone = _engine(model_dir)
    with running(create_app(engine_alone, NAME)) as url, httpx.Client(base_url=url) as alone:
        for prompt, choice in zip(PROMPTS, listed, strict=True):
            (single,) = _echo(alone, prompt)
            _assert_same(choice["logprobs"], single["logprobs"])
    for prompt, choice in zip(PROMPTS, listed, strict=True):
        values = choice["logprobs"]["token_logprobs"]
        assert values[0] is None
        assert values[1:] == pytest.approx(_forward(engine, prompt), abs=1e-4)


def test_a_list_computes_the_shared_context_once(served) -> None:
    engine, client = served
    choices = [QUESTION + f" {letter}" for letter in "ABCD"]
    before = engine.tokens_computed
    _echo(client, choices, top=1)
    computed = engine.tokens_computed - before
    assert computed <= len(engine.encode(QUESTION)) + 4  # the context once, nothing per choice


def test_a_few_shot_block_is_computed_once_across_requests(served, model_dir: Path) -> None:
    engine, client = served
    first = FEW_SHOT + "Question: Where does the doctor walk?\nAnswer:"
    second = FEW_SHOT + "Question: What does Maria carry at night?\nAnswer:"
    _echo(client, [first + " A", first + " B"])
    before = engine.tokens_computed
    kept = _echo(client, [second + " A", second + " B"])
    computed = engine.tokens_computed - before
    shared = len(engine.encode(FEW_SHOT)) - 2  # a merge may join the block's last tokens
    assert computed <= len(engine.encode(second)) - shared + 2
    fresh_engine = _engine(model_dir)
    with running(create_app(fresh_engine, NAME)) as url, httpx.Client(base_url=url) as fresh:
        for prompt, choice in zip([second + " A", second + " B"], kept, strict=True):
            (alone,) = _echo(fresh, prompt)
            _assert_same(choice["logprobs"], alone["logprobs"])


def test_generation_with_a_list(served, model_dir: Path) -> None:
    engine, client = served
    prompts = [QUESTION, "Maria carries the heavy lantern", QUESTION + " B"]
    body = {"model": NAME, "prompt": prompts, "max_tokens": 3, "temperature": 0, "echo": True,
            "logprobs": 2}  # fmt: skip
    listed = client.post("/v1/completions", json=body).json()
    assert [c["index"] for c in listed["choices"]] == [0, 1, 2]
    assert listed["usage"]["prompt_tokens"] == sum(len(engine.encode(p)) for p in prompts)
    for prompt, choice in zip(prompts, listed["choices"], strict=True):
        single = client.post("/v1/completions", json={**body, "prompt": prompt}).json()
        (alone,) = single["choices"]
        assert choice["text"] == alone["text"] and choice["text"].startswith(prompt)
        _assert_same(choice["logprobs"], alone["logprobs"])


def test_a_prompt_too_long_refuses_the_list(served) -> None:
    engine, client = served
    long_prompt = "river " * (engine.max_length + 10)
    body = {"model": NAME, "prompt": [QUESTION + " A", long_prompt], "echo": True,
            "max_tokens": 0, "logprobs": 1}  # fmt: skip
    response = client.post("/v1/completions", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "context_length_exceeded" and error["param"] == "prompt"
    assert len(_echo(client, [QUESTION + " A", QUESTION + " B"])) == 2  # and it goes on


def test_lone_surrogates_are_echoed(served) -> None:
    _, client = served
    body = (b'{"model": "tiny", "prompt": ["a \\ud800 b", "a \\ud800 c"], "echo": true, '
            b'"max_tokens": 0, "logprobs": 1}')  # fmt: skip
    response = client.post(
        "/v1/completions", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert [c["text"] for c in response.json()["choices"]] == ["a \ud800 b", "a \ud800 c"]


# ----------------------------------------------------------------------------- the scorer
def _reference(engine: HFEngine, ids: list[int]) -> tuple[list[float], list[list[int]]]:
    with torch.inference_mode():
        logits = engine.model(input_ids=torch.tensor([ids])).logits[0].float()
    logp = torch.log_softmax(logits.double(), -1)[:-1]
    values = logp[torch.arange(len(ids) - 1), ids[1:]].tolist()
    return values, logp.topk(3, dim=-1).indices.tolist()


def _check_rows(engine: HFEngine, scorer: EchoScorer, rows: list[list[int]]) -> None:
    got = scorer.logprobs(rows, 3)
    for row, result in zip(rows, got, strict=True):
        assert len(result.logprobs) == len(result.top) == len(row)
        assert result.logprobs[0] is None and result.top[0] is None
        if len(row) == 1:
            continue
        values, tops = _reference(engine, row)
        assert result.logprobs[1:] == pytest.approx(values, abs=1e-5)
        assert [[t for t, _ in alt] for alt in result.top[1:]] == tops


@pytest.mark.parametrize("fast", [True, False])
def test_scorer_matches_a_forward_pass(llama_dir: Path, fast: bool) -> None:
    engine = _engine(llama_dir)
    engine._fast = fast  # False: the model's own logits at every position
    scorer = EchoScorer(engine)
    rng = random.Random(3)
    base = [rng.randrange(5, 200) for _ in range(40)]
    rows = [
        base + [7],
        base + [9, 10, 11, 12],
        base,
        base[:25],  # a prefix of the others
        [1],  # one token: nothing to predict
        [3, 4, 5],  # shares nothing
        base + [7],
    ]
    _check_rows(engine, scorer, rows)
    _check_rows(engine, scorer, rows[1:2])  # alone
    _check_rows(engine, scorer, [base + [20, 21], base + [22]])  # reuses a kept prefix
    _check_rows(engine, scorer, [[1]])


def test_scorer_reuses_a_kept_prefix(llama_dir: Path) -> None:
    engine = _engine(llama_dir)
    scorer = EchoScorer(engine)
    block = list(range(10, 90))
    scorer.logprobs([block + [5, 6]], 1)
    before = engine.tokens_computed
    again = scorer.logprobs([block + [7, 8, 9]], 2)[0]
    assert engine.tokens_computed - before == 4  # the last shared token and three new ones
    fresh = EchoScorer(_engine(llama_dir)).logprobs([block + [7, 8, 9]], 2)[0]
    assert again.logprobs[1:] == pytest.approx(fresh.logprobs[1:], abs=1e-5)
    assert [[t for t, _ in a] for a in again.top[1:]] == [[t for t, _ in a] for a in fresh.top[1:]]
    assert all(len(a) == 2 for a in again.top[1:])
    none = scorer.logprobs([block], 0)[0]
    assert none.top[0] is None and all(a == [] for a in none.top[1:])


def test_a_cancelled_request_stops_before_the_model(llama_dir: Path) -> None:
    engine = _engine(llama_dir)
    server = Server(engine)
    prompts = [server.prepare(QUESTION + " A", 0), server.prepare(QUESTION + " B", 0)]
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        server.complete(prompts, temperature=0, top_p=1, stop=[], seed=None, echo=True,
                        logprobs=1, cancel=cancel)  # fmt: skip
    assert engine.tokens_computed == 0


def test_token_texts_resume_where_sequences_differ(qwen2_dir: Path) -> None:
    """Byte-level BPE splits characters over tokens: resumed spelling equals fresh spelling."""
    engine = _engine(qwen2_dir)
    text = "Le café über 日本語 river 🙂 garden ñandú"
    ids = engine.tokenizer.encode(text)
    assert len(token_texts(engine.tokenizer, ids)) == len(ids)
    spell = TokenTexts(engine.tokenizer, keep=3)
    rng = random.Random(5)
    for _ in range(40):
        cut = rng.randrange(1, len(ids) + 1)
        tail = [rng.choice(ids) for _ in range(rng.randrange(0, 4))]
        seq = ids[:cut] + tail
        assert spell(seq) == token_texts(engine.tokenizer, seq), seq
