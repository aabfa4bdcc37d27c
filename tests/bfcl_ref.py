"""BFCL's own code and data, out of the `bfcl_eval` wheel, for the tests that prove gnomon's
BFCL checks equal to it (`test_hub_bfcl.py`).

`scripts/bootstrap test` fetches the wheel once into `.cache/offline/`; it is read as a zip and
extracted to a temporary folder, never installed (its dependencies are large). Without it the
tests skip, except under GNOMON_OFFLINE_DATA_REQUIRED=1, where they fail.

What runs of BFCL's code, and what stands in for the rest:
- `bfcl_eval/eval_checker/ast_eval/ast_checker.py` is imported whole, as BFCL imports it. Its
  one heavy import, `bfcl_eval.constants.model_config` (every model handler and their API
  clients), is replaced by a module holding only `MODEL_CONFIG_MAPPING`, with one entry for a
  function-calling model whose dotted names become underscored (`underscore_to_dot=True`, as for
  BFCL's OpenAI models): the entry the checker reads, and nothing else.
- BFCL's verdict on one answer, `_evaluate_single_ast_entry` and
  `_evaluate_single_relevance_entry` (eval_runner.py), the output-shape checks they call
  (`is_function_calling_format_output`, `is_empty_output`: bfcl_eval/utils.py), the OpenAI
  function-calling handler's `decode_ast` (openai_completion.py), the prompting path (BFCL's
  system prompt: `system_prompt_pre_processing_chat_model`, `formulate_system_prompt`,
  `format_function_doc`, `parse_prompt_variation_params` with the constants of
  default_prompts.py; its decoder: `default_decode_ast_prompting`, `ast_parse`,
  `resolve_ast_call`, `resolve_ast_by_type`), and the request-side
  conversion (`_cast_to_openai_type`, `convert_to_tool`: model_handler/utils.py;
  `_func_doc_language_specific_pre_processing` with its helpers: bfcl_eval/utils.py) are taken
  out of their files by name with `ast` and run unchanged: their modules import the
  inference stack (tenacity, tree-sitter parsers, API clients) at the top.
"""

from __future__ import annotations

import ast
import copy
import json
import re
import sys
import types
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from offline import BFCL_EVAL, offline_file

# the stand-in model configs' names (no underscores: BFCL maps them to "/"): a function-calling
# model, whose dotted names the tools interface shows underscored, and a prompted one
MODEL, PROMPTED = "gnomon-FC", "gnomon-prompted"

AST_CATEGORIES = (
    "simple_python", "multiple", "parallel", "parallel_multiple", "live_simple",
    "live_multiple", "live_parallel", "live_parallel_multiple",
)  # fmt: skip
RELEVANCE_CATEGORIES = ("irrelevance", "live_irrelevance", "live_relevance")

Row = dict[str, Any]


def wheel() -> Path:
    return offline_file(BFCL_EVAL)


def _lines(archive: zipfile.ZipFile, member: str) -> list[Row]:
    return [json.loads(line) for line in archive.read(member).decode().splitlines() if line]


def real_rows(category: str) -> list[Row]:
    """The category's rows, each with its possible answers (`ground_truth`) where it has them."""
    with zipfile.ZipFile(wheel()) as archive:
        rows = _lines(archive, f"bfcl_eval/data/BFCL_v4_{category}.json")
        if category in RELEVANCE_CATEGORIES:
            return rows
        answers = _lines(archive, f"bfcl_eval/data/possible_answer/BFCL_v4_{category}.json")
    assert [r["id"] for r in rows] == [a["id"] for a in answers]
    return [{**r, "ground_truth": a["ground_truth"]} for r, a in zip(rows, answers, strict=True)]


def _functions(path: Path, names: set[str], namespace: dict[str, Any]) -> None:
    """Define the named top-level functions (or methods, by their bare name) of a source file
    in `namespace`, as written there."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = [
        node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name in names
    ]
    assert {f.name for f in found} == names, f"{path.name}: {names - {f.name for f in found}}"
    for node in found:
        node.decorator_list = []
        module = ast.Module(body=[node], type_ignores=[])
        exec(compile(module, str(path), "exec"), namespace)  # noqa: S102 - BFCL's own code


class Reference:
    """BFCL's checks, loaded from the extracted wheel."""

    def __init__(self, root: Path) -> None:
        package = root / "bfcl_eval"
        sys.path.insert(0, str(root))
        shim = types.ModuleType("bfcl_eval.constants.model_config")
        shim.MODEL_CONFIG_MAPPING = {  # type: ignore[attr-defined]
            MODEL: types.SimpleNamespace(underscore_to_dot=True),
            PROMPTED: types.SimpleNamespace(underscore_to_dot=False),
        }
        sys.modules["bfcl_eval.constants.model_config"] = shim
        try:
            from bfcl_eval.constants import default_prompts
            from bfcl_eval.constants.enums import Language, ModelStyle, ReturnFormat
            from bfcl_eval.constants.type_mappings import GORILLA_TO_OPENAPI
            from bfcl_eval.eval_checker.ast_eval import ast_checker
        finally:
            sys.path.remove(str(root))
        self.ast_checker = ast_checker.ast_checker
        ns: dict[str, Any] = {
            "json": json, "re": re, "copy": copy, "Language": Language,
            "ReturnFormat": ReturnFormat, "ModelStyle": ModelStyle,
            "ast_checker": ast_checker.ast_checker, "GORILLA_TO_OPENAPI": GORILLA_TO_OPENAPI,
        }  # fmt: skip
        _functions(
            package / "utils.py",
            {"is_function_calling_format_output", "is_empty_output", "is_java", "is_js",
             "_get_language_specific_hint", "_func_doc_language_specific_pre_processing"},
            ns,
        )  # fmt: skip
        _functions(
            package / "eval_checker" / "eval_runner.py",
            {"_evaluate_single_ast_entry", "_evaluate_single_relevance_entry"},
            ns,
        )
        ns.update({k: v for k, v in vars(default_prompts).items() if k.isupper()})
        ns["ast"] = ast
        _functions(package / "utils.py", {"extract_prompt_format_from_id"}, ns)
        _functions(
            package / "model_handler" / "utils.py",
            {"_cast_to_openai_type", "convert_to_tool", "system_prompt_pre_processing_chat_model",
             "formulate_system_prompt", "format_function_doc", "parse_prompt_variation_params",
             "default_decode_ast_prompting", "ast_parse", "resolve_ast_call",
             "resolve_ast_by_type"},
            ns,
        )  # fmt: skip
        _functions(
            package / "model_handler" / "api_inference" / "openai_completion.py",
            {"decode_ast"},
            ns,
        )
        fc, prompted = (types.SimpleNamespace(is_fc_model=flag) for flag in (True, False))
        decode: Callable[..., Any] = ns["decode_ast"]
        self.handler = types.SimpleNamespace(decode_ast=lambda *a, **k: decode(fc, *a, **k))
        self.prompted = types.SimpleNamespace(decode_ast=lambda *a, **k: decode(prompted, *a, **k))
        self.ns = ns
        self.mapping = GORILLA_TO_OPENAPI
        self.style = ModelStyle.OPENAI_COMPLETIONS
        self.python = Language.PYTHON
        self.return_format = ReturnFormat.PYTHON

    def tools(self, row: Row, category: str) -> list[dict[str, Any]]:
        """The `tools` BFCL's OpenAI function-calling handler sends for this row."""
        functions = self.ns["_func_doc_language_specific_pre_processing"](
            copy.deepcopy(row["function"]), category
        )
        return self.ns["convert_to_tool"](functions, self.mapping, self.style)

    def messages(self, row: Row, category: str) -> list[dict[str, Any]]:
        """The messages BFCL's prompting handlers send for this row (its system prompt first)."""
        functions = self.ns["_func_doc_language_specific_pre_processing"](
            copy.deepcopy(row["function"]), category
        )
        return self.ns["system_prompt_pre_processing_chat_model"](
            copy.deepcopy(row["question"][0]), functions, row["id"]
        )

    def decode_prompted(self, text: str) -> Any:
        """What BFCL's prompting decoder reads out of a model's text (it raises if nothing)."""
        return self.ns["default_decode_ast_prompting"](text, self.return_format, False)

    def verdict(self, row: Row, category: str, result: Any, prompted: bool = False) -> bool:
        """BFCL's verdict on a model result as its OpenAI handler records it: a list of
        `{name: arguments text}` when the model called tools, else the message's text (all a
        prompted model gives)."""
        prompt = copy.deepcopy({k: v for k, v in row.items() if k != "ground_truth"})
        handler, model = (self.prompted, PROMPTED) if prompted else (self.handler, MODEL)
        if category in RELEVANCE_CATEGORIES:
            entry = self.ns["_evaluate_single_relevance_entry"](
                handler, row["id"], result, prompt, model, category
            )
        else:
            entry = self.ns["_evaluate_single_ast_entry"](
                handler, row["id"], result, row["ground_truth"], prompt, model, category,
                language=self.python, return_format=self.return_format,
            )  # fmt: skip
        return bool(entry["valid"])


def load_reference(tmp: Path) -> Reference:
    with zipfile.ZipFile(wheel()) as archive:
        archive.extractall(tmp)
    return Reference(tmp)


def unload() -> None:
    """Forget BFCL's modules, so nothing else sees the stand-in."""
    for name in [n for n in sys.modules if n == "bfcl_eval" or n.startswith("bfcl_eval.")]:
        del sys.modules[name]
