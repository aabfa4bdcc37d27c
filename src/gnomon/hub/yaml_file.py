"""Reading a spec or suite file: its text and its top-level mapping, every problem one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gnomon.errors import UserError


def read_mapping(path: Path, what: str) -> tuple[dict[str, Any], str]:
    """The file's top-level mapping and its text; `what` names the file in errors ("benchmark
    file", "suite file")."""
    try:
        source = path.read_text(encoding="utf-8")
        raw = yaml.safe_load(source)
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (byte {exc.start + 1})") from None
    except OSError as exc:
        raise UserError(f"cannot read {what} {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise UserError(f"{path}{where}: not valid YAML") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: a {what} must be a mapping of fields")
    return raw, source
