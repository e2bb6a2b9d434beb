"""``split_target`` (playgate/serving.py) splits a request target as ``httptools.parse_url``
does for uvicorn: the same path and query for every target, its own split or not."""

from __future__ import annotations

import random
from collections.abc import Callable

import httptools
import pytest

from playgate.serving import _PLAIN_TARGET, split_target


def _parse_url(url: bytes) -> tuple[bytes, bytes]:
    parsed = httptools.parse_url(url)
    return parsed.path, parsed.query or b""


# Targets the plain split takes, and ones it leaves to parse_url (a fragment, bytes outside
# the plain set, an absolute or authority form).
FIXED = [
    b"/",
    b"/?",
    b"/??",
    b"/a?b?c",
    b"/t/AQZi-_x/videos/v/seg_000.ts",
    b"/videos/v/master.m3u8?token=AQZi-_x&x=%2F",
    b"//etc/passwd",
    b"/a/../b/./c",
    b"/%2e%2e/x?%00",
    b"/a#frag",
    b"/a?b#frag?x",
    b"/a#b?c",
    b"/a|b^c`d{e}",
    b'/a"b<c>d\\e',
    b"/caf\xc3\xa9?q=\xff",
    b"http://host:80/p?q",
    b"*",
]


def _outcome(split: Callable[[bytes], tuple[bytes, bytes]], url: bytes) -> object:
    try:
        return split(url)
    except httptools.HttpParserError as exc:  # uvicorn answers 400
        return type(exc)


@pytest.mark.parametrize("url", FIXED)
def test_fixed_targets_split_as_parse_url_splits_them(url: bytes) -> None:
    assert _outcome(split_target, url) == _outcome(_parse_url, url)


def test_random_plain_targets_split_as_parse_url_splits_them() -> None:
    rng = random.Random(5)
    alphabet = _PLAIN_TARGET + b"??//"  # more separators than their share
    for _ in range(5000):
        url = b"/" + bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        assert split_target(url) == _parse_url(url), url


def test_a_target_parse_url_refuses_is_refused() -> None:
    with pytest.raises(httptools.HttpParserInvalidURLError):
        split_target(b"/a b")
