"""Serving PlayGate's ASGI apps where hostile clients can reach them: uvicorn with limits.

uvicorn with httptools (the fast parser the signer's throughput target assumes) has no limit on
the size of a request head, no timeout on a slow head or body, never closes a silent
connection, and accepts connections until the process runs out of file descriptors. httptools
also re-joins a header value on every chunk, so parse time grows with the square of its size.
``GuardedHttpToolsProtocol`` adds what nginx's ``large_client_header_buffers``,
``client_header_timeout``, ``client_body_timeout``, ``client_max_body_size``, ``send_timeout``
and ``worker_connections`` give, at the protocol level, before any of it reaches the app:

- the request head (request line and headers) is cut at ``max_head_bytes`` (431);
- the head must arrive within ``head_timeout`` of the connection opening or of the previous
  response (silent and slowloris connections are closed, 408 when a head had begun);
- a declared or chunked body over ``max_body_bytes`` is refused (413), and a body must arrive
  within ``body_timeout`` of its head (408);
- a client that stops reading a response is dropped after ``send_timeout``;
- a refusal (400, 408, 413, 431) is written only when no earlier response is owed or under
  way on the connection (a pipelined request's refusal would land inside a file body or be
  read as the earlier request's answer): else the connection is closed;
- at ``max_connections`` open connections, the connection that has waited longest for a request
  head is closed to make room (a flood of idle sockets cannot lock viewers out); when every
  connection is busy with a request, the new one is closed.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import functools
import io
import json
import logging
import os
import resource
import typing
import urllib.parse
import weakref
from collections.abc import Iterable, Mapping

import httptools
import uvicorn
from starlette.types import ASGIApp
from uvicorn._types import ASGI3Application, ASGISendEvent
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import (
    HEADER_RE,
    HEADER_VALUE_RE,
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from uvicorn.server import ServerState

from edge_validator.asgi.shield import MEDIA_ROUTE, MediaRoute
from edge_validator.core.protocol import NO_STORE, REASON_HEADER
from edge_validator.env import Env

from .byte_sets import table_allowing
from .file_sending import EXTENSIONS, MAX_CHUNK, FileSender, with_file_bodies
from .media_fast import FastMedia, fast_media, sendfile_once
from .media_path import media_app
from .one_write import with_one_write

# File descriptors the process keeps for itself beyond client connections: the listening socket,
# Redis and origin pools, media files, logs.
FD_RESERVE = 128
LINGER_SECONDS = 1.0
# How often deadlines are checked: every timeout holds to within this.
SWEEP_SECONDS = 0.5


@dataclasses.dataclass(frozen=True)
class ServerLimits:
    max_connections: int = 1024
    max_head_bytes: int = 16 * 1024
    max_body_bytes: int = 64 * 1024
    head_timeout: float = 10.0
    body_timeout: float = 10.0
    send_timeout: float = 30.0
    keep_alive_timeout: float = 5.0
    # The shield's common allow answered in ``data_received`` (media_fast.py); off: every
    # request takes the full path (to rule the fast path out when chasing a difference).
    fast_path: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ServerLimits:
        env = Env(environ)
        return cls(
            max_connections=env.integer("PLAYGATE_MAX_CONNECTIONS", 1024, low=16, high=1_000_000),
            max_head_bytes=env.integer(
                "PLAYGATE_MAX_HEAD_BYTES", 16 * 1024, low=4096, high=1024 * 1024
            ),
            max_body_bytes=env.integer(
                "PLAYGATE_MAX_BODY_BYTES", 64 * 1024, low=1024, high=64 * 1024 * 1024
            ),
            head_timeout=env.number("PLAYGATE_HEAD_TIMEOUT", 10.0, low=0.5, high=300),
            body_timeout=env.number("PLAYGATE_BODY_TIMEOUT", 10.0, low=0.5, high=300),
            send_timeout=env.number("PLAYGATE_SEND_TIMEOUT", 30.0, low=0.5, high=3600),
            fast_path=env.flag("PLAYGATE_SERVER_FAST_PATH", True),
        )

    def within_file_limit(self) -> ServerLimits:
        """Raise the soft ``nofile`` limit to the hard one, and keep the connection cap below it:
        a process out of descriptors fails everyone, the cap sheds idle clients instead."""
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        if soft == resource.RLIM_INFINITY:
            return self
        cap = max(16, min(self.max_connections, soft - FD_RESERVE))
        return dataclasses.replace(self, max_connections=cap)


# Refusals made before the app sees the request, with a reason as every PlayGate denial has.
_REASONS = {
    400: "bad_request",
    408: "request_timeout",
    413: "body_too_large",
    431: "head_too_large",
}


def _status(code: int) -> bytes:
    reason = _REASONS[code]
    body = json.dumps({"error": reason}).encode()
    head = (
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
        f"{REASON_HEADER.lower()}: {reason}\r\ncache-control: {NO_STORE}\r\n"
        "connection: close\r\n\r\n"
    )
    return STATUS_LINE[code] + head.encode() + body


class _Server:
    """Per server: the connections waiting for a request head, oldest first (the eviction
    order), and one sweep every ``SWEEP_SECONDS`` that enforces every connection's deadline.
    Deadlines are numbers, not timers: a request costs two clock reads, not two timer heaps."""

    def __init__(self, state: ServerState, loop: asyncio.AbstractEventLoop) -> None:
        self.state = state
        self.loop = loop
        self.waiting: collections.OrderedDict[GuardedHttpToolsProtocol, None] = (
            collections.OrderedDict()
        )
        self.sweeping = False

    def start_sweeping(self) -> None:
        if not self.sweeping:
            self.sweeping = True
            self.loop.call_later(SWEEP_SECONDS, self.sweep)

    def sweep(self) -> None:
        now = self.loop.time()
        for conn in list(self.state.connections):
            if not isinstance(conn, GuardedHttpToolsProtocol):
                continue
            if 0 < conn.send_deadline <= now:
                conn.transport.abort()  # the client stopped reading its response
            elif 0 < conn.idle_deadline <= now:
                conn.idle_deadline = 0.0
                if not conn.transport.is_closing():  # kept alive, silent: uvicorn's handler
                    conn.transport.close()
            elif 0 < conn.deadline <= now:
                conn.deadline_passed()
        self.sweeping = False
        if self.state.connections:
            self.start_sweeping()


_servers: weakref.WeakKeyDictionary[ServerState, _Server] = weakref.WeakKeyDictionary()


# The bytes uvicorn refuses in a response header's name and value: both expressions match one
# byte, so a header is refused here exactly when uvicorn would refuse it.
_NAME = table_allowing(b for b in range(256) if not HEADER_RE.search(bytes((b,))))
_VALUE = table_allowing(b for b in range(256) if not HEADER_VALUE_RE.search(bytes((b,))))


# Names whose header ``_Cycle.start`` acts on besides writing it.
_STATEFUL = frozenset({b"content-length", b"transfer-encoding", b"connection"})
_NO_BODY = (b"content-length", b"0")


def _refusal(headers: list[tuple[bytes, bytes]]) -> str | None:
    """Why ``headers`` cannot be written (uvicorn's words), or None: every name and every value
    checked once, all joined, by ``bytes.translate`` (a C loop: byte_sets.py)."""
    names = b"".join([name for name, _ in headers])
    if names.translate(_NAME) != names:
        return "Invalid HTTP header name."
    values = b"".join([value for _, value in headers])
    if values.translate(_VALUE) != values:
        return "Invalid HTTP header value."
    return None


def _lines(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """``headers`` as ``_Cycle.start`` writes them, if it would only write them: None when one is
    refused or acted on (a length, an encoding, a connection option)."""
    if _refusal(headers) is not None:
        return None
    content = []
    for name, value in headers:
        name = name.lower()
        if name in _STATEFUL:
            return None
        content.extend([name, b": ", value, b"\r\n"])
    return b"".join(content)


# The server's default headers (uvicorn's: the date, which changes once a second) and their
# ``_lines``, computed again only when they differ.
_defaults: tuple[list[tuple[bytes, bytes]], bytes | None] = ([], b"")


def _server_lines(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    global _defaults
    known, lines = _defaults
    if headers != known:
        lines = _lines(headers)
        _defaults = (list(headers), lines)
    return lines


@functools.lru_cache(maxsize=4096)
def _file_lines(shared: tuple[tuple[bytes, bytes], ...]) -> tuple[bytes, int] | None:
    """A file's own headers (one tuple per file version, origins/files.py) as ``_Cycle.start``
    writes them and the Content-Length it reads from them, checked and encoded once per file
    version; None when they are not only headers to write and one length (``start`` then runs
    on the whole head, and refuses or acts as it does)."""
    length = [value for name, value in shared if name.lower() == b"content-length"]
    if len(length) != 1 or not length[0].isdigit():
        return None
    others = [(name, value) for name, value in shared if name.lower() != b"content-length"]
    if _lines(others) is None or _lines([(b"x", length[0])]) is None:
        return None
    return b"".join([name.lower() + b": " + value + b"\r\n" for name, value in shared]), int(
        length[0]
    )


def _file_head(
    status: int,
    defaults: list[tuple[bytes, bytes]],
    shared: tuple[tuple[bytes, bytes], ...],
    rest: list[tuple[bytes, bytes]],
    close: bytes = b"",
) -> tuple[bytes, int] | None:
    """A whole file's head after the server's ``defaults`` (``close``: a ``Connection`` line,
    or none), and the length it declares; None where ``start`` would refuse or act on one of
    the headers (``_Cycle.start_file`` and the server's fast path)."""
    encoded = _file_lines(shared)
    if encoded is None:
        return None
    before = _server_lines(defaults)
    after = _lines(rest) if before is not None else None
    if before is None or after is None:
        return None
    lines, length = encoded
    return b"".join((STATUS_LINE[status], before, lines, after, close, b"\r\n")), length


class _Cycle(RequestResponseCycle):
    """uvicorn's request-response cycle, its response head written the same way for less: the
    names and the values are each checked once, all joined, by ``bytes.translate`` (a C loop)
    instead of two regular expression searches per header (a character-class match per byte:
    about 15,000 instructions of every file response). Same head, same state, the same
    headers refused (only which of the two messages, when one header has a bad value and a
    later one a bad name, may differ); anything but a head, and a head under an access log
    (never written here), is uvicorn's. ``tests/unit/test_response_head.py`` compares them."""

    async def send(self, message: ASGISendEvent) -> None:
        if self.response_started or message["type"] != "http.response.start" or self.access_log:
            await RequestResponseCycle.send(self, message)
            return
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        if self.disconnected:
            return
        self.transport.write(self.start(message["status"], message.get("headers", [])))

    def start_file(
        self,
        status_code: int,
        shared: tuple[tuple[bytes, bytes], ...],
        rest: list[tuple[bytes, bytes]],
    ) -> bytes:
        """``start(status_code, [*shared, *rest])``, the same head and state, with ``shared`` (a
        file's own headers, one tuple per file version) checked and encoded once (a head was
        about 40,000 instructions per segment, most of it the same file headers again); the
        server's default headers and ``rest`` are checked here as ``start`` checks them."""
        made = None
        if self.chunked_encoding is None:
            close = b"" if self.keep_alive else b"connection: close\r\n"
            made = _file_head(status_code, self.default_headers, shared, rest, close)
        if made is None:
            return self.start(status_code, [*shared, *rest])
        self.response_started = True
        self.waiting_for_100_continue = False
        head, self.expected_content_length = made
        self.chunked_encoding = False
        return head

    def start(self, status_code: int, raw_headers: Iterable[tuple[bytes, bytes]]) -> bytes:
        """The response head, the cycle's state set as ``http.response.start`` sets it (the
        server's media path writes a file's head with it: ``playgate/media_path.py``)."""
        self.response_started = True
        self.waiting_for_100_continue = False
        headers = self.default_headers + list(raw_headers)
        refusal = _refusal(headers)
        if refusal is not None:
            raise RuntimeError(refusal)
        content = [STATUS_LINE[status_code]]
        has_connection_close = False
        for name, value in headers:
            name = name.lower()
            if name == b"content-length" and self.chunked_encoding is None:
                self.expected_content_length = int(value.decode())
                self.chunked_encoding = False
            elif name == b"transfer-encoding" and value.lower() == b"chunked":
                self.expected_content_length = 0
                self.chunked_encoding = True
            elif name == b"connection":
                connection = [token.lower().strip() for token in value.split(b",")]
                if b"close" in connection:
                    self.keep_alive = False
                    has_connection_close = True
            content.extend([name, b": ", value, b"\r\n"])
        if not self.keep_alive and not has_connection_close:
            content.append(b"connection: close\r\n")
        if (
            self.chunked_encoding is None
            and self.scope["method"] != "HEAD"
            and status_code not in (204, 304)
        ):
            self.chunked_encoding = True  # neither a length nor an encoding: chunked
            content.append(b"transfer-encoding: chunked\r\n")
        content.append(b"\r\n")
        return b"".join(content)


# The bytes of an origin-form target (RFC 3986 pchar, "/" and "?") that ``split_target``
# splits itself: any other (a fragment's "#", a byte http-parser refuses, non-ASCII) goes to
# ``httptools.parse_url``. ``tests/unit/test_split_target.py`` compares the two.
_PLAIN_TARGET = (
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@%/?"
)
_PLAIN = table_allowing(_PLAIN_TARGET)


def split_target(url: bytes) -> tuple[bytes, bytes]:
    """The path and the query (b"" when none) of a request target, as ``httptools.parse_url``
    gives them to uvicorn."""
    if url[:1] == b"/" and url.translate(_PLAIN) == url:
        path, _, query = url.partition(b"?")
        return path, query
    parsed = httptools.parse_url(url)
    return parsed.path, parsed.query or b""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    limits = ServerLimits()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._reading_head = True
        self._head_bytes = 0
        self._body_bytes = 0
        # When the current wait for the client ends (0: none): its head, its body, or the end of
        # a lingering close; and when it must have read what it was sent.
        self.deadline = 0.0
        self.send_deadline = 0.0
        # When a kept-alive connection with no byte of a next request is closed (0: none):
        # uvicorn's keep-alive timeout, enforced by the sweep rather than by a timer armed and
        # cancelled for every request (4 µs of uvloop per request).
        self.idle_deadline = 0.0
        self._lingering = False
        self._refused = False
        # Zero-copy file bodies on plain TCP (TLS encrypts in user space).
        self._files: FileSender | None = None
        # The shield's media requests answered without the middleware stack (media_path.py):
        # zero-copy, no access log, an app that offers it and whose stack is as it was built.
        self._media: MediaRoute | None = None
        # Its common allow answered in data_received (media_fast.py); a body being sent the
        # slow way (``_fast_busy``): reading paused, no refusal written into it.
        self._fast: FastMedia | None = None
        self._fast_busy = False
        # Between on_message_begin and on_message_complete: llhttp holds part of a request
        # (possibly with nothing counted in ``_head_bytes``), so the bytes are the parser's.
        self._in_message = False
        self._held: list[bytes] = []
        self._close_after = False
        if self.scheme == "http":
            self._files = FileSender(transport, self.loop, self._waiting_to_send)
            media = getattr(self.app, MEDIA_ROUTE, None)
            # uvicorn writes an access line (with the path: a token) where one has a handler
            # at INFO; serve-validator turns it off, so the media path never writes one.
            logs_access = self.access_log and self.access_logger.isEnabledFor(logging.INFO)
            if media is not None and not logs_access and media.ready():
                self._media = media
                fast = fast_media(media) if self.limits.fast_path else None
                if fast is not None and not self.root_path and self.limit_concurrency is None:
                    self._fast = fast
        server = _servers.get(self.server_state)
        if server is None:
            server = _servers[self.server_state] = _Server(self.server_state, self.loop)
        self._server = server
        if len(self.connections) > self.limits.max_connections and not self._evict():
            self._refused = True
            transport.abort()
            return
        server.start_sweeping()
        self._wait_for_head()

    def _evict(self) -> bool:
        waiting = self._server.waiting
        if not waiting:
            return False
        oldest, _ = waiting.popitem(last=False)
        oldest._refused = True
        oldest.deadline = 0.0
        oldest.transport.abort()
        return True

    def _wait_for_head(self) -> None:
        self._server.waiting[self] = None
        self.deadline = self.loop.time() + self.limits.head_timeout

    def deadline_passed(self) -> None:
        self.deadline = 0.0
        if self._lingering:
            self.transport.abort()
            return
        # A head or body had begun: say why; a silent connection is just closed.
        started = self._head_bytes > 0 or not self._reading_head
        self._refuse(408 if started else None)

    def _refuse(self, status: int | None) -> None:
        self._refused = True
        self._server.waiting.pop(self, None)
        self.deadline = 0.0
        if self.transport.is_closing():
            return
        if status is not None and self._may_answer():
            # A lingering close, as nginx does: closing with unread input would reset the
            # connection and the client would never read the status. Input is discarded
            # (``_refused``) for about a second.
            self.transport.write(_status(status))
            if self.transport.can_write_eof():
                self.transport.write_eof()
            self._lingering = True
            self.deadline = self.loop.time() + LINGER_SECONDS
        else:
            self.transport.abort()

    def _may_answer(self) -> bool:
        """Whether a refusal may be written now: not while an earlier request's response is
        owed or under way (its bytes would land inside that response, a file body too, or be
        read as its answer), nor once the refused request's own response began."""
        if self._fast_busy:
            return False
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            return True
        if self._reading_head:  # the refused request has no cycle yet: ``cycle`` is earlier
            return False
        # ``cycle`` is the refused request's; queued behind another while in the pipeline.
        return not cycle.response_started and all(c is not cycle for c, _ in self.pipeline)

    def send_400_response(self, msg: str) -> None:
        """A request httptools cannot parse: refused as the others, with a reason and
        ``no-store`` (uvicorn's own 400 has neither and is written whatever is being sent)."""
        self._refuse(400)

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.waiting.pop(self, None)
        self.deadline = self.send_deadline = self.idle_deadline = 0.0
        if self._files is not None:
            self._files.lost()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self.idle_deadline = 0.0  # as uvicorn's keep-alive timer is cancelled by any byte
        if self._refused:
            return
        if self._fast_busy:  # reading is paused; bytes read before that wait for the body
            self._held.append(data)
            self.flow.pause_reading()
            return
        fast = self._fast
        if (
            fast is not None
            and not self._in_message
            and self._reading_head
            and not self._head_bytes
            and not self.pipeline
            and (self.cycle is None or self.cycle.response_complete)
            and len(data) <= self.limits.max_head_bytes
            # Nothing waiting to be written: a client that does not read its answers is left
            # to the full path, which stops reading it (an answer must never pile up here).
            and not self.transport.get_write_buffer_size()
            and fast.answer(self, data)
        ):
            return
        if self._reading_head:
            self._head_bytes += len(data)
        super().data_received(data)
        # Checked after parsing: the chunk may also hold the body. httptools has parsed at most
        # one chunk past the limit, so the quadratic re-joining stays bounded.
        too_big = self._head_bytes > self.limits.max_head_bytes
        if self._reading_head and too_big and not self._refused:
            self._refuse(431)

    def on_message_begin(self) -> None:
        self._in_message = True
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._server.waiting.pop(self, None)
        length = b"0"
        for name, value in self.headers:  # the last one, as a dict of them kept it
            if name == b"content-length":
                length = value
        # llhttp has checked the digits; their count is bounded by the head limit. Refused
        # while still "reading the head": this request has no cycle (``_may_answer``).
        if len(length) > 18 or int(length) > self.limits.max_body_bytes:
            self._refuse(413)
            return
        self._reading_head = False
        self._body_bytes = 0
        self.deadline = self.loop.time() + self.limits.body_timeout
        if self._files is not None:
            self.scope["extensions"] = dict(EXTENSIONS)  # the app's to extend, per request
        self._request_ready()

    def _request_ready(self) -> None:
        """uvicorn's ``on_headers_complete`` (0.55), the same scope, cycle and task, with an
        origin-form target split by ``split_target`` (``httptools.parse_url`` walked the
        target byte by byte, and built a URL object, for what one ``partition`` finds)."""
        parser, scope = self.parser, self.scope
        http_version = parser.get_http_version()
        scope["method"] = parser.get_method().decode("ascii")
        if http_version != "1.1":
            scope["http_version"] = http_version
        if parser.should_upgrade() and self._should_upgrade():
            return
        raw_path, query = split_target(self.url)
        path = raw_path.decode("ascii")
        if "%" in path:
            path = urllib.parse.unquote(path)
        root_path = self.root_path
        scope["path"] = root_path + path if root_path else path
        scope["raw_path"] = root_path.encode("ascii") + raw_path if root_path else raw_path
        scope["query_string"] = query
        limit = self.limit_concurrency
        app: ASGI3Application = self.app
        if limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit):
            app = service_unavailable
            self.logger.warning("Exceeded concurrency limit.")
        existing = self.cycle
        # Positional, in the order of RequestResponseCycle.__init__ (0.30 to 0.55): keywords
        # to a class cost a dict per call.
        self.cycle = cycle = _Cycle(
            scope,
            self.transport,
            self.flow,
            self.logger,
            self.access_logger,
            self.access_log,
            self.server_state.default_headers,
            asyncio.Event(),
            self.expect_100_continue,
            http_version != "1.0" and parser.should_keep_alive(),
            self.on_response_complete,
        )
        if existing is None or existing.response_complete:
            self._start_asgi_task(cycle, app)
        else:  # pipelined: queued behind the response under way
            self.flow.pause_reading()
            self.pipeline.appendleft((cycle, app))

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        # The head held for the body first (one send), inside the file bodies: a held head is
        # written before a file's bytes go to the socket.
        media = self._media
        if media is not None and app is self.app and media.takes(cycle.scope):  # type: ignore[arg-type]
            assert self._files is not None
            app = media_app(cycle, self._files, media)  # type: ignore[arg-type]
            super()._start_asgi_task(cycle, app)
            return
        app = with_one_write(app, cycle)
        if self._files is not None:
            app = with_file_bodies(app, cycle, self._files)
        super()._start_asgi_task(cycle, app)

    def on_body(self, body: bytes) -> None:
        if self._refused:
            return
        self._body_bytes += len(body)
        if self._body_bytes > self.limits.max_body_bytes:
            self._refuse(413)
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._in_message = False
        if self._refused:
            return
        self.deadline = 0.0
        # Whatever comes next is the next request's head (pipelined or after the response).
        self._reading_head, self._head_bytes = True, 0
        super().on_message_complete()

    def on_response_complete(self) -> None:
        # uvicorn's, but the keep-alive timeout is a deadline for the sweep, not a timer.
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._unset_keepalive_if_required()  # none armed here; kept as uvicorn has it
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        self.idle_deadline = self.loop.time() + self.timeout_keep_alive
        if not self._refused:
            self._wait_for_head()

    def fast_head(
        self, shared: tuple[tuple[bytes, bytes], ...], rest: list[tuple[bytes, bytes]]
    ) -> tuple[bytes, int] | None:
        """A whole file's 200 head as ``_Cycle.start_file`` writes it on a kept-alive
        connection, and its length; None where that would refuse or act on a header."""
        return _file_head(200, self.server_state.default_headers, shared, rest)

    def fast_empty(self, status: int, headers: list[tuple[bytes, bytes]]) -> bytes | None:
        """The head of an answer with no body whose headers end with ``content-length: 0``
        (a Starlette ``Response`` with none), as ``_Cycle.start`` writes it on a kept-alive
        connection; None where that would refuse or act on a header."""
        if not headers or headers[-1] != _NO_BODY:
            return None
        before = _server_lines(self.server_state.default_headers)
        lines = _lines(headers[:-1])
        if before is None or lines is None:
            return None
        return b"".join((STATUS_LINE[status], before, lines, b"content-length: 0\r\n\r\n"))

    def send_empty(self, head: bytes, started: float, path: str, status: int) -> None:
        """Write a fast answer with no body, then end the request (``send_fast``)."""
        self._server.waiting.pop(self, None)
        self.deadline = 0.0
        self.transport.write(head)
        self._fast_done(started, path, status)

    def send_fast(self, head: bytes, fd: int, count: int, started: float, path: str) -> None:
        """Write a fast answer's head and body (``fd``, closed here), then end the request as
        ``on_response_complete`` does (a body cut off is recorded too, as the full path's
        ``finally`` records it)."""
        files = self._files
        transport = self.transport
        try:
            assert files is not None
            self._server.waiting.pop(self, None)
            self.deadline = 0.0
            files.write_head(head, count)
            sent = 0
            if transport.get_write_buffer_size() == 0 and not transport.is_closing():
                sent = sendfile_once(files.socket_fd(), fd, min(count, MAX_CHUNK))
            if 0 <= sent < count:
                # The rest waits for the socket: a file object from here on, closed by the
                # task, or by the collector should the task never run.
                file = io.FileIO(fd, "r")
        except BaseException:
            os.close(fd)
            raise
        if 0 <= sent < count:
            self._fast_busy = True
            self.flow.pause_reading()
            task = self.loop.create_task(self._fast_rest(file, sent, count, started, path))
            task.add_done_callback(self.tasks.discard)
            self.tasks.add(task)
            return
        os.close(fd)
        if sent < 0:  # the client is gone: the head may be out, no status left to give
            transport.abort()
            self._record_fast(started, path)
            return
        self._fast_done(started, path)

    async def _fast_rest(
        self, file: typing.BinaryIO, offset: int, count: int, started: float, path: str
    ) -> None:
        done = False
        try:
            assert self._files is not None
            done = await self._files.send(file.fileno(), offset, count - offset)
        finally:
            file.close()
            self._fast_busy = False
            if not done:  # gone, too slow, the file shorter than its length, or cancelled
                self.transport.abort()
                self._record_fast(started, path)
        if not done:
            return
        self.flow.resume_reading()
        self._fast_done(started, path)
        if self._held and not self.transport.is_closing():
            held, self._held = b"".join(self._held), []
            self.data_received(held)

    def _record_fast(self, started: float, path: str, status: int = 200) -> None:
        assert self._media is not None
        self._media.record_path(path, started, status)

    def _fast_done(self, started: float, path: str, status: int = 200) -> None:
        self._record_fast(started, path, status)
        self.server_state.total_requests += 1
        if self._close_after:
            self.transport.close()
            return
        if self.transport.is_closing():
            return
        self.idle_deadline = self.loop.time() + self.timeout_keep_alive
        self._wait_for_head()

    def shutdown(self) -> None:
        if self._fast_busy:  # the body under way ends, then the connection closes
            self._close_after = True
            return
        super().shutdown()

    def pause_writing(self) -> None:
        super().pause_writing()
        self.send_deadline = self.loop.time() + self.limits.send_timeout

    def resume_writing(self) -> None:
        super().resume_writing()
        self.send_deadline = 0.0

    def _waiting_to_send(self, waiting: bool) -> None:
        """A file body waits for the socket: the client must read within ``send_timeout``."""
        if waiting:
            self.send_deadline = self.loop.time() + self.limits.send_timeout
        elif not self.flow.write_paused:  # the transport's own wait keeps its deadline
            self.send_deadline = 0.0


def guarded_protocol(limits: ServerLimits) -> type[GuardedHttpToolsProtocol]:
    """A protocol class carrying ``limits`` (uvicorn builds one protocol per connection)."""
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {"limits": limits})


def uvicorn_config(
    app: ASGIApp, limits: ServerLimits | None = None, **options: object
) -> uvicorn.Config:
    """uvicorn settings for a PlayGate server. proxy_headers off: the validator decides itself
    which forwarding headers to trust; access_log off: uvicorn's access log would print the
    token (PlayGate logs token ids instead)."""
    limits = limits or ServerLimits()
    return uvicorn.Config(
        app,
        http=guarded_protocol(limits),
        ws="none",  # no PlayGate route speaks WebSocket: no upgrade path to guard
        proxy_headers=False,
        access_log=False,
        server_header=False,
        timeout_keep_alive=int(limits.keep_alive_timeout),
        **options,  # type: ignore[arg-type]
    )
