"""``playgate.serving._Cycle`` writes the response head uvicorn's cycle writes, refuses what it
refuses (every byte in a header name and in a value), and leaves the same state behind."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from playgate.serving import _Cycle

C = TypeVar("C", bound=RequestResponseCycle)

DATE = [(b"date", b"Thu, 03 Dec 2026 06:00:00 GMT")]
FILE_HEADERS = [
    (b"content-type", b"video/mp2t"),
    (b"last-modified", b"Thu, 03 Dec 2026 06:00:00 GMT"),
    (b"etag", b'"0123456789abcdef0123456789abcdef"'),
    (b"accept-ranges", b"bytes"),
    (b"content-length", b"190464"),
    (b"x-playgate-token-id", b"tok_abc"),
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"private, max-age=3600"),
]


class _Transport:
    def __init__(self) -> None:
        self.written = b""

    def write(self, data: bytes) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _cycle(
    cls: type[C],
    method: str,
    keep_alive: bool,
    default: list[tuple[bytes, bytes]],
    transport: _Transport | None = None,
) -> C:
    """A cycle of ``cls`` for one request, writing to ``transport`` (a new one by default)."""
    transport = transport if transport is not None else _Transport()
    log = logging.getLogger("test")
    return cls(
        {"method": method},  # type: ignore[typeddict-item]
        transport,  # type: ignore[arg-type]
        FlowControl(transport),  # type: ignore[arg-type]
        log,
        log,
        False,
        default,
        asyncio.Event(),
        False,
        keep_alive,
        lambda: None,
    )


def _head(cls: type[RequestResponseCycle], method: str, message: dict[str, Any], keep_alive: bool):  # type: ignore[no-untyped-def]
    transport = _Transport()
    cycle = _cycle(cls, method, keep_alive, DATE, transport)
    try:
        asyncio.run(cycle.send(message))  # type: ignore[arg-type]
    except RuntimeError as exc:
        return ("refused", str(exc))
    state = (cycle.keep_alive, cycle.chunked_encoding, cycle.expected_content_length)
    return (transport.written, state, cycle.response_started)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("keep_alive", [True, False])
@pytest.mark.parametrize(
    ("status", "headers"),
    [
        (200, FILE_HEADERS),
        (302, [(b"Location", b"/s/x/master.m3u8"), (b"Cache-Control", b"no-store")]),
        (200, [(b"content-type", b"text/plain")]),  # no length: chunked
        (204, []),
        (304, [(b"etag", b'"x"')]),
        (200, [(b"content-length", b"3"), (b"Connection", b"keep-alive, Close")]),
        (200, [(b"transfer-encoding", b"Chunked")]),
        (200, [(b"content-length", b"3"), (b"content-length", b"9")]),
    ],
)
def test_the_same_head_as_uvicorn(
    method: str, keep_alive: bool, status: int, headers: list[tuple[bytes, bytes]]
) -> None:
    message = {"type": "http.response.start", "status": status, "headers": headers}
    ours = _head(_Cycle, method, message, keep_alive)
    assert ours == _head(RequestResponseCycle, method, message, keep_alive)
    assert ours[0] != "refused"


@pytest.mark.parametrize("byte", range(256))
def test_the_same_refusals_as_uvicorn(byte: int) -> None:
    for headers in (
        [(b"x-a" + bytes((byte,)) + b"b", b"v")],
        [(b"x-a", b"v" + bytes((byte,)) + b"w")],
        [(b"content-length", b"1"), (b"x-ok", b"fine"), (bytes((byte,)), bytes((byte,)))],
    ):
        message = {"type": "http.response.start", "status": 200, "headers": headers}
        assert _head(_Cycle, "GET", message, True) == _head(
            RequestResponseCycle, "GET", message, True
        )


def _started(keep_alive: bool, default: list[tuple[bytes, bytes]]) -> _Cycle:
    return _cycle(_Cycle, "GET", keep_alive, default)


def _outcome(cycle: _Cycle, start: Callable[[], bytes]) -> Any:
    try:
        head = start()
    except (RuntimeError, ValueError) as exc:
        return ("refused", type(exc), str(exc))
    state = (cycle.keep_alive, cycle.chunked_encoding, cycle.expected_content_length)
    return (head, state, cycle.response_started, cycle.waiting_for_100_continue)


SHARED = tuple(FILE_HEADERS[:5])
REST = FILE_HEADERS[5:]


@pytest.mark.parametrize("keep_alive", [True, False])
@pytest.mark.parametrize("default", [DATE, [], [(b"Server", b"x")], [(b"connection", b"close")]])
@pytest.mark.parametrize(
    ("shared", "rest"),
    [
        (SHARED, REST),
        (SHARED, []),
        (SHARED, [*REST, (b"Set-Cookie", b"a=b")]),
        ((), REST),  # no length: start decides
        ((*SHARED, (b"content-length", b"9")), REST),  # two lengths
        (((b"Content-Length", b" 12"),), REST),  # not plain digits: int() decides
        (((b"content-length", b"x"),), REST),
        ((*SHARED, (b"Transfer-Encoding", b"chunked")), REST),
        ((*SHARED, (b"Connection", b"close")), REST),
        (SHARED, [(b"connection", b"close")]),
        (SHARED, [(b"content-length", b"1")]),
        ((*SHARED, (b"x-bad name", b"v")), REST),
        ((*SHARED, (b"x-bad", b"v\n")), REST),
        (SHARED, [(b"x-bad\x7f", b"v")]),
        (SHARED, [(b"x-bad", b"v\x00")]),
        ((*SHARED, (b"x-bad", b"v\r")), [(b"x:", b"v")]),  # a bad value first, a bad name after
        ((*SHARED[:4], (b"CONTENT-LENGTH", b"7")), REST),
    ],
)
def test_a_file_head_encoded_once_is_the_same_head(
    keep_alive: bool,
    default: list[tuple[bytes, bytes]],
    shared: tuple[tuple[bytes, bytes], ...],
    rest: list[tuple[bytes, bytes]],
) -> None:
    whole = _started(keep_alive, default)
    expected = _outcome(whole, functools.partial(whole.start, 200, [*shared, *rest]))
    for _ in range(2):  # the second time from the cache
        once = _started(keep_alive, default)
        assert _outcome(once, functools.partial(once.start_file, 200, shared, rest)) == expected
