"""Zero-copy file bodies (playgate/file_sending.py) over real loopback HTTP: exact bytes,
keep-alive, HEAD, slow readers, clients gone mid-file, the send timeout, a file shorter than
it said."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from playgate.file_sending import MAX_CHUNK, PATHSEND, ZEROCOPY
from playgate.serving import ServerLimits
from tests.support.servers import LOOPBACK, serve_app

SIZE = 5 * MAX_CHUNK + 12345  # several sendfile calls, and more than loopback buffers hold
LIMITS = ServerLimits(send_timeout=1.0)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("files")
    (root / "big.bin").write_bytes(os.urandom(SIZE))
    (root / "small.txt").write_bytes(b"#EXTM3U\n")
    os.mkfifo(root / "pipe")  # what a path sent by name may have become meanwhile
    return root


class _Slice(Response):
    """``count`` bytes from ``offset`` through ``http.response.zerocopy``; ``declared`` is the
    Content-Length it announces (more than it sends: a file that shrank)."""

    def __init__(self, path: Path, offset: int, count: int, declared: int) -> None:
        self.path, self.offset, self.count = path, offset, count
        super().__init__(None, 200, {"content-length": str(declared)})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert ZEROCOPY in scope["extensions"]
        with self.path.open("rb") as file:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            message = {"type": ZEROCOPY, "file": file, "offset": self.offset, "count": self.count}
            await send(message)


class _Gone:
    """An ASGI app whose file vanished (or changed) between the head and the body."""

    def __init__(self, path: Path, length: int = 10) -> None:
        self.path = path
        self.length = length

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        head = [(b"content-length", str(self.length).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": head})
        await send({"type": PATHSEND, "path": str(self.path)})


@pytest.fixture(scope="module")
def url(files: Path) -> Iterator[str]:
    async def zero_copy(request: Request) -> Response:
        path = files / request.path_params["name"]
        size = path.stat().st_size
        offset = int(request.query_params.get("offset", 0))
        count = int(request.query_params.get("count", size - offset))
        declared = int(request.query_params.get("declared", count))
        return _Slice(path, offset, count, declared)

    async def pathsend(request: Request) -> Response:
        assert PATHSEND in request.scope["extensions"]
        return FileResponse(files / request.path_params["name"])

    app = Starlette(
        routes=[
            Route("/zerocopy/{name}", zero_copy, methods=["GET", "HEAD"]),
            Route("/pathsend/{name}", pathsend, methods=["GET", "HEAD"]),
            Route("/gone", _Gone(files / "vanished.bin")),
            Route("/shrunk", _Gone(files / "small.txt", length=100)),
            Route("/grown", _Gone(files / "small.txt", length=3)),
            Route("/fifo", _Gone(files / "pipe")),
        ]
    )
    with serve_app(app, LIMITS) as base:
        yield base


def _request(
    base: str, target: str, *, rcvbuf: int | None = None, keep_alive: bool = False
) -> socket.socket:
    port = int(base.rsplit(":", 1)[1])
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(10)
    sock.connect((LOOPBACK, port))
    connection = "keep-alive" if keep_alive else "close"
    sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: {connection}\r\n\r\n".encode())
    return sock


def _read_all(sock: socket.socket, pause: float = 0.0) -> bytes:
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
            time.sleep(pause)
    except (ConnectionError, OSError):
        pass
    return b"".join(chunks)


def test_files_are_sent_exactly_on_one_keep_alive_connection(url: str, files: Path) -> None:
    data = (files / "big.bin").read_bytes()
    with httpx.Client(base_url=url, timeout=30) as client:
        for _ in range(2):
            assert client.get("/zerocopy/big.bin").content == data
            assert client.get("/pathsend/big.bin").content == data
            part = client.get("/zerocopy/big.bin", params={"offset": 1000, "count": MAX_CHUNK + 7})
            assert part.content == data[1000 : 1000 + MAX_CHUNK + 7]
            assert client.get("/zerocopy/small.txt").content == b"#EXTM3U\n"
            head = client.head("/zerocopy/big.bin")
            assert head.status_code == 200
            assert head.headers["content-length"] == str(SIZE)
            assert head.content == b""
            assert client.get("/pathsend/small.txt").content == b"#EXTM3U\n"


def test_a_slow_reader_gets_the_whole_file(url: str, files: Path) -> None:
    # A small receive buffer and a reader that dawdles: the server's socket fills again and
    # again, and it must wait for room, not spin, drop bytes or give up.
    sock = _request(url, "/zerocopy/big.bin", rcvbuf=16384)
    with sock:
        first = sock.recv(65536)
        time.sleep(0.5)
        reply = first + _read_all(sock)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert body == (files / "big.bin").read_bytes()


def test_a_client_gone_mid_file_leaves_the_server_serving(
    url: str, files: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for linger in (False, True):  # a FIN, then a reset
        sock = _request(url, "/zerocopy/big.bin", rcvbuf=16384)
        sock.recv(65536)
        if linger:
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
        sock.close()
    time.sleep(0.5)
    with caplog.at_level(logging.WARNING):
        resp = httpx.get(f"{url}/zerocopy/big.bin", timeout=30)
    assert resp.content == (files / "big.bin").read_bytes()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_a_client_that_stops_reading_a_file_is_dropped_after_the_send_timeout(
    url: str,
) -> None:
    sock = _request(url, "/zerocopy/big.bin", rcvbuf=16384)
    with sock:
        time.sleep(LIMITS.send_timeout + 2)  # read nothing: the server's socket stays full
        started = time.monotonic()
        received = len(_read_all(sock))
    assert received < SIZE
    assert time.monotonic() - started < 5  # the connection was already closed


def test_a_file_shorter_than_its_length_is_cut_off_never_a_500(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        sock = _request(url, "/zerocopy/small.txt?count=100&declared=100")
        with sock:
            reply = _read_all(sock)
    assert reply.startswith(b"HTTP/1.1 200 ")
    assert reply.endswith(b"\r\n\r\n#EXTM3U\n")  # what there was, then the connection closed
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_a_file_gone_before_its_body_is_cut_off_never_a_trace(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        sock = _request(url, "/gone")
        with sock:
            reply = _read_all(sock)
    assert reply.startswith(b"HTTP/1.1 200 ")
    assert reply.endswith(b"\r\n\r\n")  # the head, then the connection closed
    assert "file gone before its body was sent" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


@pytest.mark.parametrize(
    "pipelined",
    [
        pytest.param(b"\x00GARBAGE\r\n\r\n", id="garbage: 400"),
        pytest.param(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 99\r\n\r\nab", id="408"),
    ],
)
def test_a_refusal_of_a_pipelined_request_never_lands_inside_a_file_body(
    files: Path, pipelined: bytes
) -> None:
    # A viewer receiving a file sends a request the server refuses (a broken head, a body that
    # never comes). Bytes of a refusal written now would land in the middle of the file (the
    # body goes to the socket beside the transport): what the client gets must be the head and
    # a prefix of the file, nothing else.
    async def whole(request: Request) -> Response:
        path = files / "big.bin"
        return _Slice(path, 0, SIZE, SIZE)

    app = Starlette(routes=[Route("/big", whole)])
    data = (files / "big.bin").read_bytes()
    with serve_app(app, ServerLimits(send_timeout=10.0, body_timeout=0.5)) as base:
        # Keep-alive: after "Connection: close" the parser reads nothing more.
        sock = _request(base, "/big", rcvbuf=16384, keep_alive=True)
        with sock:
            first = sock.recv(65536)
            time.sleep(0.3)  # the server's socket is full: the file waits for room
            sock.sendall(pipelined)
            time.sleep(1.5)  # past the body timeout, and the sweep that enforces it
            reply = first + _read_all(sock)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert data.startswith(body), body[body.find(b"HTTP/1.1") :][:80]


def test_a_file_sent_by_name_is_cut_to_its_length_never_a_trace(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A file that shrank or grew since its Content-Length was taken: never more bytes than
    # announced (they would be read as the next response), never an error with a trace.
    with caplog.at_level(logging.WARNING):
        with _request(url, "/shrunk") as sock:
            shrunk = _read_all(sock)
        with _request(url, "/grown") as sock:
            grown = _read_all(sock)
    assert shrunk.startswith(b"HTTP/1.1 200 ")
    assert shrunk.endswith(b"\r\n\r\n#EXTM3U\n")
    assert grown.startswith(b"HTTP/1.1 200 ")
    assert grown.endswith(b"\r\n\r\n#EX")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_a_fifo_sent_by_name_never_blocks_the_server(url: str, files: Path) -> None:
    # Opening a FIFO for reading waits for a writer: in the event loop, that would stop every
    # connection of the worker until someone writes.
    with _request(url, "/fifo") as sock:
        try:
            assert _read_all(sock).endswith(b"\r\n\r\n")  # the head, then closed
            assert httpx.get(f"{url}/zerocopy/small.txt", timeout=3).content == b"#EXTM3U\n"
        finally:
            # Free a server stuck in open() (before the fix), so the test ends either way.
            fd = os.open(files / "pipe", os.O_WRONLY | os.O_NONBLOCK) if _has_reader(files) else -1
            if fd >= 0:
                os.close(fd)


def _has_reader(files: Path) -> bool:
    try:
        os.close(os.open(files / "pipe", os.O_WRONLY | os.O_NONBLOCK))
    except OSError:  # ENXIO: nobody has it open for reading
        return False
    return True
