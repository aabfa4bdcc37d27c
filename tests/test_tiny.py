"""Tiny models and synthetic data are the fixtures every other test stands on; pin them down."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from gnomon.tiny import (
    DEFAULT_SIZES,
    MMLU_SUBJECTS,
    build_model,
    build_tokenizer,
    corpus,
    synthetic_rows,
    write_synthetic_data,
)

PROMPT = (
    "The following are multiple choice questions (with answers) about world religions.\n\n"
    "Question: Which of the following best describes the temple?\nA. 12\nB. 1,250\nAnswer:"
)


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def tiny_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model(tmp_path_factory.mktemp(request.param), request.param)


def test_model_loads_and_gives_peaked_finite_logits(tiny_dir: Path) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    assert model.dtype == torch.float32
    cfg = model.config
    assert cfg.max_position_embeddings == tok.model_max_length == 2048
    assert (cfg.eos_token_id, cfg.pad_token_id) == (tok.eos_token_id, tok.pad_token_id)
    assert cfg.bos_token_id == tok.bos_token_id
    assert len(tok) == cfg.vocab_size
    ids = tok(PROMPT, return_tensors="pt").input_ids
    with torch.no_grad():
        logits = model(ids).logits
    assert logits.shape == (1, ids.shape[1], cfg.vocab_size)
    assert torch.isfinite(logits).all()
    assert logits.std(dim=-1).min() > 1.0
    # Greedy choices must be unambiguous: no ties at the top of the distribution.
    top2 = logits[0].topk(2, dim=-1).values
    assert (top2[:, 0] - top2[:, 1]).min() > 1e-4
    out = model.generate(ids, max_new_tokens=4, do_sample=False)
    assert out.shape == (1, ids.shape[1] + 4)


def test_bos_conventions(tiny_dir: Path) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_dir)
    ids = tok("Answer: B")["input_ids"]
    arch = AutoModelForCausalLM.from_pretrained(tiny_dir).config.model_type
    if arch == "llama":
        assert tok.bos_token == "<s>" and ids[0] == tok.bos_token_id
        assert ids.count(tok.bos_token_id) == 1
    else:
        assert tok.bos_token is None
        assert tok.convert_tokens_to_ids("<s>") not in ids
    assert tok("Answer: B", add_special_tokens=False)["input_ids"] == [
        i for i in ids if i != tok.bos_token_id
    ]
    assert tok.decode(ids, skip_special_tokens=True) == "Answer: B"


def test_same_seed_same_weights(tmp_path: Path) -> None:
    texts = corpus()[:400]
    kw = {"hidden_size": 32, "num_layers": 1, "texts": texts}
    a = AutoModelForCausalLM.from_pretrained(build_model(tmp_path / "a", seed=3, **kw))
    b = AutoModelForCausalLM.from_pretrained(build_model(tmp_path / "b", seed=3, **kw))
    c = AutoModelForCausalLM.from_pretrained(build_model(tmp_path / "c", seed=4, **kw))
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert (tmp_path / "a" / "tokenizer.json").read_text() == (
        tmp_path / "b" / "tokenizer.json"
    ).read_text()


def test_build_model_leaves_global_rng_alone(tmp_path: Path) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_model(tmp_path, hidden_size=32, num_layers=1, texts=corpus()[:200])
    assert torch.equal(torch.rand(3), expected)


def test_build_tokenizer_standalone(tmp_path: Path) -> None:
    tok = build_tokenizer(tmp_path, corpus()[:500], vocab_size=512, add_bos=False)
    assert len(tok) <= 512 and tok.bos_token is None
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert reloaded(PROMPT)["input_ids"] == tok(PROMPT)["input_ids"]
    assert reloaded.decode(reloaded(PROMPT)["input_ids"]) == PROMPT
    # Trained merges should make template words far shorter than their byte count.
    assert len(tok("Question: Answer:")["input_ids"]) <= 6


def test_rows_are_deterministic() -> None:
    for bench, splits in DEFAULT_SIZES.items():
        for split in splits:
            assert synthetic_rows(bench, split, 7, seed=1) == synthetic_rows(bench, split, 7, 1)
    assert synthetic_rows("gsm8k", "test", 5, 1) != synthetic_rows("gsm8k", "test", 5, 2)
    with pytest.raises(ValueError):
        synthetic_rows("mmlu", "train", 3)


def test_mmlu_rows() -> None:
    dev = synthetic_rows("mmlu", "dev", 99)
    assert len(dev) == 5 * len(MMLU_SUBJECTS)
    assert all(sum(r["subject"] == s for r in dev) == 5 for s in MMLU_SUBJECTS)
    test = synthetic_rows("mmlu", "test", 41)
    assert len(test) == 41
    subjects = [r["subject"] for r in test]
    assert subjects == sorted(subjects)  # rows of one subject are contiguous
    assert set(subjects) == set(MMLU_SUBJECTS)
    for r in dev + test:
        assert set(r) == {"question", "subject", "choices", "answer"}
        assert isinstance(r["question"], str) and r["question"].strip()
        assert isinstance(r["choices"], list) and len(r["choices"]) == 4
        assert all(isinstance(c, str) and c for c in r["choices"])
        assert type(r["answer"]) is int and 0 <= r["answer"] <= 3
    assert any(r["question"] != r["question"].rstrip() for r in test)


@pytest.mark.parametrize("bench", ["arc_easy", "arc_challenge"])
def test_arc_rows(bench: str) -> None:
    splits = ("train", "validation", "test")
    rows = [r for split in splits for r in synthetic_rows(bench, split, 60)]
    for r in rows:
        assert set(r) == {"id", "question", "choices", "answerKey"}
        assert isinstance(r["id"], str) and isinstance(r["question"], str)
        texts, labels = r["choices"]["text"], r["choices"]["label"]
        assert set(r["choices"]) == {"text", "label"} and len(texts) == len(labels)
        assert all(isinstance(x, str) for x in texts + labels)
        assert r["answerKey"] in labels
        assert len({len(t) for t in texts}) == len(texts)
    assert {len(r["choices"]["label"]) for r in rows} >= {3, 4, 5}
    assert any(r["choices"]["label"][0] == "1" for r in rows)
    assert any(r["choices"]["label"][0] == "A" for r in rows)
    assert len({r["id"] for r in rows}) == len(rows)


def test_hellaswag_rows() -> None:
    rows = synthetic_rows("hellaswag", "validation", 80) + synthetic_rows("hellaswag", "train", 20)
    types = {
        "ind": int,
        "activity_label": str,
        "ctx_a": str,
        "ctx_b": str,
        "ctx": str,
        "endings": list,
        "source_id": str,
        "split": str,
        "split_type": str,
        "label": str,
    }
    for r in rows:
        assert set(r) == set(types)
        assert all(type(r[k]) is t for k, t in types.items())
        assert len(r["endings"]) == 4 and all(isinstance(e, str) and e for e in r["endings"])
        assert r["label"] in {"0", "1", "2", "3"}
        assert r["ctx"] == (f"{r['ctx_a']} {r['ctx_b']}" if r["ctx_b"] else r["ctx_a"])
        assert r["split"] in {"train", "val"}
    assert any(" [title]" in r["ctx_a"] and "[header]" in r["ctx_a"] for r in rows)
    assert any("[step]" in r["ctx_a"] for r in rows)
    assert any(" [title]" in e for r in rows for e in r["endings"])
    assert any(r["ctx_b"] == "" for r in rows)
    assert any(r["ctx_b"][:1].islower() for r in rows)
    assert any(r["ctx_b"][:1].isupper() for r in rows)


def test_gsm8k_rows() -> None:
    rows = synthetic_rows("gsm8k", "train", 150) + synthetic_rows("gsm8k", "test", 50)
    finals = []
    for r in rows:
        assert set(r) == {"question", "answer"}
        assert r["question"].endswith("?")
        m = re.search(r"\n#### (-?\d+)$", r["answer"])
        assert m, r["answer"]
        finals.append(int(m.group(1)))
        for expr, value in re.findall(r"<<([^=<>]+)=(-?\d+)>>", r["answer"]):
            assert eval(expr) == int(value)  # noqa: S307 - arithmetic we generated ourselves
        assert "<<" in r["answer"] and len(r["answer"].splitlines()) >= 3
    assert any(x < 0 for x in finals) and sum(x < 0 for x in finals) < len(finals) / 4
    assert any(re.search(r"\d,\d{3}", r["answer"]) for r in rows)


def test_write_synthetic_data(tmp_path: Path) -> None:
    dirs = write_synthetic_data(tmp_path, sizes={"gsm8k": {"test": 3}})
    assert set(dirs) == set(DEFAULT_SIZES)
    for bench, splits in DEFAULT_SIZES.items():
        assert dirs[bench] == tmp_path / bench
        for split, n in splits.items():
            lines = (dirs[bench] / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
            rows = [json.loads(line) for line in lines]
            expected = {("mmlu", "dev"): 5 * len(MMLU_SUBJECTS), ("gsm8k", "test"): 3}
            assert len(rows) == expected.get((bench, split), n)
            assert rows == synthetic_rows(bench, split, len(rows))


def test_corpus_covers_prompt_vocabulary() -> None:
    text = "\n".join(corpus())
    assert len(corpus()) >= 2000
    for needle in (
        "The following are multiple choice questions (with answers) about",
        "Question:",
        "Answer:",
        "A.",
        "B.",
        "####",
        "<<",
        "0123456789"[3],
    ):
        assert needle in text
    assert corpus(1) != corpus(0) and corpus(0) == corpus(0)
