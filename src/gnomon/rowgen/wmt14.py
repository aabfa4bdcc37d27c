"""WMT14 (`wmt/wmt14`, config `fr-en`): one field, `translation`, a mapping from language code
to the sentence in that language (made-up glosses: `_translation.py`)."""

from __future__ import annotations

from gnomon.rowgen import RowDict, rows
from gnomon.rowgen._translation import pairs


@rows("wmt14_en_fr", "wmt14_fr_en", sizes={"test": 12, "validation": 8, "train": 8})
def make(split: str, n: int, seed: int) -> list[RowDict]:
    return pairs("wmt14", "fr", split, n, seed)
