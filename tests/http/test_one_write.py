"""A response head leaves with its first body bytes (playgate/one_write.py), over real loopback
HTTP: held until the body, never lost, never reordered, HEAD and streamed bodies unchanged."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from playgate.serving import ServerLimits
from tests.support.servers import LOOPBACK, serve_app

PAUSE = 0.5  # between the head and the body of /slow


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    path = scope["path"]
    head = [(b"content-type", b"text/plain")]
    if path == "/slow":  # the body comes well after the head
        slow = [*head, (b"content-length", b"4")]
        await send({"type": "http.response.start", "status": 200, "headers": slow})
        await asyncio.sleep(PAUSE)
        await send({"type": "http.response.body", "body": b"late"})
    elif path == "/stream":  # no Content-Length: chunked, several body messages
        await send({"type": "http.response.start", "status": 200, "headers": head})
        for part in (b"a", b"", b"bc"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b"d"})
    elif path == "/fails":  # the app breaks after starting its response
        await send({"type": "http.response.start", "status": 200, "headers": head})
        raise RuntimeError("failed after the head")
    else:
        body = b"hello"
        head.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 201, "headers": head})
        await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with serve_app(_app, ServerLimits()) as base:
        url = httpx.URL(base).port
        assert url is not None
        yield url


def _send(port: int, target: str, method: str = "GET") -> socket.socket:
    sock = socket.create_connection((LOOPBACK, port), timeout=10)
    sock.sendall(f"{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    return sock


def _rest(sock: socket.socket) -> bytes:
    chunks = []
    with sock:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_the_head_waits_for_the_body_and_leaves_with_it(port: int) -> None:
    with _send(port, "/slow") as sock:
        sock.settimeout(PAUSE / 2)
        with pytest.raises(TimeoutError):  # the head alone was not sent
            sock.recv(65536)
        sock.settimeout(10)
        response = _rest(sock)
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    assert response.endswith(b"\r\n\r\nlate")


def test_a_small_answer_arrives_whole(port: int) -> None:
    with httpx.Client(base_url=f"http://{LOOPBACK}:{port}", timeout=10) as client:
        for _ in range(3):  # keep-alive: every response's head is held and written
            response = client.get("/")
            assert (response.status_code, response.content) == (201, b"hello")


def test_a_streamed_body_is_unchanged(port: int) -> None:
    response = httpx.get(f"http://{LOOPBACK}:{port}/stream", timeout=10)
    assert response.headers["transfer-encoding"] == "chunked"
    assert response.content == b"abcd"


def test_head_requests_are_answered_at_once(port: int) -> None:
    response = _rest(_send(port, "/", "HEAD"))
    assert response.startswith(b"HTTP/1.1 201 Created\r\n")
    assert b"content-length: 5\r\n" in response
    assert response.endswith(b"\r\n\r\n")


def test_a_head_held_when_the_app_fails_is_still_sent(port: int) -> None:
    # As without holding: the head, then the connection closed (no body follows).
    response = _rest(_send(port, "/fails"))
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    assert response.endswith(b"\r\n\r\n")
