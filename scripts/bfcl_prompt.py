#!/usr/bin/env python3
"""Writes BFCL's default system prompt for models without function calling (benchmark data,
not gnomon's words) into src/gnomon/hub/fewshot/bfcl_system_prompt.json: the prompt BFCL's
prompting handlers put before a question (Python call syntax, no tool-call tag, function docs as
JSON, plain text, its classic style), with `{functions}` where the row's docs go.

It reads the pieces from the `bfcl_eval` wheel that `scripts/bootstrap test` fetches into
.cache/offline/ (read as a zip, never installed):

    .venv/bin/python scripts/bfcl_prompt.py [--wheel PATH] [--check]

`--check` only says whether the file is up to date (exit 1 if not). tests/test_hub_bfcl.py
proves that the prompts built from it equal BFCL's own on every real row.
"""

from __future__ import annotations

import argparse
import json
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WHEEL = ROOT / ".cache" / "offline" / "bfcl_eval-2026.3.23-py3-none-any.whl"
OUT = ROOT / "src" / "gnomon" / "hub" / "fewshot" / "bfcl_system_prompt.json"
MEMBER = "bfcl_eval/constants/default_prompts.py"
DEFAULT = "ret_fmt=python&tool_call_tag=False&func_doc_fmt=json&prompt_fmt=plaintext&style=classic"


def build(wheel: Path) -> str:
    namespace: dict[str, object] = {}
    with zipfile.ZipFile(wheel) as archive:
        source = archive.read(MEMBER).decode()
    exec(compile(source, MEMBER, "exec"), namespace)  # noqa: S102 - constants only, no imports
    assert namespace["DEFAULT_SYSTEM_PROMPT_FORMAT"] == DEFAULT, "BFCL's default format moved"
    style = namespace["PROMPT_STYLE_TEMPLATES"]["classic"]  # type: ignore[index]
    layout = namespace["PROMPT_TEMPLATE_MAPPING"]["plaintext"]  # type: ignore[index]
    call_format = style["tool_call_no_tag"].format(
        output_format=namespace["OUTPUT_FORMAT_MAPPING"]["python"],  # type: ignore[index]
        param_types=namespace["PARAM_TYPE_MAPPING"]["python"],  # type: ignore[index]
    )
    tools = style["available_tools"].replace("{format}", "json")
    template = layout.format(
        persona=style["persona"],
        task=style["task"],
        tool_call_format=call_format,
        multiturn_behavior=style["multiturn_behavior"],
        available_tools=tools,
    )
    assert template.count("{functions}") == 1
    payload = {"format": DEFAULT, "source": f"bfcl-eval 2026.3.23, {MEMBER}", "template": template}
    return json.dumps(payload, indent=1, ensure_ascii=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, default=WHEEL)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    text = build(args.wheel)
    if args.check:
        current = OUT.read_text(encoding="utf-8") if OUT.is_file() else ""
        print("up to date" if current == text else f"{OUT} is stale")
        return 0 if current == text else 1
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
