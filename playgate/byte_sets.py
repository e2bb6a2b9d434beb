"""Which bytes a string may hold, checked by ``bytes.translate`` with a whole table.

``data.translate(None, allowed)`` (delete the allowed bytes, anything left is refused) builds a
256-entry table on every call: about 1,500 instructions whatever the length, six times per
segment in the server's fast path. ``data.translate(table) == data``, with a table that maps
every refused byte to another byte and every allowed one to itself, is one pass over ``data``
and one comparison (``tests/unit/test_byte_sets.py`` compares the two).
"""

from __future__ import annotations

from collections.abc import Iterable


def table_allowing(allowed: Iterable[int]) -> bytes:
    """A ``bytes.translate`` table: ``data.translate(table) == data`` exactly when every byte
    of ``data`` is in ``allowed``."""
    keep = set(allowed)
    return bytes(b if b in keep else (b + 1) % 256 for b in range(256))
