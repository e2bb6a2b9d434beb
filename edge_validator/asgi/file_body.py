"""A file already opened and checked, answered whole through the server's ``sendfile``.

ASGI's ``http.response.zerocopy`` extension (https://asgi.readthedocs.io/en/latest/extensions.html)
takes the open file, not its path: what is sent is the file the origin resolved inside the media
root and checked, never a name that could be swapped for a link in between.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import BinaryIO

from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

ZEROCOPY = "http.response.zerocopy"


class ZeroCopyFileResponse(Response):
    """``raw_headers`` hold the file's ``Content-Length``; the file is closed once sent.

    Built without ``Response.__init__``, which renders a body and scans the headers for a
    length and a type this response always has: the head comes encoded (``from_headers``
    encodes one given as text). ``headers``
    (Starlette's view of the head, to add a cookie or a renewal) still works."""

    def __init__(
        self,
        file: BinaryIO,
        status_code: int,
        raw_headers: list[tuple[bytes, bytes]],
        count: int,
        shared: tuple[tuple[bytes, bytes], ...] | None = None,
    ) -> None:
        """A head already encoded (lower-case names), ``count`` bytes of ``file`` (its
        ``Content-Length``, which ``raw_headers`` hold). ``shared``: the file's own headers
        that ``raw_headers`` begins with, one tuple per file version (origins/files.py), which
        the server checks and encodes once (``playgate.serving._Cycle.start_file``)."""
        self.file = file
        self.status_code = status_code
        self.count = count
        self.body = b""
        self.background = None
        self.raw_headers = raw_headers
        self.shared = shared

    @property
    def headers(self) -> MutableHeaders:
        # The head may change from here on (a cookie, a renewal): no longer known to begin with
        # ``shared``, it is encoded whole.
        self.shared = None
        return super().headers

    @classmethod
    def from_headers(
        cls, file: BinaryIO, status_code: int, headers: Mapping[str, str]
    ) -> ZeroCopyFileResponse:
        """The same response from headers as text, ``Content-Length`` among them."""
        raw_headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in headers.items()
        ]
        return cls(file, status_code, raw_headers, int(headers["content-length"]))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": self.status_code,
                        "headers": self.raw_headers})  # fmt: skip
            await send({"type": ZEROCOPY, "file": self.file, "offset": 0, "count": self.count})
        finally:
            self.file.close()
