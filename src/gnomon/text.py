"""One lossless codec for text that gnomon hashes, stores or shows.

Text from users and models is arbitrary Python `str`: a JSON row may hold a lone surrogate
(`"\\ud800"`), argv and file names carry undecodable bytes as surrogateescape'd `\\udcXX`, and a
served model can return either. UTF-8 cannot encode those code points, so every boundary that
needs bytes or valid Unicode goes through here:

- `encode` gives the bytes a hash is taken of (UTF-8 with surrogatepass: injective over every
  `str`, and the same bytes as plain UTF-8 for valid text, so existing keys do not move).
- `to_store` / `from_store` map any `str` to valid Unicode for SQLite and back, exactly. Lone
  surrogates become U+FDD0 (a noncharacter, reserved by Unicode for internal use) followed by a
  private-use character that names the surrogate; U+FDD0 itself is doubled. The map works char
  by char, so `to_store(a + b) == to_store(a) + to_store(b)`: a LIKE search with an encoded term
  still finds what it should.
- `dumps` writes JSON that stays valid UTF-8 and reads back with `json.loads` (lone surrogates
  as `\\uXXXX` escapes).
- `shown` is what a person sees: lone surrogates as U+FFFD, everything else unchanged.
"""

from __future__ import annotations

import json
import re
from typing import Any

ESC = "\ufdd0"
_PRIVATE = 0xF0000  # plane 15, private use: ESC + chr(_PRIVATE + k) is surrogate U+D800 + k
_SURROGATE = re.compile("[\ud800-\udfff]")
_NEEDS_STORE = re.compile(f"[\ud800-\udfff{ESC}]")
_STORED = re.compile(f"{ESC}(.)", re.DOTALL)


def encode(text: str) -> bytes:
    """The bytes of `text` for hashing: UTF-8, lone surrogates kept (surrogatepass)."""
    return text.encode("utf-8", "surrogatepass")


def decode(data: bytes) -> str:
    """Inverse of `encode`; bytes that are not even surrogatepass UTF-8 become U+FFFD."""
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return ESC + (ESC if char == ESC else chr(_PRIVATE + ord(char) - 0xD800))


def _unescape(match: re.Match[str]) -> str:
    code = ord(match.group(1))
    if match.group(1) == ESC:
        return ESC
    if _PRIVATE <= code < _PRIVATE + 0x800:
        return chr(0xD800 + code - _PRIVATE)
    return match.group()  # not ours (another tool wrote it): kept as it is


def to_store(text: str) -> str:
    """Valid Unicode standing for `text` exactly; valid text without U+FDD0 is unchanged."""
    return _NEEDS_STORE.sub(_escape, text) if _NEEDS_STORE.search(text) else text


def from_store(text: str) -> str:
    """Inverse of `to_store`."""
    return _STORED.sub(_unescape, text) if ESC in text else text


def shown(text: str) -> str:
    """`text` as a person sees it: each lone surrogate as U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)


def _escape_json(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def dumps(obj: Any, **kwargs: Any) -> str:
    """JSON as readable as `ensure_ascii=False`, yet encodable as UTF-8: a lone surrogate can only
    sit inside a JSON string, where its `\\uXXXX` escape reads back as the same code point."""
    return _SURROGATE.sub(_escape_json, json.dumps(obj, ensure_ascii=False, **kwargs))
