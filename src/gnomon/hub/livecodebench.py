"""LiveCodeBench rows: their test cases, read without trusting the data.

A row's `private_test_cases` is JSON text, or (in the released files) base64 of zlib of a pickle
of that JSON text. LiveCodeBench unpickles it as is; a pickle can name any callable to run while
it loads, so here it is read by an unpickler that resolves no global and no persistent id at all:
a pickle of a string needs neither, and anything else is refused before any of it runs.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import pickle
import zlib
from typing import Any

Row = dict[str, Any]
# the largest decompressed test data accepted for one row (the released rows reach ~200 MB)
MAX_TEST_BYTES = 1 << 30


class _StringsOnly(pickle.Unpickler):
    """Builds plain values only: every class or function lookup is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"it names {module}.{name}, and only a string is accepted")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("it holds a persistent reference, and only a string is")


def decode_private(text: str) -> list[dict[str, Any]]:
    """The private test cases of a row, as LiveCodeBench reads them, without running anything
    the data carries; ValueError says why a row's cases cannot be read."""
    try:
        cases = json.loads(text)
    except ValueError:
        cases = json.loads(_unpickled(_inflated(text)))
    return _checked(cases, "private_test_cases")


def _inflated(text: str) -> bytes:
    try:
        packed = base64.b64decode(text.encode("ascii"), validate=True)
        inflater = zlib.decompressobj()
        raw = inflater.decompress(packed, MAX_TEST_BYTES)
    except (UnicodeEncodeError, binascii.Error, zlib.error) as exc:
        raise ValueError(
            f"private_test_cases is neither JSON nor base64 of zlib data ({exc})"
        ) from None
    if inflater.unconsumed_tail:
        raise ValueError(f"private_test_cases inflates past {MAX_TEST_BYTES >> 20} MiB")
    return raw


def _unpickled(raw: bytes) -> str:
    try:
        value = _StringsOnly(io.BytesIO(raw)).load()
    except Exception as exc:  # a malformed pickle raises any of several kinds
        raise ValueError(f"private_test_cases is a pickle gnomon refuses: {exc}") from None
    if not isinstance(value, str):
        raise ValueError(
            f"private_test_cases is a pickle of {type(value).__name__}, not of JSON text"
        )
    return value


def _checked(cases: Any, field: str) -> list[dict[str, Any]]:
    if not isinstance(cases, list):
        raise ValueError(f"{field} is not a list of test cases")
    for case in cases:
        if not (
            isinstance(case, dict)
            and isinstance(case.get("input"), str)
            and isinstance(case.get("output"), str)
            and case.get("testtype") in ("stdin", "functional")
        ):
            raise ValueError(
                f"{field} holds a case that is not {{input, output, testtype}} text: {case!r:.80}"
            )
    return cases


def livecodebench(row: Row) -> Row:
    """`lcb_cases`: every test case (public, then private, as LiveCodeBench runs them) as a
    Python literal of (input, output) pairs, for the judge's tests; `fn_name`: the method a
    functional problem's `Solution` defines, "" for a stdin problem."""
    public = _checked(json.loads(row["public_test_cases"]), "public_test_cases")
    cases = public + decode_private(row["private_test_cases"])
    if not cases:
        raise ValueError("the row has no test cases")
    metadata = json.loads(row["metadata"]) if row.get("metadata") else {}
    fn_name = metadata.get("func_name") if isinstance(metadata, dict) else None
    if fn_name is not None and not (isinstance(fn_name, str) and fn_name.isidentifier()):
        raise ValueError(f"metadata's func_name is not a Python name: {fn_name!r:.80}")
    pairs = [(case["input"], case["output"]) for case in cases]
    return {**row, "lcb_cases": repr(pairs), "fn_name": fn_name or ""}


ROW_FIELDS = ("public_test_cases", "private_test_cases", "metadata")
