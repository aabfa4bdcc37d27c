"""GGUF files as models: `--model hf:FILE.gguf` or a folder holding one, loaded by transformers
from a real GGUF written offline (`gnomon_testing.tiny_gguf`), and named by the file's bytes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from gnomon_cli import ENV, GNOMON, gnomon, ok, summary
from loopback import free_port, wait_until_serving

from gnomon.engines import ModelRef, content_hash, model_key, parse_model
from gnomon.errors import UserError


@pytest.fixture(scope="session")
def gguf_path(llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's tiny Llama (`llama_dir`), the same weights, as one F32 GGUF (read-only)."""
    from gnomon_testing.tiny_gguf import write_llama_gguf

    return write_llama_gguf(llama_dir, tmp_path_factory.mktemp("gguf") / "tiny.gguf")


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test its own hash cache, never the user's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _copy(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copyfile(src, dst))


# ----------------------------------------------------------------------------- --model parsing
def test_a_gguf_file_or_a_folder_with_one_is_a_local_model(
    gguf_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _copy(gguf_path, tmp_path / "models" / "tiny.gguf")
    want = ModelRef("hf", str(model), None, True)
    assert parse_model(f"hf:{model}") == want
    assert parse_model(str(model)) == want
    assert parse_model(f"hf:{model.parent}") == want  # the folder's only model
    monkeypatch.chdir(model.parent)
    assert parse_model("hf:tiny.gguf") == want  # a bare file name is a file, not a hub id
    assert parse_model("tiny.gguf") == want
    assert parse_model("hf:.") == want


def test_a_folder_with_several_ggufs_asks_which(gguf_path: Path, tmp_path: Path) -> None:
    for name in ("a-q4.gguf", "b-f16.gguf"):
        _copy(gguf_path, tmp_path / "m" / name)
    with pytest.raises(UserError) as info:
        parse_model(f"hf:{tmp_path / 'm'}")
    message = str(info.value)
    assert "a-q4.gguf" in message and "b-f16.gguf" in message and "pick one" in message
    assert "\n" not in message
    assert parse_model(f"hf:{tmp_path / 'm' / 'b-f16.gguf'}").name.endswith("b-f16.gguf")


def test_missing_and_fake_gguf_files_are_user_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for model in ("hf:missing.gguf", f"hf:{tmp_path}/nope/x.gguf", "x.GGUF"):
        with pytest.raises(UserError, match="GGUF file not found"):
            parse_model(model)
    (tmp_path / "fake.gguf").write_text("not a model")
    (tmp_path / "weights.bin").write_bytes(b"\0" * 64)
    for model in ("hf:fake.gguf", "weights.bin"):
        with pytest.raises(UserError, match="not a GGUF file"):
            parse_model(model)
    (tmp_path / "only-fake").mkdir()
    (tmp_path / "only-fake" / "m.gguf").write_bytes(b"GGML")
    with pytest.raises(UserError, match="not a GGUF file"):
        parse_model("hf:only-fake")


# ----------------------------------------------------------------------------- identity
def test_the_key_follows_the_bytes_not_the_path_or_times(gguf_path: Path, tmp_path: Path) -> None:
    model = _copy(gguf_path, tmp_path / "a" / "tiny.gguf")
    key = model_key(parse_model(str(model)), "float32")
    assert key.startswith("hf:gguf:sha256:") and key.endswith("|float32")
    assert model_key(parse_model(str(model)), "bfloat16") != key

    moved = model.rename(tmp_path / "a" / "renamed.gguf")
    assert model_key(parse_model(str(moved)), "float32") == key
    os.utime(moved, ns=(0, 1_000_000_000))  # touched to another time
    assert model_key(parse_model(str(moved)), "float32") == key
    copied = _copy(moved, tmp_path / "b" / "c" / "elsewhere.gguf")
    assert model_key(parse_model(str(copied.parent)), "float32") == key

    data = bytearray(copied.read_bytes())
    data[-1] ^= 1  # one bit of the last weight
    stat = copied.stat()
    copied.write_bytes(bytes(data))
    os.utime(copied, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, same mtime
    assert model_key(parse_model(str(copied)), "float32") != key


def test_tokenizer_files_beside_the_gguf_join_the_key(gguf_path: Path, tmp_path: Path) -> None:
    """transformers reads them when it loads the GGUF's tokenizer, so they change the model."""
    model = _copy(gguf_path, tmp_path / "tiny.gguf")
    bare = model_key(parse_model(str(model)), "float32")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ x }}"}))
    with_config = model_key(parse_model(str(model)), "float32")
    assert with_config != bare
    (tmp_path / "README.md").write_text("notes")  # not read by transformers: no change
    assert model_key(parse_model(str(model)), "float32") == with_config


def test_the_digest_is_cached_by_file_state(
    tmp_path: Path, private_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    monkeypatch.setattr(content_hash, "RACY_NS", 0)
    path = tmp_path / "w.gguf"
    path.write_bytes(b"GGUF" + b"\1" * 10_000)
    digest = content_hash.file_sha256(path)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    # the second call answers from the cache: a planted digest comes back unread
    cache = content_hash.cache_file()
    entries = json.loads(cache.read_text())
    assert list(entries.values()) == [digest]
    cache.write_text(json.dumps(dict.fromkeys(entries, "planted")))
    assert content_hash.file_sha256(path) == "planted"
    # rewritten in place, same size and mtime restored: ctime moved, so it is hashed again
    stat = path.stat()
    path.write_bytes(b"GGUF" + b"\2" * 10_000)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert content_hash.file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    # a corrupt or unwritable cache costs time, never an error
    cache.write_text("{not json")
    assert content_hash.file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setenv("XDG_CACHE_HOME", "/proc/definitely/not/writable")
    assert content_hash.file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_freshly_written_file_is_not_remembered(tmp_path: Path) -> None:
    """Within the racy window a same-tick rewrite could keep the state, so nothing is cached."""
    path = tmp_path / "new.gguf"
    path.write_bytes(b"GGUF fresh")
    content_hash.file_sha256(path)
    assert not content_hash.cache_file().exists()


def test_the_chat_template_comes_from_the_gguf(chat_llama_dir: Path, tmp_path: Path) -> None:
    from gnomon.engines.hf import chat_format
    from gnomon_testing.tiny_gguf import write_llama_gguf

    model = write_llama_gguf(chat_llama_dir, tmp_path / "chat.gguf")
    messages = [{"role": "user", "content": "Question: 2 + 2?"}]
    ours, theirs = chat_format(str(model), None, None), chat_format(str(chat_llama_dir), None, None)
    want = "<|user|>Question: 2 + 2?\n<|assistant|>"
    assert ours.apply(messages) == theirs.apply(messages) == want
    assert ours.fingerprint == theirs.fingerprint


# ----------------------------------------------------------------------------- the real CLI
def _choice_logprobs(out: Path) -> dict[str, list[float]]:
    lines = (out / "samples.jsonl").read_text().splitlines()
    return {s["sample_id"]: s["choice_logprobs"] for s in map(json.loads, lines)}


@pytest.mark.slow
def test_run_on_a_gguf_scores_as_the_safetensors_model_and_resumes(
    gguf_path: Path, llama_dir: Path, data_root: Path, tmp_path: Path
) -> None:
    env = {**ENV, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    model = _copy(gguf_path, tmp_path / "models" / "tiny.gguf")
    store = tmp_path / "s.sqlite"
    # one thread pinned: the default follows the machine's load, and another thread count sums
    # the same floats in another order (the exact comparison at the end would see it)
    common = ["--bench", "arc_easy", "--data", data_root / "arc_easy", "--limit", "6",
              "--device", "cpu", "--dtype", "float32", "--threads", "1",
              "--store", store]  # fmt: skip

    def run(model_arg: str, out: str) -> tuple[int, int, int]:
        proc = ok(gnomon("run", "--model", model_arg, *common, "--out", tmp_path / out, env=env))
        return summary(proc.stdout)

    assert run(f"hf:{model}", "gguf") == (6, 0, 6)
    assert run(f"hf:{llama_dir}", "safetensors") == (6, 0, 6)  # another key: computed again
    gguf, dense = _choice_logprobs(tmp_path / "gguf"), _choice_logprobs(tmp_path / "safetensors")
    assert gguf.keys() == dense.keys() and len(gguf) == 6
    for sample, values in gguf.items():
        assert values == pytest.approx(dense[sample], rel=1e-5, abs=1e-5), sample

    assert run(f"hf:{model}", "again") == (6, 6, 0)
    copy = _copy(model, tmp_path / "copy" / "renamed.gguf")
    assert run(f"hf:{copy.parent}", "copy") == (6, 6, 0)

    from gnomon_testing.tiny_gguf import write_llama_gguf

    write_llama_gguf(llama_dir, model, name="the same weights, other metadata")
    assert run(f"hf:{model}", "changed") == (6, 0, 6)
    assert _choice_logprobs(tmp_path / "changed") == _choice_logprobs(tmp_path / "gguf")


def _one_line_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], proc.stderr


@pytest.mark.slow
def test_bad_gguf_models_end_with_one_line(
    gguf_path: Path, data_root: Path, tmp_path: Path
) -> None:
    import gguf

    env = {**ENV, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    alien = tmp_path / "alien.gguf"  # a well-formed GGUF of an architecture transformers lacks
    writer = gguf.GGUFWriter(str(alien), "nonesuch")
    writer.add_name("nonesuch")
    writer.add_block_count(1)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    cut = tmp_path / "cut.gguf"  # a real GGUF's first 4 KiB: the header, then nothing
    cut.write_bytes(gguf_path.read_bytes()[:4096])
    (tmp_path / "fake.gguf").write_text("hello")
    (tmp_path / "two").mkdir()
    for name in ("x.gguf", "y.gguf"):
        _copy(gguf_path, tmp_path / "two" / name)
    cases = [
        (tmp_path / "missing.gguf", "GGUF file not found"),
        (tmp_path / "fake.gguf", "not a GGUF file"),
        (tmp_path / "two", "x.gguf, y.gguf"),
        (alien, "nonesuch"),
        (cut, "cannot load model"),
    ]
    for model, fragment in cases:
        args = ["--model", f"hf:{model}", "--device", "cpu", "--dtype", "float32"]
        proc = gnomon("run", *args, "--bench", "arc_easy", "--data", data_root / "arc_easy",
                      "--limit", "2", "--store", tmp_path / "s.sqlite", env=env)  # fmt: skip
        _one_line_error(proc, fragment)
    proc = gnomon("serve", "--model", f"hf:{alien}", "--port", "0", "--device", "cpu", env=env)
    _one_line_error(proc, "nonesuch")


@pytest.mark.slow
def test_serve_a_gguf(gguf_path: Path, llama_dir: Path, tmp_path: Path) -> None:
    from gnomon.engines.hf import HFEngine

    model = _copy(gguf_path, tmp_path / "tiny.gguf")
    port = free_port()
    proc = subprocess.Popen(
        [str(GNOMON), "serve", "--model", f"hf:{model}", "--name", "tiny", "--port", str(port),
         "--device", "cpu", "--dtype", "float32"],
        env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_serving(proc, url, timeout=60)
        body = {"model": "tiny", "prompt": "Question: what moves the river?\nAnswer:",
                "max_tokens": 6, "temperature": 0}  # fmt: skip
        reply = httpx.post(f"{url}/completions", json=body, timeout=60)
        assert reply.status_code == 200, reply.text
        text = reply.json()["choices"][0]["text"]
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    # the served GGUF generates what the same weights, loaded from safetensors, generate here
    from gnomon.engines.base import GenerateRequest

    engine = HFEngine(str(llama_dir), device="cpu", dtype="float32")
    request = GenerateRequest(body["prompt"], until=(), max_tokens=6)
    [(_, local)] = [pair for batch in engine.generate([request]) for pair in batch]
    assert text == local.text and text
