"""LiveCodeBench rows (`livecodebench/code_generation_lite`'s JSONL release files).

Each row has the real columns and their encodings: `public_test_cases` and `metadata` are JSON
text, `private_test_cases` base64 of zlib of a pickled JSON string (as the released files hold
it), `contest_date` an ISO timestamp. Problems alternate between stdin programs (AtCoder and
Codeforces, no starter code, `metadata` "{}") and LeetCode's functional ones (a `Solution` class
in the starter code, `func_name` in the metadata, one JSON value per input line). Outputs that
only compare equal as numbers ("3.50" for 3.5) keep LiveCodeBench's Decimal rule in play.
"""

from __future__ import annotations

import base64
import json
import pickle
import random
import zlib
from typing import Any

from gnomon.rowgen import RowDict, rows
from gnomon.rowgen._text import sentence

# (title, statement, kind, func_name, case maker); a case is (input text, output text)
_STDIN = "stdin"
_FUNCTIONAL = "functional"


def _sum_case(r: random.Random) -> tuple[str, str]:
    a, b = r.randint(-50, 50), r.randint(-50, 50)
    return f"{a} {b}\n", f"{a + b}\n"


def _halves_case(r: random.Random) -> tuple[str, str]:
    values = [r.randint(1, 9) for _ in range(r.randint(2, 4))]
    lines = " ".join(f"{v / 2:.2f}" for v in values)  # "3.50": equal to 3.5 only as a Decimal
    return f"{len(values)}\n{' '.join(map(str, values))}\n", lines + "\n"


def _add_case(r: random.Random) -> tuple[str, str]:
    a, b = r.randint(0, 99), r.randint(0, 99)
    return f"{a}\n{b}", json.dumps(a + b)


def _pairs_case(r: random.Random) -> tuple[str, str]:
    nums = [r.randint(0, 9) for _ in range(r.randint(1, 5))]
    return json.dumps(nums), json.dumps([min(nums), max(nums)])


_PROBLEMS: list[tuple[str, str, str, str | None, Any]] = [
    ("sum of two", "Read two integers A and B and print A + B.", _STDIN, None, _sum_case),
    (
        "halves",
        "Read N, then N integers; print each halved, with two decimals, on one line.",
        _STDIN,
        None,
        _halves_case,
    ),
    ("add two", "Return the sum of the integers a and b.", _FUNCTIONAL, "addTwo", _add_case),
    ("min and max", "Return [min(nums), max(nums)].", _FUNCTIONAL, "minMax", _pairs_case),
]
_STARTERS = {
    "addTwo": "class Solution:\n    def addTwo(self, a: int, b: int) -> int:\n        ",
    "minMax": "class Solution:\n    def minMax(self, nums: List[int]) -> List[int]:\n        ",
}


def encode_private(cases: list[dict[str, str]]) -> str:
    """The released files' encoding of private test cases."""
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(cases)))).decode("utf-8")


@rows("livecodebench", sizes={"train": 12})
def make(split: str, n: int, seed: int) -> list[RowDict]:
    r = random.Random(f"livecodebench/{split}/{seed}")
    out: list[RowDict] = []
    for i in range(n):
        title, statement, kind, func_name, case = _PROBLEMS[i % len(_PROBLEMS)]
        public = [dict(zip(("input", "output"), case(r), strict=True)) for _ in range(2)]
        private = [dict(zip(("input", "output"), case(r), strict=True)) for _ in range(3)]
        for test in public + private:
            test["testtype"] = kind
        platform = "leetcode" if kind == _FUNCTIONAL else r.choice(["atcoder", "codeforces"])
        out.append(
            {
                "question_title": f"{title} {i}",
                "question_content": f"{statement} {sentence(r)}",
                "platform": platform,
                "question_id": f"{platform[:3]}{3000 + i}",
                "contest_id": f"{platform}{100 + i // 4}",
                "contest_date": f"2024-0{1 + i % 9}-1{i % 10}T00:00:00",
                "starter_code": _STARTERS[func_name] if func_name else "",
                "difficulty": ["easy", "medium", "hard"][i % 3],
                "public_test_cases": json.dumps(public),
                "private_test_cases": encode_private(private),
                "metadata": json.dumps({"func_name": func_name} if func_name else {}),
            }
        )
    return out
