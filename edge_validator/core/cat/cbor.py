"""A strict CBOR (RFC 8949) subset for tokens: decode with limits, encode deterministically.

Only what CWT and COSE use is accepted: unsigned and negative integers, byte and text strings,
arrays, maps with integer or text keys, false/true/null, floats (RFC 8392 dates may be floats),
and the tags the caller allows. Everything else is refused, never repaired:

- definite lengths only (no indefinite-length items, no break codes);
- preferred serialization: an integer, length or float in its shortest form;
- no duplicate map keys; text strings valid UTF-8; no trailing bytes;
- a declared length larger than the bytes left is refused before anything is allocated;
- depth and item-count limits, so a small token cannot make the decoder do much work.

Map key order is not enforced on input (published CAT encoders write maps in insertion order);
``encode`` always writes RFC 8949 section 4.2.1 deterministic order. Standard library only.
"""

from __future__ import annotations

import math
import struct
from typing import NamedTuple, TypeAlias

from ..errors import MalformedToken

MAX_DEPTH = 8
MAX_ITEMS = 256
_UINT = (None, struct.Struct(">B"), struct.Struct(">H"), None, struct.Struct(">I"))
_U64 = struct.Struct(">Q")
_F16, _F32, _F64 = struct.Struct(">e"), struct.Struct(">f"), struct.Struct(">d")

Value: TypeAlias = "int | bytes | str | list[Value] | dict[Key, Value] | bool | float | Tag | None"
Key: TypeAlias = "int | str"


class Tag(NamedTuple):
    """A tagged item: ``tag`` number and the item it wraps."""

    tag: int
    value: Value


# Bytes that are not the strict CBOR a token may carry: a malformed token, nothing more.
CborError = MalformedToken


class _Reader:
    __slots__ = ("data", "depth", "items", "max_depth", "pos", "tags")

    def __init__(self, data: bytes, tags: frozenset[int], max_depth: int, max_items: int) -> None:
        self.data = data
        self.pos = 0
        self.tags = tags
        self.max_depth = max_depth
        self.items = max_items
        self.depth = 0

    def argument(self, info: int) -> int:
        """The head's argument, refusing non-shortest forms and indefinite lengths."""
        if info < 24:
            return info
        if info == 27:
            size = 8
        elif info in (24, 25, 26):
            size = 1 << (info - 24)
        else:  # 28-30 reserved, 31 indefinite length / break
            raise CborError("indefinite length or reserved CBOR head")
        end = self.pos + size
        if end > len(self.data):
            raise CborError("truncated CBOR")
        if size == 8:
            value: int = _U64.unpack_from(self.data, self.pos)[0]
        else:
            codec = _UINT[size]
            assert codec is not None
            value = codec.unpack_from(self.data, self.pos)[0]
        self.pos = end
        # Shortest form: each size must be needed.
        if value < (24 if size == 1 else 1 << (4 * size)):
            raise CborError("CBOR integer not in its shortest form")
        return value

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):  # checked before slicing: a huge length allocates nothing
            raise CborError("truncated CBOR")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def item(self) -> Value:
        self.items -= 1
        if self.items < 0:
            raise CborError("too many CBOR items")
        if self.pos >= len(self.data):
            raise CborError("truncated CBOR")
        head = self.data[self.pos]
        self.pos += 1
        major, info = head >> 5, head & 0x1F
        if major == 7:
            return self.simple(info)
        arg = info if info < 24 else self.argument(info)  # most heads carry their argument
        if major == 0:
            return arg
        if major == 1:
            return -1 - arg
        if major == 2:
            return self.take(arg)
        if major == 3:
            try:
                return self.take(arg).decode("utf-8")
            except UnicodeDecodeError:
                raise CborError("CBOR text is not UTF-8") from None
        if major == 6:
            if arg not in self.tags:
                raise CborError(f"CBOR tag {arg} is not allowed here")
            self.enter()
            value: Value = Tag(arg, self.item())
        # Arrays and maps: each element is at least one byte, so a count larger than the bytes
        # left is a lie told to make the decoder loop or allocate.
        elif arg > len(self.data) - self.pos:
            raise CborError("CBOR container longer than the token")
        elif major == 4:
            self.enter()
            value = [self.item() for _ in range(arg)]
        else:
            self.enter()
            value = self.map(arg)
        self.depth -= 1
        return value

    def enter(self) -> None:
        self.depth += 1
        if self.depth > self.max_depth:
            raise CborError("CBOR nested too deeply")

    def map(self, count: int) -> dict[Key, Value]:
        out: dict[Key, Value] = {}
        for _ in range(count):
            key = self.item()
            if type(key) is not int and type(key) is not str:
                raise CborError("CBOR map key must be an integer or text")
            if key in out:
                raise CborError("duplicate CBOR map key")
            out[key] = self.item()
        return out

    def simple(self, info: int) -> Value:
        if info == 20:
            return False
        if info == 21:
            return True
        if info == 22:
            return None
        if info in (25, 26, 27):
            codec = {25: _F16, 26: _F32, 27: _F64}[info]
            value: float = codec.unpack(self.take(codec.size))[0]
            if math.isnan(value) or math.isinf(value) or _encode_float(value)[0] != 0xE0 | info:
                raise CborError("CBOR float not finite or not in its shortest form")
            return value
        raise CborError("CBOR simple value not allowed")


def decode(
    data: bytes,
    *,
    tags: frozenset[int] = frozenset(),
    max_depth: int = MAX_DEPTH,
    max_items: int = MAX_ITEMS,
) -> Value:
    """One CBOR item that fills ``data`` exactly. Raises CborError (a MalformedToken)."""
    reader = _Reader(data, tags, max_depth, max_items)
    try:
        value = reader.item()
    except RecursionError:  # pragma: no cover - max_depth keeps far below the interpreter's
        raise CborError("CBOR nested too deeply") from None
    if reader.pos != len(data):
        raise CborError("trailing bytes after CBOR item")
    return value


def bstr_head(length: int) -> bytes:
    """The head of a byte string of ``length`` bytes (for structures built by hand)."""
    return _head(2, length)


def _head(major: int, arg: int) -> bytes:
    if arg < 24:
        return bytes((major << 5 | arg,))
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if arg < 1 << (8 * size):
            return bytes((major << 5 | info,)) + arg.to_bytes(size, "big")
    raise ValueError("integer too large for CBOR")


def _encode_float(value: float) -> bytes:
    for info, codec in ((25, _F16), (26, _F32)):
        try:
            packed = codec.pack(value)
        except (OverflowError, struct.error):
            continue
        if codec.unpack(packed)[0] == value:
            return bytes((0xE0 | info,)) + packed
    return b"\xfb" + _F64.pack(value)


def encode(value: Value) -> bytes:
    """Deterministic encoding (RFC 8949 section 4.2.1): shortest forms, sorted map keys."""
    if value is False:
        return b"\xf4"
    if value is True:
        return b"\xf5"
    if value is None:
        return b"\xf6"
    if isinstance(value, int):
        return _head(0, value) if value >= 0 else _head(1, -1 - value)
    if isinstance(value, float):
        return _encode_float(value)
    if isinstance(value, bytes):
        return _head(2, len(value)) + value
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return _head(3, len(raw)) + raw
    if isinstance(value, Tag):
        return _head(6, value.tag) + encode(value.value)
    if isinstance(value, list):
        return _head(4, len(value)) + b"".join(encode(v) for v in value)
    if isinstance(value, dict):
        pairs = sorted((encode(k), encode(v)) for k, v in value.items())
        return _head(5, len(pairs)) + b"".join(k + v for k, v in pairs)
    raise TypeError(f"cannot encode {type(value).__name__} as CBOR")
