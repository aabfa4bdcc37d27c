"""The first five benchmarks' rows (kept in `gnomon.tiny`, where the demo writes them)."""

from __future__ import annotations

from gnomon.rowgen import RowDict, rows
from gnomon.tiny import DEFAULT_SIZES, synthetic_rows


def _register(bench: str) -> None:
    def make(split: str, n: int, seed: int) -> list[RowDict]:
        return synthetic_rows(bench, split, n, seed)

    rows(bench, sizes=DEFAULT_SIZES[bench])(make)


for _bench in DEFAULT_SIZES:
    _register(_bench)
