"""The subscription's replies, read straight off its socket with hiredis.

redis-py connects, authenticates and sends the commands of the subscription (any topology:
one server, Sentinel, Cluster; TLS), but its generic read path costs a timeout context, a
parser round and a push-handler call (with a logger look-up) per message: at 100 revocations
a second that was most of a validator's steady sync CPU. This reader takes every reply the
socket holds in one read and one hiredis parse; nothing is decoded but the notices.
"""

from __future__ import annotations

import asyncio
from typing import Any

import hiredis

from ..core.errors import StoreUnavailable

# Bytes taken per read: hundreds of notices (each about 150 bytes).
_READ_SIZE = 65536


class SubscriptionReader:
    """Replies on a redis-py pub/sub connection, read by this process, not by redis-py.

    Made right after SUBSCRIBE was sent and before any reply to it was read, so redis-py's own
    parser holds nothing of the subscription (it only read the replies of the handshake).
    """

    def __init__(self, connection: Any) -> None:
        # redis-py's asyncio connections keep their streams as ``_reader`` and ``_writer``
        # (checked with 8.1): a version without them fails here, loudly, not by reading nothing.
        stream = getattr(connection, "_reader", None)
        if not isinstance(stream, asyncio.StreamReader):
            raise StoreUnavailable("redis pub/sub: this redis-py keeps no stream to read from")
        self._stream = stream
        writer = getattr(connection, "_writer", None)
        transport = writer.transport if isinstance(writer, asyncio.StreamWriter) else None
        # A socket's transport reads and writes (asyncio types it as the writing half).
        self._transport = transport if isinstance(transport, asyncio.ReadTransport) else None
        # Bytes, no decoding: a notice is JSON (json.loads takes bytes), the rest is compared.
        self._parser = hiredis.Reader()
        # Replies read with the subscription's confirmation that came after it.
        self._held: list[Any] = []

    async def confirmed(self, timeout: float) -> None:
        """Wait for the confirmation of SUBSCRIBE: only then is nothing published later
        missed. Bounded by the caller; ``timeout`` is one read's."""
        while True:
            replies = await self.replies(timeout)
            for i, reply in enumerate(replies):
                if isinstance(reply, list) and reply and reply[0] == b"subscribe":
                    self._held = replies[i + 1 :]
                    return

    async def gather(self, seconds: float) -> None:
        """Let replies pile up in the socket for ``seconds``: the event loop is not woken by
        each one (asyncio reads a socket as soon as it can, whoever awaits the stream)."""
        if self._transport is None:
            await asyncio.sleep(seconds)
            return
        self._transport.pause_reading()
        try:
            await asyncio.sleep(seconds)
        finally:
            if not self._transport.is_closing():
                self._transport.resume_reading()

    def _parsed(self) -> list[Any]:
        replies = []
        try:
            while (reply := self._parser.gets()) is not False:
                if isinstance(reply, hiredis.ReplyError):  # e.g. an ACL refusing SUBSCRIBE
                    raise StoreUnavailable(f"redis pub/sub: {reply}")
                replies.append(reply)
        except hiredis.ProtocolError as exc:
            raise StoreUnavailable(f"redis pub/sub: {exc}") from exc
        return replies

    async def replies(self, timeout: float) -> list[Any]:
        """Every complete reply held or arriving within ``timeout`` seconds ([]: none)."""
        replies, self._held = self._held + self._parsed(), []
        if replies:
            return replies
        try:
            async with asyncio.timeout(timeout):
                while not replies:
                    data = await self._stream.read(_READ_SIZE)
                    if not data:
                        raise StoreUnavailable("redis pub/sub: the server closed the connection")
                    self._parser.feed(data)
                    replies = self._parsed()
        except TimeoutError:
            return []  # a part of a reply stays in the parser for the next read
        except OSError as exc:
            raise StoreUnavailable(f"redis pub/sub: {exc}") from exc
        return replies
