"""The shield's common allow answered in ``data_received``: no parser callbacks, no ASGI scope,
cycle or task (``playgate serve-validator`` only).

The edge benchmark's shield spent about 260,000 instructions per segment in user space, half
of them uvicorn's per-request machinery and the async layers around a decision that never
waits. Here, as the nginx module's C path does (playgate/nginx/module), one narrow case is
answered at once and everything else is *declined*, untouched, to the full path (httptools,
uvicorn's cycle, ``media_path.py``, the shield), which then decides it as before:

- the connection is idle between requests, and the bytes that arrived are exactly one request
  head: ``GET <target> HTTP/1.1``, a plain origin-form target (no ``%``, no ``#``), header
  lines of token characters and visible values, none that gives a body, asks for a range, an
  upgrade, ``100-continue`` or a closed connection, carries a CTA token header or a cookie;
- the verifier's own ``_decide`` allows the token (authenticated and remembered on first
  sight, as the full path does: a token declined after that is found in the memo there, and a
  forged one costs one MAC more, about 6 % of the full path's request): times, scope, client
  network (the viewer's address found by the same ``client_address``);
- nothing else is asked of the request: no CAT, no foreign format, no manifest to rewrite, no
  use or stream limit; not revoked and the revocation view trusted (the same
  ``StateGuard.settled``);
- nothing of an earlier answer still waits to be written (a client that does not read is the
  full path's, which stops reading it);
- a start token fetching a manifest is answered with the redirect that opens its playback
  session (``Gate.session_for``, ``session_url``, ``session_opened``, as ``Gate.admit`` and the
  shield's ``session_redirect``): every viewer's first request, about 200 µs of CPU on the full
  path;
- otherwise the file opens in the media root (the same ``FileOrigin.opened_fd``: regular,
  inside the root after links).

Its answer is the full path's, byte for byte but the date and a new session's URL
(``tests/http/test_shield_fast.py`` compares the raw responses of every request in the
shield's request table, and the sessions both paths open): the decision is counted and logged
by ``Gate.decided``, the request by ``MediaRoute.record``; the head is the file's cached head
with the token id, ``nosniff`` and ``Cache-Control``; the body goes by ``sendfile`` (the rest,
when the socket is full, by ``FileSender`` in a task, reading paused).
"""

from __future__ import annotations

import os
import time
import weakref
from typing import TYPE_CHECKING

from edge_validator.asgi.client_address import client_address
from edge_validator.asgi.shield import file_headers, session_redirect, success_cache_control
from edge_validator.core.addresses import ClientAddress
from edge_validator.core.decision import Grant
from edge_validator.core.errors import NotFound, PlaybackTokenError
from edge_validator.core.paths import split_fields
from edge_validator.core.sessions import opens_session
from edge_validator.core.token import Claims
from edge_validator.manifests.query_mode import needs_rewrite
from edge_validator.origins.files import FileOrigin, whole_file_head

from .byte_sets import table_allowing

if TYPE_CHECKING:
    from edge_validator.asgi.shield import MediaRoute

    from .serving import GuardedHttpToolsProtocol

# Header names (lower case) whose request the full path answers: a body, a range, an upgrade,
# a token in a header or a cookie (and ``Connection`` other than ``keep-alive``).
_DECLINED = frozenset(
    {
        b"content-length",
        b"transfer-encoding",
        b"range",
        b"if-range",
        b"expect",
        b"upgrade",
        b"cookie",
        b"proxy-connection",  # llhttp reads it as Connection
        b"cta-common-access-token",
        b"te",
        b"trailer",
    }
)
# RFC 9110 token characters (a header name), and the target bytes taken here: RFC 3986 path,
# query and "/", without "%" (decoding is the full path's).
_TCHAR = table_allowing(
    b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)
_TARGET = table_allowing(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/?"
)
# Field value bytes: visible ASCII, space, tab and obs-text; no other control byte.
_VALUE = table_allowing([9, *range(32, 127), *range(128, 256)])
_CONNECTION = b"connection"
_KEEP_ALIVE = b"keep-alive"  # what browsers and ffmpeg send on HTTP/1.1, the default there
_GET = b"GET /"
_END = b"\r\n\r\n"
_HTTP11 = b" HTTP/1.1"


class FastMedia:
    """What the fast path reads, bound once per app (``fast_media``)."""

    def __init__(self, route: MediaRoute) -> None:
        state = route.app.state._state  # type: ignore[union-attr]
        self.route = route
        self.gate = state["gate"]
        settings = state["settings"]
        self.header = settings.client_ip_header
        self.header_key = self.header.lower().encode("latin-1")
        self.proxies = settings.trusted_proxies
        origin = state["origin"]
        self.origin: FileOrigin | None = origin if isinstance(origin, FileOrigin) else None
        self.answered = 0

    def usable(self) -> bool:
        gate = self.gate
        return self.origin is not None and gate.foreign is None and gate.dual is None

    def answer(self, conn: GuardedHttpToolsProtocol, data: bytes) -> bool:
        """Answer ``data`` (a whole request, the connection idle) at once; False: declined,
        nothing sent or counted."""
        if data[:5] != _GET or data[-4:] != _END:
            return False
        end = data.find(_END)
        if end != len(data) - 4:
            return False  # more than one request, or a body: the parser's
        lines = data[:end].split(b"\r\n")
        request = lines[0]
        if request[-9:] != _HTTP11:
            return False
        target = request[4:-9]
        if target.translate(_TARGET) != target:
            return False  # a space, "%", "#", non-ASCII: the parser's and the full path's
        forwarded: list[str] = []
        key = self.header_key
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon or not name or name.translate(_TCHAR) != name:
                return False
            if value.translate(_VALUE) != value:
                return False
            name = name.lower()
            if name in _DECLINED:
                return False
            if name == _CONNECTION and value.strip(b" \t").lower() != _KEEP_ALIVE:
                return False  # close, upgrade, several options: the parser's
            if name == key:
                forwarded.append(value.strip(b" \t").decode("latin-1"))
        started = time.perf_counter()
        peer = conn.client
        client = client_address(peer[0] if peer else None, forwarded, self.proxies, self.header)
        gate = self.gate
        verifier = gate.verifier
        target_text = target.decode("ascii")
        path = target_text.partition("?")[0]
        if path in self.route.fixed:
            return False  # another route's (a query token on /metrics is not the shield's)
        try:
            fields = split_fields(target_text)
        except PlaybackTokenError:
            return False
        now = gate.clock()
        try:
            grant = verifier._decide(fields, client, now)
        except PlaybackTokenError:
            return False
        if grant.claims.__class__ is not Claims or needs_rewrite(grant):
            return False
        if opens_session(grant):
            return self._open_session(conn, grant, client, started, path)
        if not gate.settled(grant):
            return False
        assert self.origin is not None
        try:
            fd, info = self.origin.opened_fd(grant.path)
        except NotFound:
            return False
        try:
            shared = whole_file_head(grant.path, info.st_mtime, info.st_size)
            made = conn.fast_head(shared, file_headers(grant, success_cache_control(grant)))
        except Exception:  # noqa: BLE001  # declined: the full path decides, and answers errors
            made = None
        if made is None:
            os.close(fd)
            return False
        gate.judged_fail_open()
        gate.decided(started, client, grant, None)
        head, count = made
        conn.send_fast(head, fd, count, started, path)
        self.answered += 1
        return True

    def _open_session(
        self,
        conn: GuardedHttpToolsProtocol,
        grant: Grant,
        client: ClientAddress | None,
        started: float,
        path: str,
    ) -> bool:
        """A start token fetching a manifest: the redirect that opens its session, as
        ``Gate.admit`` and ``shield`` make it (a stream limit, counted per session in Redis,
        is declined with the rest by ``settled``)."""
        gate = self.gate
        try:
            session = gate.session_for(grant, client)
            if not gate.settled(grant):
                return False
            redirect = session_redirect(gate.session_url(grant, session), grant)
            head = conn.fast_empty(redirect.status_code, redirect.raw_headers)
        except Exception:  # noqa: BLE001  # declined: the full path decides, and answers errors
            head = None
        if head is None:
            return False
        gate.judged_fail_open()
        gate.decided(started, client, grant, None)
        gate.session_opened(session, client)
        conn.send_empty(head, started, path, redirect.status_code)
        self.answered += 1
        return True


def sendfile_once(sock: int, fd: int, count: int) -> int:
    """Bytes sent by one ``sendfile`` (0 when the socket is full); -1: the client is gone."""
    try:
        return os.sendfile(sock, fd, 0, count)
    except BlockingIOError:
        return 0
    except OSError:
        return -1


_bound: weakref.WeakKeyDictionary[MediaRoute, FastMedia] = weakref.WeakKeyDictionary()


def fast_media(route: MediaRoute) -> FastMedia | None:
    """The fast path for the app of ``route``, or None where the app asks more of a request
    than it does (a foreign token format, Media CDN's dual tokens, an origin not on disk)."""
    fast = _bound.get(route)
    if fast is None:
        fast = _bound[route] = FastMedia(route)
    return fast if fast.usable() else None
