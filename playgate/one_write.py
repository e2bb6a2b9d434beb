"""A response head and its body in one ``send()``: uvicorn writes them separately.

uvicorn's httptools protocol writes the head on ``http.response.start`` and the body on
``http.response.body``, and uvloop sends each write at once: two system calls per response on
a loopback or a real socket, and the client often woken twice. For a small answer (a signed
URL, a validator's decision) that second system call costs more than the Python around it.

``with_one_write`` holds the head that uvicorn writes and hands it over with the first body
bytes. Ordering is kept: a held head is written before anything else leaves (a file body, a
message this does not know), and when the app ends with it still held (an app that failed
after starting its response), so the client sees what it saw before. HEAD responses, which
have no body to join, are not held. A streamed body (the shield relaying an origin) sends its
head with its first chunk: the client could do nothing with the head alone.
"""

from __future__ import annotations

from typing import Any

from uvicorn._types import (
    ASGI3Application,
    ASGIReceiveCallable,
    ASGISendCallable,
    ASGISendEvent,
    Scope,
)
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

START = "http.response.start"
BODY = "http.response.body"


class _Held:
    """Stands in for the cycle's transport while uvicorn writes a response head: keeps it."""

    __slots__ = ("head", "transport")

    def __init__(self, transport: object) -> None:
        self.transport = transport
        self.head = b""

    def write(self, data: bytes) -> None:
        self.head += data

    def flush(self) -> None:
        head, self.head = self.head, b""
        if head:
            self.transport.write(head)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> Any:
        # Anything else asked meanwhile (uvicorn's send may wait for the socket to drain, and
        # an app may receive in another task) is the transport's.
        return getattr(self.transport, name)


class _Joined:
    """Stands in for the cycle's transport while uvicorn writes the first body bytes."""

    __slots__ = ("held", "transport")

    def __init__(self, held: _Held) -> None:
        self.held = held
        self.transport = held.transport

    def write(self, data: bytes) -> None:
        head, self.held.head = self.held.head, b""
        self.transport.write(head + data)  # type: ignore[attr-defined]

    def close(self) -> None:  # uvicorn closes a connection that is not kept alive
        self.held.flush()
        self.transport.close()  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


def with_one_write(app: ASGI3Application, cycle: RequestResponseCycle) -> ASGI3Application:
    """``app`` whose response head leaves with its first body bytes."""
    if cycle.scope["method"] == "HEAD":
        return app

    async def app_one_write(
        scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        real = cycle.transport
        held = _Held(real)

        async def sending(message: ASGISendEvent) -> None:
            kind = message["type"]
            if kind == START:
                cycle.transport = held  # type: ignore[assignment]
                try:
                    await send(message)
                finally:
                    cycle.transport = real
                return
            if held.head and kind == BODY:
                cycle.transport = _Joined(held)  # type: ignore[assignment]
                try:
                    await send(message)
                finally:
                    cycle.transport = real
                    if held.head:  # uvicorn wrote nothing (the client is gone)
                        _flush(held, cycle)
                return
            if held.head:
                _flush(held, cycle)
            await send(message)

        try:
            await app(scope, receive, sending)
        finally:
            if held.head:
                _flush(held, cycle)

    return app_one_write


def _flush(held: _Held, cycle: RequestResponseCycle) -> None:
    if cycle.disconnected or cycle.transport.is_closing():
        held.head = b""
    else:
        held.flush()
