"""The shield's media requests answered by the server itself, without the ASGI middleware stack.

``playgate serve-validator`` runs the validator app under its own uvicorn protocol
(``playgate.serving``). A GET or HEAD the shield takes (``MediaRoute.takes``, what the
``MediaShortcut`` middleware asks) went through Starlette's app, ``ServerErrorMiddleware``,
``RequestMetrics`` and the shortcut, then through the one-write and zero-copy wrappers, each a
function and a message dictionary per step. Here the protocol runs the same request in its
own task and cycle (uvicorn's: the connection limits, timeouts, keep-alive and pipelining are
untouched) as one coroutine that does what that stack does, by calling the same functions:

- the decision and the file: ``MediaRoute.answer``, i.e. ``shield(scope)``, as the shortcut
  calls it (every check, every denial, every log line is that code);
- a file sent whole (``ZeroCopyFileResponse`` to a GET): its head encoded by the cycle
  (``_Cycle.start``, what ``http.response.start`` runs), written, then the body with the same
  ``_send_file`` the ``http.response.zerocopy`` message reaches, and the file closed;
- any other response (a denial, a redirect, a rewritten playlist, HEAD, Range): sent as an
  ASGI app through the same one-write and zero-copy wrappers as on the stack's way;
- the request metrics: ``MediaRoute.record`` with the status the app sent (500 if none), as
  ``RequestMetrics`` records them; an unexpected error: ``ServerErrorMiddleware``'s handler
  (``internal_error``) answers it when no response began, and the error goes on to uvicorn,
  which logs it and closes the connection, as it did.

``tests/http/test_shield_shortcut.py`` compares this path with the stack's over loopback.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, cast

from uvicorn._types import ASGI3Application

from edge_validator.asgi.file_body import ZeroCopyFileResponse

from .file_sending import FileSender, _send_file, with_file_bodies
from .one_write import with_one_write

if TYPE_CHECKING:
    from starlette.responses import Response

    from edge_validator.asgi.shield import MediaRoute

    from .serving import _Cycle

_START = "http.response.start"


def media_app(cycle: _Cycle, files: FileSender, route: MediaRoute) -> ASGI3Application:
    """The ASGI app uvicorn's cycle runs for one request ``route`` takes."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        started = time.perf_counter()
        status: int | None = None  # the status the app sent: where both layers note it
        try:
            response = await route.answer(scope)
            if response.__class__ is not ZeroCopyFileResponse or scope["method"] != "GET":

                async def timed(message: Any) -> None:
                    nonlocal status
                    if message["type"] == _START:
                        status = message["status"]
                    await send(message)

                wrapped = _wrapped(response, cycle, files)
                await wrapped(scope, receive, timed)
                return
            assert isinstance(response, ZeroCopyFileResponse)
            # What its two messages do through the wrappers: the head (which the one-write
            # wrapper holds until the zero-copy body flushes it), then the file; closed after.
            file = response.file
            try:
                status = response.status_code
                if cycle.flow.write_paused and not cycle.disconnected:
                    await cycle.flow.drain()
                if not cycle.disconnected:
                    raw, shared = response.raw_headers, response.shared
                    if shared is None:
                        head = cycle.start(status, raw)
                    else:  # the file's own headers first, as they were made
                        head = cycle.start_file(status, shared, raw[len(shared) :])
                    count = response.count
                    if not cycle.transport.is_closing():
                        files.write_head(head, count)  # with MSG_MORE: the body follows
                    await _send_file(cycle, files, file.fileno(), 0, count, more_body=False)
            finally:
                file.close()
        except Exception as exc:
            # ServerErrorMiddleware's way: its handler answers (and logs) when no status was
            # sent, and the error goes on to uvicorn.
            refused = await route.failed(scope, exc)
            if status is None:
                wrapped = _wrapped(refused, cycle, files)
                await wrapped(scope, receive, send)
            raise
        finally:
            route.record(scope, started, 500 if status is None else status)

    return app


def _wrapped(response: Response, cycle: _Cycle, files: FileSender) -> ASGI3Application:
    """``response`` as an ASGI app behind the wrappers the protocol puts around every app."""
    return with_file_bodies(with_one_write(cast(ASGI3Application, response), cycle), cycle, files)
