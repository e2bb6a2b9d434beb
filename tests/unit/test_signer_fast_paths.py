"""The signer's shortcuts on its busiest request give exactly the answers of the general code:
the JSON body read, the playback request built, the 201's body written, the counters added."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest
from prometheus_client import CollectorRegistry, Counter

from edge_validator.asgi.admin import FLUSH_SECONDS, BatchedCounts
from signer.app import _JSON, issued_body
from signer.issuing import IssuedUrl, PlaybackRequest, parse_playback_request
from signer.requests import _loads

BODIES = [
    b'{"video_id": "v", "ttl_seconds": 300}',
    b' {"video_id": "v"}',  # whitespace around the document: json.loads's own way
    b'{"video_id": "v"}\r\n\t ',
    b'\xef\xbb\xbf{"video_id": "v"}',  # a UTF-8 byte order mark
    '{"video_id": "vé"}'.encode("utf-16"),
    '{"video_id": "v"}'.encode("utf-16-le"),
    '{"video_id": "v"}'.encode("utf-32"),
    b'{"video_id": "\xc3\xa9"}',
    b"[1, 2, NaN]",
    b'"text"',
    b"12",
]
BAD = [
    b"",
    b" ",
    b'{"video_id": "v"} x',
    b'{"video_id": "v"}{}',
    b"{",
    b"\xff\xfe\xfd",
    b"[" * 100_000,
]


@pytest.mark.parametrize("body", BODIES)
def test_a_body_reads_as_json_loads_reads_it(body: bytes) -> None:
    expected = json.loads(body)
    got = _loads(bytearray(body))
    assert json.dumps(got) == json.dumps(expected)  # NaN != NaN: compared as text


@pytest.mark.parametrize("body", BAD)
def test_a_body_json_loads_refuses_is_refused(body: bytes) -> None:
    with pytest.raises((ValueError, RecursionError)):
        json.loads(body)
    with pytest.raises((ValueError, RecursionError)):
        _loads(bytearray(body))


@pytest.mark.parametrize(
    "doc",
    [
        {"video_id": "v"},
        {"video_id": "v", "ttl_seconds": 60, "session_id": "s-1", "client_ip": "203.0.113.7"},
        {"video_id": "v", "user_id": "u", "max_streams": 2, "max_uses": 3, "file": "a/b.m3u8"},
        {"video_id": "v", "client_ip": "2001:db8::/48", "session_seconds": 600},
        {"video_id": "v", "format": "cat", "cat_renewal": "redirect:600:60"},
    ],
)
def test_a_parsed_request_is_the_request_its_constructor_makes(doc: dict[str, object]) -> None:
    request = parse_playback_request(
        doc, default_ttl=300, max_ttl=3600, entry_file="master.m3u8", max_session=3600
    )
    names = {f.name for f in dataclasses.fields(PlaybackRequest)}
    assert set(vars(request)) == names  # every field set, none left to a default
    built = PlaybackRequest(**{name: getattr(request, name) for name in names})
    assert request == built
    assert hash(request) == hash(built)
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.ttl_seconds = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    "issued",
    [
        IssuedUrl("https://cdn.example/t/AbC-_/videos/v/master.m3u8", "AbC-_", "id_1", 1796000000),
        IssuedUrl('https://cdn.example/"q"\\/é\u2028\x01/x?pgt=t', "t", "i", 1796000001),
        IssuedUrl("https://cdn.example/x", "t", "i", 1796000002, "cloudfront", {"C": "v"}),
        IssuedUrl("https://cdn.example/x", "t", "i", 1796000003, "jwt"),
    ],
)
def test_the_issued_body_is_the_json_encoders(issued: IssuedUrl) -> None:
    assert issued_body(issued) == _JSON.encode(issued.as_json()).encode()


def test_counts_are_added_in_one_write_per_counter_per_batch() -> None:
    registry = CollectorRegistry()
    counter = Counter("turn_test", "counted in batches", ["route"], registry=registry)
    a, b = counter.labels("a"), counter.labels("b")

    def value(route: str) -> float | None:
        return registry.get_sample_value("turn_test_total", {"route": route})

    async def turns() -> None:
        counts = BatchedCounts()
        for counted in (a, a, b):
            counts.inc(counted)
        await asyncio.sleep(0)
        assert (value("a"), value("b")) == (0.0, 0.0)  # not yet: held for the batch
        await asyncio.sleep(FLUSH_SECONDS * 3)
        assert (value("a"), value("b")) == (2.0, 1.0)
        counts.inc(b)  # a later batch: counted again
        await asyncio.sleep(FLUSH_SECONDS * 3)
        assert (value("a"), value("b")) == (2.0, 2.0)

    asyncio.run(turns())
