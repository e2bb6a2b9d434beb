"""Zero-copy file bodies for uvicorn's httptools protocol: ASGI ``http.response.zerocopy`` and
``http.response.pathsend`` (https://asgi.readthedocs.io/en/latest/extensions.html).

uvicorn offers neither, so an app had to read a file into Python and hand the bytes to the
transport (a copy in, a copy out). Here the body goes from the page cache to the socket with
``os.sendfile``, as nginx's ``sendfile on`` does:

- the head goes through the transport as usual; the file is sent only once the transport's
  buffer is empty (bytes cannot overtake the head), waiting for the socket to drain if not;
- a socket that is full (a slow client) is waited on with the loop's writer callback on a
  duplicate of its descriptor (the transport owns the original), under the connection's send
  timeout (``playgate.serving``), never by polling;
- at most ``MAX_CHUNK`` per call, then the loop runs other requests (nginx's
  ``sendfile_max_chunk``), so one fast client cannot hold the worker;
- a client gone mid-file (``EPIPE``, reset, the send timeout) or a file shorter than its
  ``Content-Length`` aborts the connection: the head is out, so there is no status left to send,
  and the client sees a truncated body, never a 5xx.

Offered on plain TCP only (TLS must encrypt in user space). A page-cache miss blocks the worker
for the disk read, as it does nginx without ``aio``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import stat
from collections.abc import Callable
from typing import Any

from uvicorn._types import ASGI3Application, ASGIReceiveCallable, ASGISendCallable, Scope
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from edge_validator.asgi.file_body import ZEROCOPY

log = logging.getLogger("playgate.serving")
PATHSEND = "http.response.pathsend"
EXTENSIONS: dict[str, dict[object, object]] = {ZEROCOPY: {}, PATHSEND: {}}
MAX_CHUNK = 2 * 2**20


class FileSender:
    """Sends file bodies on one connection's socket (one per connection).

    ``send_deadline(True)`` arms the connection's send timeout while the socket is full,
    ``send_deadline(False)`` disarms it; when it fires the transport is aborted and the
    protocol's ``connection_lost`` calls ``lost``."""

    def __init__(
        self,
        transport: asyncio.Transport,
        loop: asyncio.AbstractEventLoop,
        send_deadline: Callable[[bool], None],
    ) -> None:
        self.transport = transport
        self.loop = loop
        self.send_deadline = send_deadline
        self.waiter: asyncio.Future[None] | None = None
        self.gone = False
        # The connection's socket, to send a head with MSG_MORE (uvloop's transport has no
        # flags, and its socket object refuses send): made on first use, never closing it.
        self._raw: _Borrowed | None = None
        self.fd = -1

    def lost(self) -> None:
        raw, self._raw = self._raw, None
        if raw is not None:
            raw.detach()  # the transport's descriptor: closed by the transport, not here
        self.gone = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def write_head(self, head: bytes, body: int) -> None:
        """Write a response head that ``body`` bytes of a file follow at once (``send``). With
        the transport's buffer empty it goes with ``MSG_MORE``: the kernel holds it for the
        file's first bytes and both leave in one segment, one wake-up of the client instead of
        two (in the edge benchmark a third of the shield's CPU per segment: docs/performance.md,
        "The server's fast path"). Anything else goes through the transport."""
        transport = self.transport
        if body > 0 and not self.gone and transport.get_write_buffer_size() == 0:
            raw = self._raw
            if raw is None and not transport.is_closing():
                raw = self._raw = _Borrowed(fileno=self.socket_fd())
            if raw is not None:
                # Full, or gone (OSError): the transport writes it, or finds out and says so.
                with contextlib.suppress(OSError):
                    head = head[raw.send(head, socket.MSG_MORE) :]
        if head:
            transport.write(head)

    def socket_fd(self) -> int:
        """The connection's socket descriptor."""
        if self.fd < 0:
            self.fd = self.transport.get_extra_info("socket").fileno()
        return self.fd

    async def send(self, fd: int, offset: int, count: int) -> bool:
        """``count`` bytes of ``fd`` from ``offset`` to the client; False if it could not be."""
        sock = self.transport.get_extra_info("socket")
        if sock is None or self.transport.is_closing():
            return False
        writable = -1
        try:
            while not self.gone:
                if self.transport.get_write_buffer_size() == 0:
                    break
                writable = await self._wait(sock.fileno(), writable)
            while count > 0 and not self.gone:
                try:
                    sent = os.sendfile(sock.fileno(), fd, offset, min(count, MAX_CHUNK))
                except BlockingIOError:
                    writable = await self._wait(sock.fileno(), writable)
                    continue
                except OSError:  # the client is gone (EPIPE, ECONNRESET)
                    return False
                if sent == 0:  # the file is shorter than its Content-Length
                    return False
                offset += sent
                count -= sent
                if count > 0 and sent == MAX_CHUNK:
                    await asyncio.sleep(0)  # let other requests run
        except OSError as exc:  # no descriptor to wait with (EMFILE): this body is given up
            log.warning("file body cut off: %s", exc.strerror)
            return False
        finally:
            if writable >= 0:
                os.close(writable)
        return count == 0 and not self.gone

    async def _wait(self, fd: int, writable: int) -> int:
        """Wait until the socket takes more bytes; the duplicate descriptor waited on."""
        if writable < 0:
            writable = os.dup(fd)  # the loop refuses a watcher on the transport's own fd
        waiter = self.waiter = self.loop.create_future()
        self.loop.add_writer(writable, _wake, waiter)
        self.send_deadline(True)
        try:
            await waiter
        finally:
            self.loop.remove_writer(writable)
            self.send_deadline(False)
            self.waiter = None
        return writable


class _Borrowed(socket.socket):
    """A socket object over a descriptor the transport owns: detached, never closed, even
    when collected without ``FileSender.lost`` (a loop stopped with connections open)."""

    def __del__(self) -> None:
        self.detach()


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def with_file_bodies(
    app: ASGI3Application, cycle: RequestResponseCycle, sender: FileSender
) -> ASGI3Application:
    """``app`` with a ``send`` that also takes ``http.response.zerocopy`` and ``pathsend``."""

    async def send_file(message: dict[str, Any]) -> None:
        if message["type"] == PATHSEND:
            fd = _open_regular(message["path"])
            if fd < 0:  # gone since the head was sent: no status left to give
                cycle.disconnected = True
                cycle.transport.abort()
                return
            try:
                # What the head announced: a file that grew sends no more (the rest would be
                # read as the next response), one that shrank is cut off (sendfile's EOF).
                length = cycle.expected_content_length
                await _send_file(cycle, sender, fd, 0, length, more_body=False)
            finally:
                os.close(fd)
            return
        file = message["file"]
        fd = file.fileno()
        offset = message.get("offset")
        offset = os.lseek(fd, 0, os.SEEK_CUR) if offset is None else offset
        count = message.get("count")
        count = os.fstat(fd).st_size - offset if count is None else count
        more_body = bool(message.get("more_body", False))
        await _send_file(cycle, sender, fd, offset, count, more_body=more_body)

    async def app_with_files(
        scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        async def sending(message: Any) -> None:
            if message["type"] in EXTENSIONS:
                await send_file(message)
            else:
                await send(message)

        await app(scope, receive, sending)

    return app_with_files


# Non-blocking: a FIFO put where the file was returns at once (a blocking open would wait for a
# writer with the whole event loop); fstat then refuses it.
_OPEN_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK


def _open_regular(path: str) -> int:
    """A descriptor of the regular file at ``path``, or -1 (said in the log)."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        log.warning("file gone before its body was sent: %s", exc.strerror)
        return -1
    if stat.S_ISREG(os.fstat(fd).st_mode):
        return fd
    os.close(fd)
    log.warning("file gone before its body was sent: no longer a regular file")
    return -1


async def _send_file(
    cycle: RequestResponseCycle,
    sender: FileSender,
    fd: int,
    offset: int,
    count: int,
    *,
    more_body: bool,
) -> None:
    if cycle.flow.write_paused and not cycle.disconnected:
        await cycle.flow.drain()
    if cycle.disconnected:
        return
    if not cycle.response_started or cycle.response_complete or cycle.chunked_encoding:
        raise RuntimeError("a file body needs a started response with a Content-Length")
    if count < 0 or count > cycle.expected_content_length:
        raise RuntimeError("Response content longer than Content-Length")
    if cycle.scope["method"] != "HEAD":
        if not await sender.send(fd, offset, count):
            cycle.disconnected = True
            cycle.transport.abort()
            return
        cycle.expected_content_length -= count
    # uvicorn's own bookkeeping ends the response (keep-alive, close, the next request).
    await cycle.send({"type": "http.response.body", "body": b"", "more_body": more_body})
