"""BFCL v4 rows (`bfcl_eval/data/BFCL_v4_<category>.json`): `id` (`<category>_<n>`, live rows
`<category>_<n>-<m>-<k>`), `question` (a list of turns, each a list of `role`/`content`
messages; single-turn rows have one), `function` (BFCL's function docs: dotted names, types in
BFCL's dialect, `parameters.type` "dict", `required`), and for the AST categories the possible
answers merged in as `ground_truth` (a list of `{function name: {parameter: [values]}}`, "" among
the values of a parameter that may be left out), as `--data` rows carry them.
"""

from __future__ import annotations

import random
from typing import Any

from gnomon.rowgen import RowDict, rows
from gnomon.rowgen._text import NAMES, NOUNS, rng

CATEGORIES = {
    "bfcl_simple": "simple_python",
    "bfcl_multiple": "multiple",
    "bfcl_parallel": "parallel",
    "bfcl_parallel_multiple": "parallel_multiple",
    "bfcl_irrelevance": "irrelevance",
    "bfcl_live_simple": "live_simple",
    "bfcl_live_multiple": "live_multiple",
    "bfcl_live_parallel": "live_parallel",
    "bfcl_live_parallel_multiple": "live_parallel_multiple",
    "bfcl_live_irrelevance": "live_irrelevance",
    "bfcl_live_relevance": "live_relevance",
}


def _doc(r: random.Random, index: int) -> dict[str, Any]:
    noun = r.choice(NOUNS)
    return {
        "name": f"shop.count_{noun}" if index % 2 == 0 else f"find_{noun}",
        "description": f"Count the {noun} items a person owns.",
        "parameters": {
            "type": "dict",
            "properties": {
                "owner": {"type": "string", "description": "Who owns them."},
                "limit": {"type": "integer", "description": "At most this many."},
                "weight": {"type": "float", "description": "Their weight in kilograms."},
                "tags": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "Labels to match.",
                },
            },
            "required": ["owner"],
        },
    }


def _answer(r: random.Random, doc: dict[str, Any]) -> tuple[dict[str, Any], str]:
    owner, limit = r.choice(NAMES), r.randint(1, 9)
    answer = {
        doc["name"]: {"owner": [owner], "limit": [limit, ""], "weight": [""], "tags": [[], ""]}
    }
    return answer, f"how many does {owner} own, at most {limit}"


def _make(bench: str, n: int, seed: int) -> list[RowDict]:
    category = CATEGORIES[bench.removesuffix("_prompt")]
    r = rng(seed, bench)
    out: list[RowDict] = []
    for i in range(n):
        live = category.startswith("live")
        row_id = f"{category}_{i}-{i % 3}-0" if live else f"{category}_{i}"
        docs = [_doc(r, j) for j in range(1 if "multiple" not in category else 3)]
        calls = 2 if "parallel" in category else 1
        answers, asks = [], []
        for _ in range(calls):
            answer, ask = _answer(r, r.choice(docs))
            answers.append(answer)
            asks.append(ask)
        messages = [{"role": "user", "content": "Tell me " + " and ".join(asks) + "."}]
        if live and i % 4 == 0:
            messages.insert(0, {"role": "system", "content": "You help with a shop's stock."})
        row: RowDict = {"id": row_id, "question": [messages], "function": docs}
        if "relevance" not in category:
            row["ground_truth"] = answers
        out.append(row)
    return out


def _maker(bench: str) -> Any:
    @rows(bench, sizes={"test": 8})
    def make(split: str, n: int, seed: int) -> list[RowDict]:
        return _make(bench, n, seed)

    return make


for _bench in CATEGORIES:
    _maker(_bench)
    _maker(f"{_bench}_prompt")  # the same rows, the functions in BFCL's system prompt
