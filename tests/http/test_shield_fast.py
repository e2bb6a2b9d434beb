"""The server's fast path (``playgate/media_fast.py``) answers exactly as the full path: the same
bytes (the date aside) for every request it takes, and every request it must not take (a
second request in the same write, a head it does not parse strictly, a header that asks for
more, a token it has not seen, a denial) declined to the parser and the shield, which answer
as they did. Each server runs the same app under the real protocol over loopback; one of them
never offers the fast path."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

import playgate.serving
from edge_validator.asgi.app import create_app
from edge_validator.asgi.shield import MEDIA_ROUTE
from edge_validator.core.errors import ConfigurationError
from edge_validator.core.keyring import SESSION_CONTEXT, KeyRing
from edge_validator.core.token import Claims, open_token
from edge_validator.env import networks
from edge_validator.settings import ValidatorSettings
from playgate.media_fast import FastMedia, fast_media
from playgate.processes import LOOPBACK, bind
from playgate.serving import ServerLimits, uvicorn_config
from tests.http.test_shield_shortcut import _exchange, _normal, media_root, requests
from tests.support import factories
from tests.support.servers import serve_app

__all__ = ["media_root"]  # the fixture, shared with the shortcut's tests

SEG = "/videos/demo/v0/seg_000.ts"


@pytest.fixture(scope="module")
def both(keyring: KeyRing, media_root: Path) -> Iterator[tuple[str, str, FastMedia]]:
    """The fast path's server, the full path's (the same app, no fast path), and the first's
    fast path (its count of answers)."""
    settings = ValidatorSettings(
        keyring=keyring,
        media_root=media_root,
        trusted_proxies=networks("127.0.0.1/32"),
        client_ip_header="x-real-ip",
    )
    with_fast, without = create_app(settings), create_app(settings)
    fast = fast_media(getattr(with_fast, MEDIA_ROUTE))
    assert fast is not None
    offered = playgate.serving.fast_media
    slow_route = getattr(without, MEDIA_ROUTE)
    playgate.serving.fast_media = lambda route: None if route is slow_route else offered(route)  # type: ignore[assignment]
    try:
        with serve_app(with_fast) as a, serve_app(without) as b:
            yield a, b, fast
    finally:
        playgate.serving.fast_media = offered


def _get(path: str, *lines: str) -> bytes:
    return (f"GET {path} HTTP/1.1\r\n" + "".join(f"{line}\r\n" for line in lines) + "\r\n").encode()


def _alike(base: tuple[str, str, FastMedia], data: bytes) -> bytes:
    fast, full, _ = base
    ours = _exchange(fast, data + _get("/healthz", "Connection: close"))
    assert _normal(ours) == _normal(_exchange(full, data + _get("/healthz", "Connection: close")))
    return ours


def _one(base: tuple[str, str, FastMedia], data: bytes) -> tuple[bytes, int]:
    """``data`` alone on a connection (then a separate close), on both servers: the fast
    server's bytes and how many requests its fast path answered."""
    fast, full, counted = base
    before = counted.answered
    ours = _separately(fast, data)
    assert _normal(ours) == _normal(_separately(full, data)), data[:160]
    return ours, counted.answered - before


def _separately(base: str, data: bytes) -> bytes:
    """``data`` in its own write, its answer read, then ``/healthz`` closing the connection."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    received = b""
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(data)
        conn.settimeout(0.25)
        try:
            while chunk := conn.recv(1 << 20):
                received += chunk
        except TimeoutError:
            pass
        conn.settimeout(10)
        conn.sendall(_get("/healthz", "Connection: close"))
        while chunk := conn.recv(1 << 20):
            received += chunk
    return received


def test_a_known_token_fetching_a_file_is_answered_fast_and_alike(
    both: tuple[str, str, FastMedia], keyring: KeyRing
) -> None:
    now = time.time() - 1
    tok = factories.token(keyring, now=now, ttl=301, scope="/videos/demo/", token_id="tid-fast")
    session = factories.session_token(keyring, now=now, ttl=301, scope="/videos/demo/")
    net = factories.token(
        keyring, now=now, ttl=301, scope="/videos/demo/", client_network="203.0.113.0/24"
    )
    for token in (tok, net):  # first sight: the full path authenticates (and remembers)
        _one(both, _get(f"/t/{token}{SEG}", "Host: x", "X-Real-IP: 203.0.113.9"))
    _one(both, _get(f"/s/{session}{SEG}", "Host: x"))
    fast_ones = [
        _get(f"/t/{tok}{SEG}", "Host: x"),
        _get(f"/t/{tok}{SEG}", "Host: x", "Connection: keep-alive", "Accept: */*"),
        _get(f"/t/{tok}{SEG}", "host:x", "User-Agent: Lavf/60.16.100", "Icy-MetaData: 1"),
        _get(f"/t/{tok}/videos/demo/v0/index.m3u8", "Host: x"),  # a playlist: no-cache
        _get(f"/t/{tok}/videos/demo/master.m3u8", "Host: x"),
        _get(f"/s/{session}{SEG}", "Host: x"),
        _get(f"/t/{net}{SEG}", "Host: x", "X-Real-IP: 203.0.113.9"),
        _get(f"/t/{net}{SEG}", "Host: x", "X-Real-IP:  203.0.113.9 \t"),
    ]
    for data in fast_ones:
        ours, answered = _one(both, data)
        assert answered == 1, data[:160]
        assert ours.startswith(b"HTTP/1.1 200 OK\r\n"), ours[:200]
        assert b"\r\nx-playgate-token-id: " in ours
        assert b"connection: close" not in ours.split(b"\r\n\r\n")[0]  # kept alive


def test_what_the_fast_path_must_not_take_is_declined_and_answered_alike(
    both: tuple[str, str, FastMedia], keyring: KeyRing
) -> None:
    now = time.time() - 1
    tok = factories.token(keyring, now=now, ttl=301, scope="/videos/demo/", token_id="tid-no")
    net = factories.token(
        keyring, now=now, ttl=301, scope="/videos/demo/", client_network="203.0.113.0/24"
    )
    for token in (tok, net):
        _one(both, _get(f"/t/{token}{SEG}", "Host: x", "X-Real-IP: 203.0.113.9"))
    seg = f"/t/{tok}{SEG}"
    declined = [
        _get(f"/t/{tok}{SEG}", "Host: x") + _get(f"/t/{tok}{SEG}", "Host: x"),  # two at once
        _get(seg, "Host: x", "Range: bytes=0-9"),
        _get(seg, "Host: x", "Connection: close"),
        _get(seg, "Host: x", "Connection: keep-alive, Upgrade", "Upgrade: h2c"),
        _get(seg, "Host: x", "Content-Length: 0"),
        _get(seg, "Host: x", "Transfer-Encoding: chunked") + b"0\r\n\r\n",
        _get(seg, "Host: x", "Expect: 100-continue"),
        _get(seg, "Host: x", f"CTA-Common-Access-Token: {tok}"),
        _get(seg, "Host: x", "Cookie: a=b"),
        _get(seg, "Host: x", "Proxy-Connection: close"),  # llhttp reads it as Connection
        _get(seg, "Host : x"),  # a space before the colon
        _get(seg, "Host: x", " folded"),  # obs-fold
        _get(seg, "Host: x", "X-Bad: a\x01b"),  # a control byte in a value
        # Two addresses: none believed, so a bound token is denied.
        _get(f"/t/{net}{SEG}", "Host: x", "X-Real-IP: 203.0.113.9", "X-Real-IP: 203.0.113.10"),
        f"GET {seg} HTTP/1.1\r\nHost: x\nX-Real-IP: 203.0.113.9\r\n\r\n".encode(),  # bare LF
        f"GET {seg} HTTP/1.0\r\nHost: x\r\n\r\n".encode(),
        f"get {seg} HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
        f"HEAD {seg} HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
        f"GET http://x{seg} HTTP/1.1\r\nHost: x\r\n\r\n".encode(),  # absolute form
        f"GET  {seg} HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
        _get(seg.replace("seg_000", "seg%5F000"), "Host: x"),  # percent-encoded
        _get(f"/t/{tok}/videos/demo/../demo/v0/seg_000.ts", "Host: x"),
        _get(f"/t/{tok}/videos/demo//v0/seg_000.ts", "Host: x"),
        _get(f"/t/{tok}/videos/demo/v0/seg_000.ts#frag", "Host: x"),
        _get(f"/t/{tok}/videos/demo/out.ts", "Host: x"),  # a link out of the root
        _get(f"/t/{tok}/videos/demo/pipe.ts", "Host: x"),
        _get(f"/t/{tok}/videos/demo/folder", "Host: x"),
        _get(f"/t/{tok}/videos/demo/missing.ts", "Host: x"),
        _get(f"/t/{tok}/videos/other/x.ts", "Host: x"),  # out of scope: denied
        _get(f"/t/{net}{SEG}", "Host: x", "X-Real-IP: 198.51.100.1"),  # another network
        _get(f"/t/{net}{SEG}", "Host: x"),  # from loopback itself
        _get(f"/videos/demo/master.m3u8?token={tok}", "Host: x"),  # a manifest to rewrite
        _get(f"/metrics?token={tok}", "Host: x"),  # another route's path
        _get(f"/t/{factories.tampered(tok)}{SEG}", "Host: x"),  # never seen: not taken
        _get(f"/t/{tok}{SEG}", "Host: x") + b"GET",  # the start of a next request
    ]
    for data in declined:
        ours, answered = _one(both, data)
        assert answered == 0, data[:160]
        assert b" 500 " not in ours, data[:160]
        assert b"Traceback" not in ours, data[:160]


def test_the_shield_request_table_pipelined_and_one_by_one(
    both: tuple[str, str, FastMedia], keyring: KeyRing
) -> None:
    """The shortcut's table (files, refusals, redirects, fixed routes) one request per write on
    one connection, twice (the second time its tokens are known), and all in one write."""
    table = requests(keyring)
    counted = both[2]
    before = counted.answered
    for _ in range(2):
        for method, path, headers in table:
            lines = [f"{name}: {value}" for name, value in headers.items()]
            data = f"{method} {path} HTTP/1.1\r\nHost: x\r\n".encode()
            data += "".join(f"{line}\r\n" for line in lines).encode() + b"\r\n"
            ours, _ = _one(both, data)
            assert b" 500 " not in ours, (method, path)
    assert counted.answered - before >= 4  # the table's plain segment and playlists, known
    pipelined = b"".join(
        f"{m} {p} HTTP/1.1\r\nHost: x\r\n".encode()
        + "".join(f"{k}: {v}\r\n" for k, v in h.items()).encode()
        + b"\r\n"
        for m, p, h in table
    )
    _alike(both, pipelined)


def test_a_start_token_opening_a_session_is_answered_fast_and_alike(
    both: tuple[str, str, FastMedia], keyring: KeyRing
) -> None:
    """The redirect that opens a playback session (the first request of every viewer): the
    same head as the full path's but for the new session's URL, which then plays."""
    now = time.time() - 1
    start = factories.token(keyring, now=now, ttl=301, scope="/videos/demo/", session_seconds=600)
    limited = factories.token(
        keyring, now=now, ttl=301, scope="/videos/demo/", session_seconds=600, max_streams=2
    )
    master = "/videos/demo/master.m3u8"
    for token in (start, limited):  # first sight: the full path authenticates (and remembers)
        _one(both, _get(f"/t/{token}{master}", "Host: x"))
    ours, answered = _one(both, _get(f"/t/{start}{master}", "Host: x", "X-Real-IP: 203.0.113.9"))
    assert answered == 1
    head = ours.split(b"\r\n\r\n")[0].decode()
    assert head.startswith("HTTP/1.1 302 Found\r\n"), head
    assert "\r\ncache-control: no-store\r\n" in head
    assert "\r\ncontent-length: 0" in head
    location = next(line for line in head.split("\r\n") if line.startswith("location: "))
    session_url = location.removeprefix("location: ")
    assert session_url.startswith("/s/")
    assert session_url.endswith(master)
    played, _ = _one(both, _get(session_url, "Host: x", "X-Real-IP: 203.0.113.9"))
    assert played.startswith(b"HTTP/1.1 200 OK\r\n"), played[:200]
    # Bound to the viewer's network: from another one the session is refused.
    elsewhere, _ = _one(both, _get(session_url, "Host: x", "X-Real-IP: 198.51.100.1"))
    assert elsewhere.startswith(b"HTTP/1.1 403 "), elsewhere[:200]
    # A stream limit is counted per session in shared state: the full path's (here, no Redis).
    _, answered = _one(both, _get(f"/t/{limited}{master}", "Host: x"))
    assert answered == 0


def test_both_paths_open_the_same_session(
    both: tuple[str, str, FastMedia], keyring: KeyRing
) -> None:
    """The Location both paths answer holds a session with the same lineage and limits."""
    now = time.time() - 1
    start = factories.token(
        keyring, now=now, ttl=301, scope="/videos/demo/", session_seconds=600, user_id="u-7"
    )
    data = _get(f"/t/{start}/videos/demo/master.m3u8?x=1", "Host: x", "X-Real-IP: 203.0.113.9")
    _one(both, data)  # first sight
    fast, full, counted = both
    before = counted.answered
    sessions = [
        _session_of(_separately(fast, data), keyring),
        _session_of(_separately(full, data), keyring),
    ]
    assert counted.answered - before == 1  # the first server's answer was the fast path's
    (ours, rest), (theirs, their_rest) = sessions
    assert rest == their_rest == "/videos/demo/master.m3u8?x=1"
    assert abs(ours.expires_at - theirs.expires_at) <= 1
    assert ours.session_id != theirs.session_id  # each opening mints its own
    for claims in (ours, theirs):
        assert claims.client_network == "203.0.113.0/24"  # narrowed to the viewer's network
    assert ours._replace(expires_at=0, session_id="") == theirs._replace(
        expires_at=0, session_id=""
    )


def _session_of(answer: bytes, keyring: KeyRing) -> tuple[Claims, str]:
    """The claims of the session token a 302 sends the player to, and the rest of its URL."""
    head = answer.split(b"\r\n\r\n")[0].decode()
    assert head.startswith("HTTP/1.1 302 "), head
    location = next(line for line in head.split("\r\n") if line.startswith("location: "))
    token, _, rest = location.removeprefix("location: /s/").partition("/")
    return open_token(token, keyring.with_context(SESSION_CONTEXT)), "/" + rest


def test_answers_never_pile_up_for_a_client_that_does_not_read(
    keyring: KeyRing, media_root: Path
) -> None:
    """A client sending session openings one at a time and reading none of the redirects:
    once the sockets are full, the server's buffer of unsent answers stays at the transport's
    high-water mark (the full path stops reading such a client), never growing with every
    request read (a fast answer written whatever waits: megabytes, and a session opened and
    logged per request, for as long as the send timeout allows)."""
    app = create_app(ValidatorSettings(keyring=keyring, media_root=media_root))
    sock = bind(LOOPBACK, 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # its connections' too: full soon
    server = uvicorn.Server(uvicorn_config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.01)
        fast = fast_media(getattr(app, MEDIA_ROUTE))
        assert fast is not None
        start = factories.token(keyring, now=time.time() - 1, ttl=301, scope="/videos/demo/",
                                session_seconds=600)  # fmt: skip
        data = _get(f"/t/{start}/videos/demo/master.m3u8", "Host: x")
        largest = 0
        with socket.socket() as conn:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before the handshake
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.connect(sock.getsockname())
            conn.settimeout(0.5)
            with contextlib.suppress(TimeoutError):
                for sent in range(1_500):
                    conn.sendall(data)
                    time.sleep(0.001)  # one request per read, as a paced client sends them
                    if sent % 100 == 0:
                        largest = max(largest, _unsent(server))
            time.sleep(0.3)
            largest = max(largest, _unsent(server))
        assert fast.answered > 10  # the fast path answered while the sockets took it
        assert largest < 128 * 1024, largest
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def _unsent(server: uvicorn.Server) -> int:
    """The bytes the server's connections hold, written but not yet sent."""
    return sum(c.transport.get_write_buffer_size() for c in server.server_state.connections)


def test_a_known_token_past_its_expiry_is_not_answered_fast(
    both: tuple[str, str, FastMedia], keyring: KeyRing
) -> None:
    """The memo holds a token's claims, never its verdict: times are judged per request."""
    now = time.time()
    short = factories.token(keyring, now=now - 1, ttl=2, scope="/videos/demo/")
    data = _get(f"/t/{short}{SEG}", "Host: x")
    _one(both, data)
    assert _one(both, data)[1] == 1
    time.sleep(2 + 5 + 1)  # past its expiry and the leeway
    ours, answered = _one(both, data)
    assert answered == 0
    assert ours.startswith(b"HTTP/1.1 403 ")


def _in_writes(base: str, writes: list[bytes]) -> bytes:
    """Each of ``writes`` sent on its own (the server reads them apart), then every byte read."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    received = b""
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        for data in writes:
            conn.sendall(data)
            time.sleep(0.2)
        while chunk := conn.recv(1 << 20):
            received += chunk
    return received


def test_a_request_the_parser_holds_in_part_is_never_passed_over(
    both: tuple[str, str, FastMedia], keyring: KeyRing
) -> None:
    """The start of a request behind a whole one stays in llhttp's buffer: a whole request
    arriving next is the rest of it (as the full path reads it), never a request of its own
    answered fast while that prefix waits to be glued onto a later one (a desync)."""
    fast, full, counted = both
    tok = factories.token(keyring, now=time.time() - 1, ttl=301, scope="/videos/demo/")
    seg = _get(f"/t/{tok}{SEG}", "Host: x")
    _one(both, seg)  # known
    writes = [seg + b"GET /x", seg, b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"]
    before = counted.answered
    ours = _in_writes(fast, writes)
    assert counted.answered == before
    assert _normal(ours) == _normal(_in_writes(full, writes))
    assert ours.count(b"HTTP/1.1 200 ") == 1


def test_the_operator_can_turn_the_fast_path_off(keyring: KeyRing, media_root: Path) -> None:
    """``PLAYGATE_SERVER_FAST_PATH=false``: every request takes the full path, answered alike."""
    assert ServerLimits.from_env({}).fast_path
    limits = ServerLimits.from_env({"PLAYGATE_SERVER_FAST_PATH": "false"})
    assert not limits.fast_path
    with pytest.raises(ConfigurationError, match="PLAYGATE_SERVER_FAST_PATH"):
        ServerLimits.from_env({"PLAYGATE_SERVER_FAST_PATH": "maybe"})
    app = create_app(ValidatorSettings(keyring=keyring, media_root=media_root))
    fast = fast_media(getattr(app, MEDIA_ROUTE))
    assert fast is not None
    tok = factories.token(keyring, now=time.time() - 1, ttl=301, scope="/videos/demo/")
    with serve_app(app, limits) as base:
        for _ in range(3):  # the first sight, then a known token
            answer = _separately(base, _get(f"/t/{tok}{SEG}", "Host: x"))
            assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer[:200]
    assert fast.answered == 0
