"""Made-up Chinese text for the Chinese benchmarks' row makers: short exam-style stems and
options, with the quirks of the real files (fill-in blanks "____", LaTeX in `$...$`, stray
whitespace around a stem, options that are numbers)."""

from __future__ import annotations

import random

NOUNS = [
    "土地",
    "河流",
    "资金",
    "劳动力",
    "路由器",
    "交换机",
    "细胞",
    "分子",
    "法律",
    "合同",
    "税收",
    "城市",
    "农田",
    "计算机",
    "教师",
    "学生",
    "诗人",
    "王朝",
    "货币",
    "市场",
]
VERBS = ["影响", "属于", "决定", "包含", "提高", "降低", "保护", "改变"]
ADJECTIVES = ["主要的", "基本的", "重要的", "现代的", "传统的", "有效的"]


def phrase(rng: random.Random) -> str:
    noun = rng.choice(NOUNS)
    return rng.choice(ADJECTIVES) + noun if rng.random() < 0.4 else noun


def stem(rng: random.Random) -> str:
    """A question stem; some carry the stray whitespace the real files have."""
    text = rng.choice(
        [
            f"下列关于{phrase(rng)}的说法中，正确的是____。",
            f"{phrase(rng)}{rng.choice(VERBS)}{phrase(rng)}的主要原因是",
            f"在{phrase(rng)}中，{phrase(rng)}最主要的作用是什么？",
            f"已知$x^{rng.randint(2, 4)}={rng.randint(2, 90)}$，则{phrase(rng)}____",
        ]
    )
    return text + rng.choice(["", "", "", " ", "\n", "  "])


def options(rng: random.Random, k: int = 4) -> list[str]:
    """`k` different options of different lengths (so acc and acc_norm can disagree)."""
    out: list[str] = []
    numeric = rng.random() < 0.2
    while len(out) < k:
        if numeric:
            option = str(rng.randint(1, 120))
        else:
            option = rng.choice(
                [phrase(rng), f"{phrase(rng)}{rng.choice(VERBS)}{phrase(rng)}", rng.choice(NOUNS)]
            )
        if option not in out:
            out.append(option)
    return out
