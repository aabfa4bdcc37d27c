"""A model folder's copy with a smaller window, for tests of left truncation and rolling windows."""

from __future__ import annotations

import json
import shutil
from pathlib import Path


def small_window_copy(src: Path, dst: Path, window: int) -> Path:
    """The same weights with a `window`-token window (RoPE has no learned positions to cut), so
    engines must find the window in the config and tokenizer config."""
    shutil.copytree(src, dst)
    for name, key in (
        ("config.json", "max_position_embeddings"),
        ("tokenizer_config.json", "model_max_length"),
    ):
        cfg = json.loads((dst / name).read_text())
        cfg[key] = window
        (dst / name).write_text(json.dumps(cfg, indent=2))
    return dst
