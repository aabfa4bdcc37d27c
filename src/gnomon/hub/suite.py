"""Suites: named lists of benchmarks (`--bench suite:base`), data files like the specs themselves.

A suite names each benchmark by hub id or by a spec file path (relative to the suite file), in its
standard setting; `pending` names benchmarks the suite will hold once the hub has them, shown but
not run. A name that resolves to nothing is reported with the suite file's line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gnomon.errors import UserError
from gnomon.hub.yaml_file import read_mapping

SUITE_DIR = Path(__file__).parent / "suites"
PREFIX = "suite:"


class SuiteSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$")]
    title: str
    description: str = ""
    benchmarks: list[str] = Field(min_length=1)
    pending: list[str] = Field(
        default_factory=list, description="benchmarks the suite will run once the hub has them"
    )


def suite_ids() -> list[str]:
    return sorted(p.stem for p in SUITE_DIR.glob("*.yaml"))


def is_suite_file(path: Path) -> bool:
    """A YAML file whose top level has `benchmarks:` is a suite, not a benchmark spec."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return False
    return isinstance(raw, dict) and "benchmarks" in raw and "prompt" not in raw


def suite_path(name: str) -> Path:
    """`suite:ID` (built in) or `suite:FILE.yaml` / a suite file path."""
    word = name.removeprefix(PREFIX)
    builtin = SUITE_DIR / f"{word}.yaml"
    if not word.endswith((".yaml", ".yml")) and builtin.is_file():
        return builtin
    path = Path(word)
    if path.is_file():
        return path
    if word.endswith((".yaml", ".yml")):
        raise UserError(f"suite file not found: {word}")
    raise UserError(f"unknown suite {word!r}; known: {', '.join(suite_ids())}")


def load_suite(path: Path) -> tuple[SuiteSpec, dict[str, int]]:
    """The suite and, for each benchmark it names, the line of the file that names it."""
    raw, source = read_mapping(path, "suite file")
    node = yaml.compose(source)  # parsed once already: this cannot fail
    try:
        suite = SuiteSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(top level)"
        message = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
        raise UserError(f"{path}: field `{field}`: {message}") from None
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == "benchmarks" and isinstance(value, yaml.SequenceNode):
                for item in value.value:
                    lines.setdefault(str(item.value), item.start_mark.line + 1)
    return suite, lines
