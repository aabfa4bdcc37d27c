"""The names and slugs models are shown under: distinct whenever the models are.

Two models may share a display name (the same served model name at two URLs, one checkpoint in
two dtypes, or anything a tool wrote to the store). Such names get the part of the identity key
that tells them apart, e.g. the host, so a reader sees what differs rather than a hash.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Mapping

from gnomon.text import encode, shown

_SEPARATORS = "@/|"  # not ":", so a host keeps its port
_SURROGATE = re.compile("[\ud800-\udfff]")
_LONGEST_PART = 40


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def _readable(key: str) -> str:
    """The key as text a page can show, a lone surrogate as an escape rather than U+FFFD (so
    keys differing only there still read differently): an undecodable byte from a path as
    `\\xNN`, any other as `\\uNNNN`."""
    return _SURROGATE.sub(_escape, key)


def _differing(keys: list[str]) -> dict[str, str]:
    """What sets each key apart from the others in its group: the keys less their longest
    common prefix and suffix, widened to whole `@/|`-separated parts. Keys that are distinct
    stay distinct, as only a part every key shares is cut."""
    texts = {k: _readable(k) for k in keys}
    shortest = min(len(t) for t in texts.values())
    head = 0
    while head < shortest and len({t[head] for t in texts.values()}) == 1:
        head += 1
    tail = 0
    while tail < shortest - head and len({t[-1 - tail] for t in texts.values()}) == 1:
        tail += 1
    sample = next(iter(texts.values()))
    while head > 0 and sample[head - 1] not in _SEPARATORS:
        head -= 1
    while tail > 0 and sample[len(sample) - tail] not in _SEPARATORS:
        tail -= 1
    return {key: _short(text[head : len(text) - tail]) for key, text in texts.items()}


def _short(part: str) -> str:
    """A part fit for a table cell; a cut one may repeat, which `display_names` numbers."""
    if len(part) > _LONGEST_PART:
        return f"{part[:24]}…{part[-12:]}"
    return part or "—"


def display_names(names: Mapping[str, str]) -> dict[str, str]:
    """Model key -> the name to show, pairwise distinct as shown (lone surrogates as U+FFFD)."""
    out = {key: shown(name) for key, name in names.items()}
    groups: dict[str, list[str]] = defaultdict(list)
    for key, name in out.items():
        groups[name].append(key)
    for name, keys in groups.items():
        if len(keys) < 2:
            continue
        kinds: dict[str, list[str]] = defaultdict(list)  # openai:, hf:, ... compared apart
        for key in keys:
            kinds[key.split(":", 1)[0] if ":" in key else ""].append(key)
        for kind in kinds.values():
            parts = _differing(kind) if len(kind) > 1 else {kind[0]: _short(_readable(kind[0]))}
            for key, part in parts.items():
                out[key] = f"{name} [{part}]"
    # a suffixed name may meet another model's own name, or a cut part may repeat: number those
    if len(set(out.values())) == len(out):
        return out
    wanted = set(out.values())
    used: set[str] = set()
    for key in sorted(out):
        name, n = out[key], 1
        while name in used or (n > 1 and name in wanted):
            n += 1
            name = f"{out[key]} #{n}"
        used.add(name)
        out[key] = name
    return out


def _slug_base(name: str) -> str:
    base = re.sub(r"[^a-z0-9._]+", "-", name.lower()).strip("-.")[-48:].strip("-.")
    return base or "model"


def slugs(names: Mapping[str, str]) -> dict[str, str]:
    """Model key -> URL and file name: the display name made safe plus a short hash of the key,
    lengthened to the full SHA-256 for keys whose short slugs meet (never two models, one
    page). Lower case only, so they stay distinct on case-insensitive filesystems."""
    digests = {key: hashlib.sha256(encode(key)).hexdigest() for key in names}
    short = {key: f"{_slug_base(names[key])}-{digests[key][:6]}" for key in names}
    seen = Counter(short.values())
    return {
        key: slug if seen[slug] == 1 else f"{_slug_base(names[key])}-{digests[key]}"
        for key, slug in short.items()
    }
