"""Local GGUF files as models: finding the file, checking it is one, and naming it by content.

A GGUF is a single file that holds the weights, the config and the tokenizer, so its bytes are
the model: the identity is the file's sha256 (cached, see `content_hash`), never its name, path
or timestamps. transformers still reads tokenizer and generation files that sit in the same
folder (`tokenizer_config.json` and friends), so those that are present join the identity too;
a GGUF copied into a bare folder keeps the key it had in another bare folder.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from gnomon.engines.content_hash import file_sha256
from gnomon.errors import UserError

MAGIC = b"GGUF"
SUFFIX = ".gguf"
# files transformers may read beside a GGUF when it loads the tokenizer, config or generation
# defaults from that folder
SIDE_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
)


def named_like_gguf(name: str) -> bool:
    return name.lower().endswith(SUFFIX)


def check_gguf(path: Path, shown: str) -> None:
    """A one-line error unless the file starts with GGUF's magic bytes (whatever its name)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(MAGIC))
    except OSError as exc:
        raise UserError(f"cannot read {shown}: {exc.strerror}") from None
    if head != MAGIC:
        raise UserError(f"{shown}: not a model directory, and not a GGUF file (no GGUF header)")


def find_gguf(directory: Path, shown: str) -> Path | None:
    """The one GGUF in a folder without config.json; several are ambiguous, so the user picks."""
    found = sorted(p for p in directory.iterdir() if named_like_gguf(p.name) and p.is_file())
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise UserError(
            f"{shown} holds {len(found)} GGUF files ({names}); "
            f"pick one with --model hf:{shown.rstrip('/')}/FILE.gguf"
        )
    return found[0] if found else None


def gguf_identity(path: Path) -> str:
    """`sha256:<hex>` of the file, plus a digest of any side files transformers would read."""
    try:
        digest = f"sha256:{file_sha256(path)}"
        side = hashlib.sha256()
        present = False
        for name in SIDE_FILES:
            item = path.parent / name
            if item.is_file():
                data = item.read_bytes()
                side.update(f"{name}:{len(data)}:".encode() + data)
                present = True
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    return f"{digest}+{side.hexdigest()[:16]}" if present else digest
