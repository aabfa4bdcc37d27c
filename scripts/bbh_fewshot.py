#!/usr/bin/env python3
"""Write BBH's chain-of-thought worked examples as gnomon's few-shot data file.

lm-evaluation-harness (0.4.13) writes the three worked examples of each of BBH's 27 tasks, and
each task's description, into its `bbh/cot_fewshot/*.yaml` files (benchmark data from the BBH
authors, MIT). This reads those files from the installed `lm_eval` package and writes one JSONL
row per example: `subset`, `description`, `input`, `target`, in the files' order, to
src/gnomon/hub/fewshot/bbh_cot_fewshot.jsonl. Run it once when the reference changes:

    .venv/bin/python scripts/bbh_fewshot.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import lm_eval
import yaml

OUT = Path(__file__).resolve().parent.parent / "src/gnomon/hub/fewshot/bbh_cot_fewshot.jsonl"


class _Loader(yaml.SafeLoader):
    """lm-eval's task files tag Python functions (`!function`); none is needed here."""


_Loader.add_constructor("!function", lambda loader, node: None)


def main() -> int:
    folder = Path(lm_eval.__file__).parent / "tasks" / "bbh" / "cot_fewshot"
    rows = []
    for path in sorted(folder.glob("*.yaml")):
        if path.name.startswith("_"):
            continue
        task = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
        for sample in task["fewshot_config"]["samples"]:
            rows.append(
                {
                    "subset": task["dataset_name"],
                    "description": task["description"],
                    "input": sample["input"],
                    "target": sample["target"],
                }
            )
    subsets = {r["subset"] for r in rows}
    if len(subsets) != 27 or len(rows) != 81:
        print(f"error: expected 27 tasks of 3 examples, found {len(subsets)} / {len(rows)}")
        return 1
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {len(rows)} examples of {len(subsets)} tasks to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
