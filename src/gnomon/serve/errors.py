"""The errors the server sends, in OpenAI's body (`{"error": {"message", "type", "code"}}`) and
with its status codes, because clients (the openai package, lm-evaluation-harness) branch on them.
"""

from __future__ import annotations

from typing import Any


class APIError(Exception):
    """An error the client caused (or must know about), sent as OpenAI's error body."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = (
            status,
            message,
            type_,
            code,
            param,
        )
        self.headers = headers


def error_body(
    message: str, type_: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}
