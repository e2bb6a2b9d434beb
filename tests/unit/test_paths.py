"""Path rules: the table of attacks the validator must refuse, and what it must accept."""

from __future__ import annotations

import pytest

from edge_validator.core.decision import verify, verify_target
from edge_validator.core.errors import BadPath, MalformedToken, PlaybackTokenError
from edge_validator.core.keyring import KeyRing
from edge_validator.core.paths import Target, in_scope, normalize_path, split_fields, split_target
from tests.support import factories

RING = KeyRing({"k1": b"A" * 32}, "k1")
T0 = 1_800_000_000
TOKEN = factories.token(RING, now=T0, scope="/videos/12/", token_id="tid")

# Every one of these must be refused, whatever the token says.
ATTACKS = [
    "/videos/12/../123/master.m3u8",
    "/videos/12/./master.m3u8",
    "/videos/12/..",
    "/videos/12/%2e%2e/123/master.m3u8",
    "/videos/12/%2E%2E/123/master.m3u8",
    "/videos/12/.%2e/123/master.m3u8",
    "/videos/12/%2e./123/master.m3u8",
    "/videos/12/%2e/master.m3u8",
    "/videos/12/..%2f123/master.m3u8",
    "/videos/12%2f..%2f123/master.m3u8",
    "/videos/12/%2F../123/x",
    "/videos/12/..%5c123/master.m3u8",
    "/videos/12/%5c..%5c123/x",
    "/videos/12/..\\123/master.m3u8",
    "/videos/12\\..\\123\\x",
    "/videos/12//master.m3u8",
    "//videos/12/master.m3u8",
    "/videos/12/master.m3u8%00.ts",
    "/videos/12/master.m3u8\x00.ts",
    "/videos/12/%252e%252e/123/x",
    "/videos/12/%25%32%65%25%32%65/x",
    "/videos/12/%25",
    "/videos/12/%2",
    "/videos/12/%zz",
    "/videos/12/vidé.ts",
    "/videos/12/%c3%a9.ts",
    "/videos/12/%ff.ts",
    "/videos/12/a b.ts",
    "/videos/12/a\tb.ts",
    "/videos/12/a\r\nb.ts",
    "/videos/12/%0d%0aSet-Cookie:x",
    "/videos/12/a;jsessionid=1.ts",
    "/videos/12/%31%32.ts",
    "/videos/12/..%3F",
    "/videos/12/..%23",
    "/videos/12/x%3Fy=1",
    "/videos/12/x%3fy=1",
    "/videos/12/..%3B/123/master.m3u8",
    "/videos/12/a%23b.ts",
    "videos/12/master.m3u8",
    "",
]


@pytest.mark.parametrize("path", ATTACKS)
def test_attack_paths_are_rejected(path: str) -> None:
    with pytest.raises(BadPath):
        verify(TOKEN, path, None, T0 + 1, RING)


@pytest.mark.parametrize(
    "target",
    [
        f"/t/{TOKEN}/videos/12/a.ts?token={TOKEN}",
        f"/videos/12/a.ts?token={TOKEN}&token={TOKEN}",
        f"/videos/12/a.ts?token={TOKEN}&Token=x",
        f"/videos/12/a.ts?token={TOKEN}&%74oken=x",
        f"/videos/12/a.ts?token={TOKEN}&to%6ben=x",
        f"/videos/12/a.ts?TOKEN={TOKEN}",
        "/videos/12/a.ts?token=",
        "/videos/12/a.ts?token",
    ],
)
def test_ambiguous_token_placement_is_rejected(target: str) -> None:
    with pytest.raises(MalformedToken):
        verify_target(target, None, T0 + 1, RING)


def test_fragment_is_rejected() -> None:
    with pytest.raises(BadPath):
        split_target(f"/t/{TOKEN}/videos/12/a.ts#x")


def test_path_token_without_rest_is_rejected() -> None:
    with pytest.raises(BadPath):
        split_target(f"/t/{TOKEN}")


@pytest.mark.parametrize(
    ("target", "path", "query"),
    [
        (f"/t/{TOKEN}/videos/12/master.m3u8", "/videos/12/master.m3u8", ""),
        (f"/videos/12/a.ts?token={TOKEN}", "/videos/12/a.ts", ""),
        (f"/videos/12/a.ts?x=1&token={TOKEN}&y=2", "/videos/12/a.ts", "x=1&y=2"),
        (f"/t/{TOKEN}/videos/12/v.m3u8?_HLS_msn=3", "/videos/12/v.m3u8", "_HLS_msn=3"),
    ],
)
def test_token_is_found_and_stripped(target: str, path: str, query: str) -> None:
    split = split_target(target)
    assert (split.token, split.path, split.query) == (TOKEN, path, query)
    assert split.token_in_query == ("?token=" in target or "&token=" in target)
    grant = verify_target(target, None, T0 + 1, RING)
    assert grant.path == path
    assert grant.target.query == query
    # verify_target decides on split_fields' plain tuple; its grant holds a Target all the same.
    assert type(grant.target) is Target
    assert grant.target == split
    assert split_fields(target) == tuple(split)


@pytest.mark.parametrize(
    ("path", "decoded"),
    [
        ("/videos/12/master.m3u8", "/videos/12/master.m3u8"),
        ("/videos/12/my%20clip.mp4", "/videos/12/my clip.mp4"),
        ("/videos/12/a%2Bb.ts", "/videos/12/a+b.ts"),
        ("/videos/12/.hidden", "/videos/12/.hidden"),
        ("/videos/12/a..b.ts", "/videos/12/a..b.ts"),
    ],
)
def test_unambiguous_paths_are_accepted(path: str, decoded: str) -> None:
    assert normalize_path(path) == decoded


@pytest.mark.parametrize(
    ("path", "scope", "covered"),
    [
        ("/videos/12/a.ts", "/videos/12/", True),
        ("/videos/12/hls/v0/a.ts", "/videos/12/", True),
        ("/videos/123/a.ts", "/videos/12/", False),
        ("/videos/12", "/videos/12/", False),
        ("/videos/1/a.ts", "/videos/12/", False),
        ("/videos/12/a.ts", "/videos/12", False),
    ],
)
def test_scope_is_compared_segment_by_segment(path: str, scope: str, covered: bool) -> None:
    assert in_scope(path, scope) is covered


def test_neighbouring_video_is_out_of_scope() -> None:
    with pytest.raises(PlaybackTokenError) as info:
        verify(TOKEN, "/videos/123/master.m3u8", None, T0 + 1, RING)
    assert info.value.reason == "out_of_scope"
