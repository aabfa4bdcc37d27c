"""The Jinja2 environment every benchmark template runs in, and how a template's failure on a row
becomes one line naming the row and the field.

Sandboxed and immutable, since templates come from benchmark files; undefined names are errors,
so a misspelt field fails at plan time instead of rendering as empty text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from gnomon.errors import UserError

ENV = ImmutableSandboxedEnvironment(
    undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False
)


def evaluate(origin: str, what: str, fn: Callable[..., Any], context: dict[str, Any]) -> Any:
    """`fn(**context)` (a template's render or a compiled expression); an error names `origin`
    (the row's file and line) and `what` (the spec field)."""
    try:
        return fn(**context)
    except TemplateError as exc:
        raise UserError(f"{origin}: {what}: {exc.message}") from None
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise UserError(f"{origin}: {what}: {exc}") from None
