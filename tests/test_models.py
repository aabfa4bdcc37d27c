"""`--model` parsing and the model identity used in store keys, without loading any model."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from gnomon.engines import ModelRef, fingerprint, model_key, parse_model
from gnomon.errors import UserError


@pytest.fixture()
def model_copy(llama_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny model's directory, safe to edit."""
    return Path(shutil.copytree(llama_dir, tmp_path / "my-model"))


@pytest.mark.parametrize(
    ("model", "name"),
    [
        ("hf:org/name", "org/name"),
        ("org/name", "org/name"),
        ("gpt2", "gpt2"),
        ("hf:gpt2", "gpt2"),
        ("Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen2.5-0.5B-Instruct"),
    ],
)
def test_hub_ids(model: str, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # nothing here shadows the id
    assert parse_model(model) == ModelRef("hf", name, None, False)
    ref = parse_model(model, revision="abc123")
    assert ref.revision == "abc123" and ref.display == f"hf:{name}"


def test_local_directories(
    model_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    want = ModelRef("hf", str(model_copy.resolve()), None, True)
    assert parse_model(str(model_copy)) == want
    assert parse_model(f"hf:{model_copy}") == want
    assert parse_model(str(model_copy), revision="ignored") == want  # no revision for a folder
    monkeypatch.chdir(tmp_path)
    assert parse_model("./my-model") == want
    assert parse_model("my-model") == want  # an existing folder wins over a hub id
    assert parse_model("hf:my-model/") == want
    monkeypatch.chdir(model_copy)
    assert parse_model("../my-model") == want


@pytest.mark.parametrize("model", ["/nonexistent/model", "./missing", "hf:../missing", "~/nope/x"])
def test_missing_directories_are_user_errors(
    model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(UserError, match="model directory not found"):
        parse_model(model)


def test_directory_without_config_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no config.json"):
        parse_model(str(tmp_path / "empty"))
    (tmp_path / "file.bin").write_bytes(b"x")  # a file must be a GGUF
    with pytest.raises(UserError, match="not a model directory, and not a GGUF file"):
        parse_model(str(tmp_path / "file.bin"))


@pytest.mark.parametrize("model", ["vllm:org/name", "llamacpp:m.gguf", "foo:./dir"])
def test_unknown_engine_prefix_is_a_user_error(model: str) -> None:
    with pytest.raises(UserError, match="unknown engine") as info:
        parse_model(model)
    assert "hf" in str(info.value)  # the message lists what is available


def test_served_models_are_named_by_server_not_dtype() -> None:
    from gnomon.engines import ApiSettings

    ref = parse_model("openai:gpt-4o")
    assert (ref.engine, ref.name, ref.local) == ("openai", "gpt-4o", False)
    here = model_key(ref, "served", ApiSettings(base_url="http://127.0.0.1:8000/v1/"))
    there = model_key(ref, "served", ApiSettings(base_url="http://10.0.0.2:8000/v1"))
    assert here == "openai:gpt-4o@http://127.0.0.1:8000/v1" and here != there
    with pytest.raises(UserError):
        parse_model("openai:")


@pytest.mark.parametrize("model", ["hf:", "", "a/b/c", "hf:org/my model"])
def test_malformed_names_are_user_errors(
    model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError):
        parse_model(model)


def test_model_key_for_hub_ids() -> None:
    ref = parse_model("org/name")
    assert model_key(ref, "float32") == "hf:org/name@main|float32"
    assert model_key(ref, "bfloat16") != model_key(ref, "float32")
    pinned = parse_model("org/name", revision="abc")
    assert model_key(pinned, "float32") == "hf:org/name@abc|float32"


def test_model_key_for_local_dirs(model_copy: Path, llama_dir: Path) -> None:
    ref = parse_model(str(model_copy))
    first = model_key(ref, "float32")
    assert first == model_key(ref, "float32")
    assert first.startswith("hf:local:") and first.endswith("|float32")
    assert model_key(ref, "float16") != first
    # the identity is the content, not the path (copytree keeps the weights' mtime)
    assert model_key(parse_model(str(llama_dir)), "float32") == first

    config = model_copy / "config.json"
    data = json.loads(config.read_text())
    config.write_text(json.dumps(data | {"rms_norm_eps": 1e-5}, indent=2))
    changed = model_key(ref, "float32")
    assert changed != first
    config.write_text(json.dumps(data | {"rms_norm_eps": 1e-6}, indent=2))
    assert model_key(ref, "float32") not in (first, changed)

    # rewriting the weights (a new mtime) is a new identity too
    before = model_key(ref, "float32")
    weights = next(model_copy.glob("*.safetensors"))
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert model_key(ref, "float32") != before

    # files that do not define the model do not count
    before = fingerprint(model_copy)
    (model_copy / "README.md").write_text("notes")
    assert fingerprint(model_copy) == before
