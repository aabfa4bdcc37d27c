"""Plain data across the pipe between a sandbox's judge and the solution's process.

Only exact builtin types cross (None, bool, int, float, complex, str, bytes, bytearray, list,
tuple, dict, set, frozenset), and the receiving side rebuilds them from bytes with its own
constructors, so nothing of the sender's (a subclass, an `__eq__`, a patched type) reaches the
judge. The decoder is written for hostile input: every length is checked against what is left,
nesting is bounded, and anything malformed raises `NotPlain`.

This module runs in two worlds: gnomon imports it, and the sandbox prepends its text to the
harness it starts with `python -I -c` (no gnomon there), so it imports only `os` and `struct`.
"""

import os
import struct

MAX_DEPTH = 200  # nesting of containers, both ways
_LENGTH = struct.Struct("<Q")
_FLOAT = struct.Struct("<d")
_COMPLEX = struct.Struct("<dd")
_CONTAINERS: dict[type, bytes] = {list: b"l", tuple: b"t", set: b"S", frozenset: b"Z"}
_BUILDERS = {ord("l"): list, ord("t"): tuple, ord("S"): set, ord("Z"): frozenset}


class NotPlain(Exception):
    """A value that is not plain data, or bytes that do not decode to plain data."""


def dumps(value):
    """The bytes of a plain value; `NotPlain` names the first value that is not plain."""
    out: list[bytes] = []
    _encode(value, out, 0)
    return b"".join(out)


def _encode(value, out, depth):
    if depth > MAX_DEPTH:
        raise NotPlain(f"nested deeper than {MAX_DEPTH}")
    kind = type(value)  # exact types only: a subclass is not plain, whatever it claims
    if value is None:
        out.append(b"N")
    elif kind is bool:
        out.append(b"T" if value else b"F")
    elif kind is int:
        size = (value.bit_length() + 8) // 8
        out.append(b"i" + _LENGTH.pack(size) + value.to_bytes(size, "little", signed=True))
    elif kind is float:
        out.append(b"f" + _FLOAT.pack(value))
    elif kind is complex:
        out.append(b"c" + _COMPLEX.pack(value.real, value.imag))
    elif kind is str:
        data = value.encode("utf-8", "surrogatepass")
        out.append(b"s" + _LENGTH.pack(len(data)) + data)
    elif kind is bytes or kind is bytearray:
        out.append((b"b" if kind is bytes else b"B") + _LENGTH.pack(len(value)) + bytes(value))
    elif kind is dict:
        out.append(b"d" + _LENGTH.pack(len(value)))
        for key, item in list(value.items()):
            _encode(key, out, depth + 1)
            _encode(item, out, depth + 1)
    elif kind in _CONTAINERS:
        items = list(value)
        out.append(_CONTAINERS[kind] + _LENGTH.pack(len(items)))
        for item in items:
            _encode(item, out, depth + 1)
    else:
        raise NotPlain(f"a {_type_name(value)} is not plain data")


def _type_name(value):
    try:
        return str(type(value).__name__)[:60]
    except BaseException:
        return "object"


def loads(data):
    """The plain value in `data`; `NotPlain` for anything else, including trailing bytes."""
    reader = _Reader(bytes(data))
    value = reader.value(0)
    if reader.at != len(reader.data):
        raise NotPlain("trailing bytes after the value")
    return value


class _Reader:
    def __init__(self, data):
        self.data = data
        self.at = 0

    def take(self, size):
        end = self.at + size
        if size < 0 or end > len(self.data):
            raise NotPlain("truncated data")
        chunk = self.data[self.at : end]
        self.at = end
        return chunk

    def count(self):
        (size,) = _LENGTH.unpack(self.take(_LENGTH.size))
        if size > len(self.data) - self.at:  # each item takes at least one byte
            raise NotPlain("a length longer than the data")
        return size

    def value(self, depth):
        if depth > MAX_DEPTH:
            raise NotPlain(f"nested deeper than {MAX_DEPTH}")
        tag = self.take(1)[0]
        if tag == ord("N"):
            return None
        if tag == ord("T"):
            return True
        if tag == ord("F"):
            return False
        if tag == ord("i"):
            return int.from_bytes(self.take(self.count()), "little", signed=True)
        if tag == ord("f"):
            return _FLOAT.unpack(self.take(_FLOAT.size))[0]
        if tag == ord("c"):
            return complex(*_COMPLEX.unpack(self.take(_COMPLEX.size)))
        if tag == ord("s"):
            try:
                return self.take(self.count()).decode("utf-8", "surrogatepass")
            except UnicodeDecodeError:
                raise NotPlain("a string that is not UTF-8") from None
        if tag == ord("b"):
            return self.take(self.count())
        if tag == ord("B"):
            return bytearray(self.take(self.count()))
        if tag == ord("d"):
            size = self.count()
            result = {}
            for _ in range(size):
                key = self.value(depth + 1)
                try:
                    result[key] = self.value(depth + 1)
                except TypeError:
                    raise NotPlain("an unhashable dict key") from None
            return result
        if tag in _BUILDERS:
            items = [self.value(depth + 1) for _ in range(self.count())]
            try:
                return _BUILDERS[tag](items)
            except TypeError:
                raise NotPlain("an unhashable set item") from None
        raise NotPlain(f"unknown tag {tag}")


class Channel:
    """Length-prefixed messages over a pair of pipes. `limit` bounds what one message may take,
    so a hostile sender cannot make the receiver allocate without end."""

    def __init__(self, inbox, outbox, limit):
        self._read, self._write = os.read, os.write  # a program that patches os keeps its pipe
        self.inbox = inbox
        self.outbox = outbox
        self.limit = limit

    def send(self, value):
        data = dumps(value)
        view = memoryview(_LENGTH.pack(len(data)) + data)
        while view:
            view = view[self._write(self.outbox, view) :]

    def receive(self):
        """The next message, or `EOFError` when the other side has gone."""
        (size,) = _LENGTH.unpack(self._exactly(_LENGTH.size))
        if size > self.limit:
            raise NotPlain(f"a message of {size} bytes (the limit is {self.limit})")
        return loads(self._exactly(size))

    def _exactly(self, size):
        parts, left = [], size
        while left:
            chunk = self._read(self.inbox, min(left, 1 << 20))
            if not chunk:
                raise EOFError
            parts.append(chunk)
            left -= len(chunk)
        return b"".join(parts)
