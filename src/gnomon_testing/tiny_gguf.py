"""Writing a tiny Llama checkpoint (from `gnomon.tiny.build_model`) as a real GGUF file, offline.

Tests and benchmarks need a GGUF that transformers' GGUF loader reads exactly as it would read a
file from llama.cpp's converter: the llama.cpp tensor names (from the `gguf` package's own name
map), query/key rows in llama.cpp's rotary order, and the tokenizer stored as metadata (a
byte-level BPE: vocabulary, merges, token types, special ids). Tensors stay F32, so the GGUF
model computes the same numbers as the safetensors one it was made from, which is what lets a
test prove the loading path right by comparing log-likelihoods.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

_NORMAL, _CONTROL = 1, 3  # llama.cpp token types


def _to_llama_cpp_rows(weight: np.ndarray, n_head: int) -> np.ndarray:
    """Rotary halves interleaved per head, as llama.cpp's converter stores q and k.

    transformers undoes exactly this on load; writing the plain HF rows would give a model that
    loads without error and computes something else.
    """
    rows = weight.shape[0]
    return (
        weight.reshape(n_head, 2, rows // n_head // 2, *weight.shape[1:])
        .swapaxes(1, 2)
        .reshape(weight.shape)
    )


def write_llama_gguf(model_dir: Path, out_file: Path, *, name: str = "gnomon-tiny-llama") -> Path:
    """Convert the safetensors Llama in `model_dir` to an F32 GGUF at `out_file`."""
    import gguf
    from safetensors.numpy import load_file

    model_dir, out_file = Path(model_dir), Path(out_file)
    config = json.loads((model_dir / "config.json").read_text())
    if config.get("model_type") != "llama":
        raise ValueError(f"{model_dir}: only llama checkpoints are written as GGUF here")
    tokenizer = json.loads((model_dir / "tokenizer.json").read_text())
    tok_config = json.loads((model_dir / "tokenizer_config.json").read_text())
    weights = load_file(str(model_dir / "model.safetensors"))

    n_layers = config["num_hidden_layers"]
    n_head, n_kv = config["num_attention_heads"], config["num_key_value_heads"]
    head_dim = config.get("head_dim") or config["hidden_size"] // n_head
    rope = config.get("rope_parameters") or {}
    rope_theta = rope.get("rope_theta", config.get("rope_theta", 10000.0))

    out_file.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(out_file), "llama")
    writer.add_name(name)
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(n_layers)
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_kv)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(float(rope_theta))
    writer.add_layer_norm_rms_eps(float(config["rms_norm_eps"]))
    writer.add_vocab_size(config["vocab_size"])
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)

    vocab: dict[str, int] = tokenizer["model"]["vocab"]
    for added in tokenizer["added_tokens"]:
        vocab[added["content"]] = added["id"]
    tokens = sorted(vocab, key=vocab.__getitem__)
    if [vocab[t] for t in tokens] != list(range(len(tokens))):
        raise ValueError(f"{model_dir}: token ids are not contiguous")
    special = {a["content"] for a in tokenizer["added_tokens"] if a.get("special")}
    merges = [m if isinstance(m, str) else " ".join(m) for m in tokenizer["model"]["merges"]]
    writer.add_tokenizer_model("gpt2")  # llama.cpp's name for byte-level BPE
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([_CONTROL if t in special else _NORMAL for t in tokens])
    writer.add_token_merges(merges)
    for key, add in (
        ("bos_token", writer.add_bos_token_id),
        ("eos_token", writer.add_eos_token_id),
        ("pad_token", writer.add_pad_token_id),
    ):
        if tok_config.get(key):
            add(vocab[tok_config[key]])
    writer.add_add_bos_token(bool(tok_config.get("bos_token")))
    writer.add_add_eos_token(False)
    if tok_config.get("chat_template"):
        writer.add_chat_template(tok_config["chat_template"])

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_layers)
    for hf_name, tensor in weights.items():
        stem, _, suffix = hf_name.rpartition(".")
        gguf_name = names.get_name(stem)
        if gguf_name is None:
            raise ValueError(f"{model_dir}: no GGUF name for tensor {hf_name}")
        data = tensor.astype(np.float32)
        if stem.endswith("self_attn.q_proj"):
            data = _to_llama_cpp_rows(data, n_head)
        elif stem.endswith("self_attn.k_proj"):
            data = _to_llama_cpp_rows(data, n_kv)
        writer.add_tensor(f"{gguf_name}.{suffix}", np.ascontiguousarray(data))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out_file


def build_gguf(out_file: Path, *, seed: int = 0, **model_kwargs: object) -> Path:
    """A tiny random Llama (as `gnomon.tiny.build_model`) written straight to one GGUF file."""
    import tempfile

    from gnomon.tiny import build_model

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_model(Path(tmp), "llama", seed=seed, **model_kwargs)  # type: ignore[arg-type]
        return write_llama_gguf(model_dir, out_file)
