"""Does this response answer this request? Checks an API client can make without server help.

A proxy or a keep-alive connection that goes wrong can hand one request the answer to another
(a duplicated or shifted response). Stored as if it were the right answer, it silently changes
predictions. What a client can check depends on what the server gives back:

- the echoed prompt (completions with `echo`), checked where scores are read;
- the `X-Request-Id` header, once the server has shown that it echoes the one sent;
- the response `id`: servers make it unique per response, so an `id` already seen with the same
  choices, answering a *different* request, is a replayed response.

A response to a different request whose `id` is new, whose server echoes no request id and that
carries no echo (chat and generation) cannot be told apart from the right one.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from typing import Any

REQUEST_ID_HEADER = "x-request-id"


class Mismatch(Exception):
    """The response belongs to another request: a fault to retry, never an answer to store."""


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()  # lone surrogates too


class ResponseLedger:
    """What one engine has accepted in a run: response ids and whether the server echoes ours."""

    def __init__(self) -> None:
        self._ids: dict[str, tuple[str, str]] = {}  # response id -> (request, choices) digests
        self.echoes_request_id = False

    @staticmethod
    def new_request_id() -> str:
        return f"gnomon-{uuid.uuid4().hex}"

    def check_header(self, headers: Mapping[str, str], sent: str) -> None:
        """Servers that echo `X-Request-Id` prove it on the first match; from then on a different
        id means the response was meant for someone else. Servers that set their own id (most
        vendor APIs) never match and are never held to it."""
        echoed = headers.get(REQUEST_ID_HEADER)
        if echoed is None:
            return
        if echoed == sent:
            self.echoes_request_id = True
        elif self.echoes_request_id:
            raise Mismatch(f"response carries request id {echoed[:60]!r}, not ours")

    def claim(self, data: Mapping[str, Any], request: Mapping[str, Any]) -> None:
        """Record the response's `id` for this request; a replay (same id, same choices) that
        arrives for a different request is a `Mismatch`. A server that reuses one id for
        different answers is not fooled into rejecting them: their choices differ."""
        response_id = data.get("id")
        if not isinstance(response_id, str) or not response_id:
            return
        asked, said = _digest(request), _digest(data.get("choices"))
        before = self._ids.get(response_id)
        if before is not None and before[0] != asked and before[1] == said:
            raise Mismatch(f"response {response_id[:60]!r} already answered another request")
        if before is None:
            self._ids[response_id] = (asked, said)
