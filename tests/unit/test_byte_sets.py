"""The translate table check agrees with deleting the allowed bytes, for every byte."""

from __future__ import annotations

import pytest

from playgate.byte_sets import table_allowing

SETS = [b"", b"abc", bytes(range(32, 127)), bytes(range(256)), bytes([0, 255, 9, 10, 13])]


@pytest.mark.parametrize("allowed", SETS)
def test_a_table_allows_exactly_its_bytes(allowed: bytes) -> None:
    table = table_allowing(allowed)
    for b in range(256):
        for data in (bytes([b]), b"a" + bytes([b]) + b"z", bytes([b]) * 3):
            expected = not data.translate(None, allowed)
            assert (data.translate(table) == data) is expected, (allowed, data)


def test_the_empty_string_passes_any_table() -> None:
    assert b"".translate(table_allowing(b"")) == b""
