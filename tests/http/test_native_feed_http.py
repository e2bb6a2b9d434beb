"""The revocation feed over real HTTP, as nginx's poller reads it: HTTP/1.0, one line at a time."""

from __future__ import annotations

import asyncio
import socket
import time

from edge_validator.asgi.app import create_app
from edge_validator.core.keyring import KeyRing
from edge_validator.core.protocol import NATIVE_FEED_ROUTE
from edge_validator.settings import ValidatorSettings
from edge_validator.state.feed import auth_header
from edge_validator.state.guard import StateGuard
from edge_validator.state.memory import MemoryStore
from edge_validator.state.revocations import Revocation
from tests.support.servers import serve_app

RING = KeyRing({"k1": b"A" * 32}, "k1")


def _get_http10(url: str, target: str, headers: dict[str, str]) -> tuple[str, bytes]:
    host, port = url.removeprefix("http://").split(":")
    lines = [f"GET {target} HTTP/1.0", "Host: playgate-native"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head.decode("latin-1").lower(), body


def test_a_long_answer_is_one_plain_body_of_whole_lines() -> None:
    store = MemoryStore()
    settings = ValidatorSettings(keyring=RING)
    app = create_app(settings, guard=StateGuard(store, settings.state, shared=True))
    with serve_app(app) as url:
        now = time.time()

        async def revoke_many() -> None:
            for i in range(12_000):  # several parts of the answer
                await store.revoke(Revocation("token_id", f"bulk-{i}", now, now + 600))

        asyncio.run(revoke_many())
        auth = {"X-PlayGate-Feed-Auth": auth_header(RING, "k1", time.time())}
        head, body = _get_http10(url, f"{NATIVE_FEED_ROUTE}?epoch=-&cursor=0", auth)
        refused, _ = _get_http10(url, f"{NATIVE_FEED_ROUTE}?epoch=-&cursor=0", {})
    assert head.startswith("http/1.1 200")
    assert "transfer-encoding" not in head  # chunk marks would cut lines
    assert f"content-length: {len(body)}" in head
    lines = body.decode().split("\n")
    assert lines[0] == "PLAYGATE-FEED 1"
    assert lines[-2:] == ["end", ""]
    values = {line.split()[2] for line in lines if line.startswith("r t ")}
    assert values >= {f"bulk-{i}" for i in range(12_000)}
    assert refused.startswith("http/1.1 401")


def test_digits_that_are_not_ascii_are_refused_never_a_server_error() -> None:
    # str.isdigit() holds for '²' (a header byte 0xB2, or %C2%B2 in the query); int() refuses it.
    settings = ValidatorSettings(keyring=RING)
    app = create_app(settings, guard=StateGuard(MemoryStore(), settings.state, shared=True))
    with serve_app(app) as url:
        stamp = auth_header(RING, "k1", time.time()).split(".")
        forged = {"X-PlayGate-Feed-Auth": f"k1.\xb2.{stamp[2]}"}
        head, _ = _get_http10(url, f"{NATIVE_FEED_ROUTE}?epoch=-&cursor=0", forged)
        auth = {"X-PlayGate-Feed-Auth": auth_header(RING, "k1", time.time())}
        cursor, body = _get_http10(url, f"{NATIVE_FEED_ROUTE}?epoch=-&cursor=%C2%B2", auth)
    assert head.startswith("http/1.1 401")
    assert cursor.startswith("http/1.1 200")  # not a cursor: the whole view
    assert body.endswith(b"end\n")
