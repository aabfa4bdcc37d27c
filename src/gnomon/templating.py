"""The Jinja2 environment every benchmark template runs in, and how a template's failure on a row
becomes one line naming the row and the field.

Sandboxed and immutable, since templates come from benchmark files; undefined names are errors,
so a misspelt field fails at plan time instead of rendering as empty text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from jinja2 import StrictUndefined, TemplateError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from gnomon.errors import UserError

_UNDEFINED = re.compile(r"^'([^']+)' is undefined$")

ENV = ImmutableSandboxedEnvironment(
    undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False
)


def evaluate(origin: str, what: str, fn: Callable[..., Any], context: dict[str, Any]) -> Any:
    """`fn(**context)` (a template's render or a compiled expression); an error names `origin`
    (the row's file and line) and `what` (the spec field)."""
    try:
        return fn(**context)
    except UndefinedError as exc:
        # a name the row lacks: say which field, so the data (not the spec) gets fixed
        found = _UNDEFINED.match(exc.message or "")
        if found and found.group(1) not in context:
            raise UserError(
                f"{origin}: the row has no field `{found.group(1)}`, which the benchmark's "
                f"{what} uses"
            ) from None
        raise UserError(f"{origin}: {what}: {exc.message}") from None
    except TemplateError as exc:
        raise UserError(f"{origin}: {what}: {exc.message}") from None
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise UserError(f"{origin}: {what}: {exc}") from None
