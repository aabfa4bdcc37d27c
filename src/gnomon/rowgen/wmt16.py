"""WMT16 (`wmt/wmt16`, configs `de-en` and `ro-en`): one field, `translation`, a mapping from
language code to the sentence in that language (made-up glosses: `_translation.py`)."""

from __future__ import annotations

from gnomon.rowgen import RowDict, rows
from gnomon.rowgen._translation import pairs

SIZES = {"test": 12, "validation": 8, "train": 8}


@rows("wmt16_de_en", "wmt16_en_de", sizes=SIZES)
def make_de(split: str, n: int, seed: int) -> list[RowDict]:
    return pairs("wmt16", "de", split, n, seed)


@rows("wmt16_ro_en", "wmt16_en_ro", sizes=SIZES)
def make_ro(split: str, n: int, seed: int) -> list[RowDict]:
    return pairs("wmt16", "ro", split, n, seed)
