"""IWSLT 2017 (`IWSLT/iwslt2017`, config `iwslt2017-en-ar`): one field, `translation`, a mapping
from language code to the sentence in that language (made-up glosses: `_translation.py`)."""

from __future__ import annotations

from gnomon.rowgen import RowDict, rows
from gnomon.rowgen._translation import pairs


@rows("iwslt2017_ar_en", "iwslt2017_en_ar", sizes={"test": 12, "validation": 8, "train": 8})
def make(split: str, n: int, seed: int) -> list[RowDict]:
    return pairs("iwslt2017", "ar", split, n, seed)
