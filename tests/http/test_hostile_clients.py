"""The Python servers face the internet on their own: hostile clients must not starve viewers.

One test per limit against a tiny app in process, then the whole attack against a real
``playgate serve-validator`` process held to the common ``nofile`` limit of 1,024, while a
viewer keeps fetching segments (its latencies are reported in the assertion messages and on
stdout).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route

from edge_validator.core.keyring import KeyRing, new_keyring_json
from playgate.serving import ServerLimits
from tests.support import factories
from tests.support.servers import LOOPBACK, free_port, serve_app, wait_for_port

FAST = ServerLimits(head_timeout=1.0, body_timeout=1.0, send_timeout=1.0, max_body_bytes=4096)
BIG_CHUNKS = 200  # of 1 MB: far more than loopback socket buffers hold


async def _big(request: Request) -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(BIG_CHUNKS):
            yield b"x" * 1024 * 1024

    return StreamingResponse(chunks())


async def _echo(request: Request) -> PlainTextResponse:
    try:
        return PlainTextResponse(str(len(await request.body())))
    except ClientDisconnect:  # the server cut the body off: nobody is listening
        return PlainTextResponse("", status_code=400)


@pytest.fixture(scope="module")
def echo_url() -> Iterator[str]:
    app = Starlette(
        routes=[Route("/", _echo, methods=["GET", "POST"]), Route("/big", _big, methods=["GET"])]
    )
    with serve_app(app, FAST) as url:
        yield url


async def _exchange(port: int, chunks: list[bytes], pause: float = 0.0) -> tuple[bytes, float]:
    """Send ``chunks`` (``pause`` apart), read until the server closes; the reply and seconds."""
    start = time.monotonic()
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    reading = asyncio.create_task(asyncio.wait_for(reader.read(), 30))
    try:
        for chunk in chunks:
            if reading.done():
                break  # the server has answered and closed: stop, as a client would
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(pause)
    except (ConnectionError, OSError):
        pass
    try:
        reply = await reading
    except (ConnectionError, OSError):
        reply = b""
    finally:
        reading.cancel()
        await _close(writer)
    return reply, time.monotonic() - start


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception, asyncio.CancelledError):
        await writer.wait_closed()


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_an_oversized_head_is_431_before_it_is_all_parsed(echo_url: str) -> None:
    head = [b"GET / HTTP/1.1\r\nHost: x\r\n"] + [b"X-Big: " + b"a" * 1000 + b"\r\n"] * 200
    reply, _ = asyncio.run(_exchange(_port(echo_url), head))
    assert reply.startswith(b"HTTP/1.1 431 "), reply[:80]
    assert b"x-playgate-reason: head_too_large" in reply
    assert b"cache-control: no-store" in reply
    assert reply.endswith(b'{"error": "head_too_large"}')


@pytest.mark.parametrize(
    "head",
    [b"\x00GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: x\r\n\r\n"],
    ids=["request-line", "header-name"],
)
def test_a_request_that_does_not_parse_is_400_with_a_reason(echo_url: str, head: bytes) -> None:
    reply, _ = asyncio.run(_exchange(_port(echo_url), [head]))
    assert reply.startswith(b"HTTP/1.1 400 "), reply[:80]
    assert b"x-playgate-reason: bad_request" in reply
    assert b"cache-control: no-store" in reply
    assert reply.endswith(b'{"error": "bad_request"}')


def test_a_silent_connection_is_closed_after_the_head_timeout(echo_url: str) -> None:
    reply, seconds = asyncio.run(_exchange(_port(echo_url), []))
    assert reply == b""
    assert seconds < FAST.head_timeout + 5


def test_a_slowloris_head_is_408_after_the_head_timeout(echo_url: str) -> None:
    drip = [b"GET / HTTP/1.1\r\n"] + [b"X-A: b\r\n"] * 40
    reply, seconds = asyncio.run(_exchange(_port(echo_url), drip, pause=0.2))
    assert reply.startswith(b"HTTP/1.1 408 "), reply[:80]
    assert seconds < FAST.head_timeout + 5


def test_a_slow_body_is_cut_after_the_body_timeout(echo_url: str) -> None:
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
    reply, seconds = asyncio.run(_exchange(_port(echo_url), [head] + [b"x"] * 40, pause=0.2))
    assert b" 200 " not in reply
    assert seconds < FAST.body_timeout + 5


def test_a_client_that_stops_reading_is_dropped_after_the_send_timeout(echo_url: str) -> None:
    async def stall() -> int:
        reader, writer = await asyncio.open_connection(LOOPBACK, _port(echo_url))
        writer.write(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.sleep(FAST.send_timeout + 3)  # read nothing: the server's buffer fills
        received = 0
        try:
            while chunk := await asyncio.wait_for(reader.read(1 << 20), 10):
                received += len(chunk)
        except (ConnectionError, OSError):
            pass
        finally:
            await _close(writer)
        return received

    assert asyncio.run(stall()) < BIG_CHUNKS * 1024 * 1024


@pytest.mark.parametrize(
    "head",
    [
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + (b"800\r\n" + b"x" * 2048 + b"\r\n") * 3,
    ],
    ids=["declared", "many-digits", "chunked"],
)
def test_a_body_over_the_limit_is_refused(echo_url: str, head: bytes) -> None:
    reply, _ = asyncio.run(_exchange(_port(echo_url), [head]))
    assert reply.split(b" ", 2)[1] in (b"413", b"400"), reply[:80]


def test_requests_within_the_limits_are_served_on_one_connection(echo_url: str) -> None:
    body = b"x" * 4000
    one = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\n" + body
    last = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    reply, _ = asyncio.run(_exchange(_port(echo_url), [one, one, last], pause=0.3))
    assert reply.count(b"HTTP/1.1 200 ") == 3, reply


def test_an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout() -> None:
    # The keep-alive timeout is a deadline the sweep enforces (not a timer per request): a
    # request that comes within it is served, silence after the last response closes the
    # connection cleanly (every response readable), about the timeout later.
    limits = ServerLimits(keep_alive_timeout=1.0)
    app = Starlette(routes=[Route("/", _echo, methods=["GET"])])
    get = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    with serve_app(app, limits) as url:
        reply, seconds = asyncio.run(_exchange(_port(url), [get, get], pause=0.6))
    assert reply.count(b"HTTP/1.1 200 ") == 2, reply
    assert 0.6 + 1.0 - 0.1 <= seconds < 0.6 + 1.0 + 2, seconds


# --- The whole attack against a real validator process ------------------------------------

IDLE_SOCKETS = 1100


def _file_limit() -> None:
    # The common default the reviewers met: 1,024 descriptors, soft and hard.
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))


@pytest.fixture
def validator() -> Iterator[tuple[int, KeyRing]]:
    with _serve_validator(factories.SAMPLES) as running:
        yield running


@contextlib.contextmanager
def _serve_validator(media_root: Path) -> Iterator[tuple[int, KeyRing]]:
    """``playgate serve-validator`` held to 1,024 descriptors; no traceback when it stops."""
    text = new_keyring_json("k1")
    port = free_port()
    env = {
        **os.environ,
        "PLAYGATE_KEYRING": text,
        "PLAYGATE_MEDIA_ROOT": str(media_root),
        "PLAYGATE_HEAD_TIMEOUT": "2",
        "PLAYGATE_BODY_TIMEOUT": "2",
        "PLAYGATE_LOG_LEVEL": "error",
    }
    env.pop("REDIS_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "playgate.cli", "serve-validator", "--port", str(port)],
        env=env,
        preexec_fn=_file_limit,  # only sets a limit in the child
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port, proc=proc)
        yield port, KeyRing.from_json(text)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
        assert b"Traceback" not in err, err.decode(errors="replace")[-2000:]


async def _idle(port: int, stop: asyncio.Event) -> None:
    """Open a connection, say nothing; open another when the server closes it."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(LOOPBACK, port)
        except OSError:
            await asyncio.sleep(0.2)
            continue
        try:
            await asyncio.wait_for(reader.read(), 10)
        except (TimeoutError, OSError):
            pass
        finally:
            await _close(writer)
        await asyncio.sleep(0.2)


async def _attacker(port: int, stop: asyncio.Event, chunks: list[bytes], pause: float) -> None:
    while not stop.is_set():
        await _exchange(port, chunks, pause)


async def _viewer(port: int, target: str, seconds: float) -> list[tuple[bytes, float]]:
    request = f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    results = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        results.append(await _exchange(port, [request]))
        await asyncio.sleep(0.05)
    return results


async def _attack(port: int, target: str) -> list[tuple[bytes, float]]:
    stop = asyncio.Event()
    huge = [b"GET / HTTP/1.1\r\n"] + [b"X-Big: " + b"a" * 4000 + b"\r\n"] * 256
    slowloris = [b"GET / HTTP/1.1\r\n"] + [b"X-A: b\r\n"] * 100
    slow_body = [b"POST /auth HTTP/1.1\r\nContent-Length: 100000\r\n\r\n"] + [b"x"] * 100
    tasks = [asyncio.create_task(_idle(port, stop)) for _ in range(IDLE_SOCKETS)]
    tasks += [asyncio.create_task(_attacker(port, stop, slowloris, 0.3)) for _ in range(50)]
    tasks += [asyncio.create_task(_attacker(port, stop, slow_body, 0.3)) for _ in range(20)]
    tasks += [asyncio.create_task(_attacker(port, stop, huge, 0.0)) for _ in range(4)]
    await asyncio.sleep(3)  # the idle sockets are all open, the slow ones mid-request
    try:
        return await _viewer(port, target, 8)
    finally:
        # Every attacker stops after its current exchange, which the server ends within its
        # timeouts (cancelling one inside open_connection would leak its socket).
        stop.set()
        await asyncio.wait(tasks, timeout=30)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def test_a_viewer_is_served_through_slow_huge_and_idle_clients(
    validator: tuple[int, KeyRing],
) -> None:
    port, ring = validator
    tok = factories.token(ring, ttl=600)
    target = factories.target(tok, "/videos/demo/hls/v0/seg_000.ts")
    # The test process holds more than 1,024 sockets; the server is held to 1,024.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard >= IDLE_SOCKETS + 500, "raise the hard nofile limit to run this test"
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        results = asyncio.run(_attack(port, target))
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    statuses = [reply.split(b" ", 2)[1] if reply else b"closed" for reply, _ in results]
    latencies = sorted(seconds for _, seconds in results)
    report = (
        f"viewer: {len(results)} segment fetches, "
        f"p50 {statistics.median(latencies) * 1000:.0f} ms, "
        f"max {latencies[-1] * 1000:.0f} ms, failures {len(results) - statuses.count(b'200')}"
    )
    print(report)
    assert len(results) >= 5, report
    assert statuses.count(b"200") == len(results), f"{report}: {statuses}"
    assert latencies[-1] < 5.0, report


def test_slow_readers_of_big_files_out_of_descriptors_leave_no_traceback(
    tmp_path: Path,
) -> None:
    # A connection sending a file holds three descriptors (its socket, the file, and a
    # duplicate of the socket to wait on while it is full): 400 viewers reading a big file
    # slowly want 1,200 at nofile 1,024. Past the end, a body that cannot wait is cut off with
    # a warning (it raised, a traceback each, with the token in the log line before it), and
    # the server serves again once they are gone (docs/security.md, known limits).
    folder = tmp_path / "videos" / "demo"
    folder.mkdir(parents=True)
    (folder / "big.ts").write_bytes(os.urandom(8 * 2**20))
    (folder / "seg.ts").write_bytes(b"x" * 1000)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard >= 1500, "raise the hard nofile limit to run this test"
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        with _serve_validator(tmp_path) as (port, ring):
            tok = factories.token(ring, ttl=600)
            big = factories.target(tok, "/videos/demo/big.ts").encode()
            seg = factories.target(tok, "/videos/demo/seg.ts").encode()
            readers = []
            try:
                for _ in range(400):
                    sock = socket.socket()
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                    sock.connect((LOOPBACK, port))
                    sock.sendall(b"GET " + big + b" HTTP/1.1\r\nHost: x\r\n\r\n")
                    readers.append(sock)
                time.sleep(2)  # every file is open, every socket full
            finally:
                for sock in readers:
                    sock.close()
            time.sleep(1)
            request = b"GET " + seg + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            reply, _ = asyncio.run(_exchange(port, [request]))
            assert reply.startswith(b"HTTP/1.1 200 "), reply[:80]
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
