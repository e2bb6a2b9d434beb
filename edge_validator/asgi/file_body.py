"""A file already opened and checked, answered whole through the server's ``sendfile``.

ASGI's ``http.response.zerocopy`` extension (https://asgi.readthedocs.io/en/latest/extensions.html)
takes the open file, not its path: what is sent is the file the origin resolved inside the media
root and checked, never a name that could be swapped for a link in between.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import BinaryIO

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

ZEROCOPY = "http.response.zerocopy"


def offers_zero_copy(scope: Scope) -> bool:
    return ZEROCOPY in scope.get("extensions", ())


class ZeroCopyFileResponse(Response):
    """``headers`` hold the file's ``Content-Length``; the file is closed once sent."""

    def __init__(self, file: BinaryIO, status_code: int, headers: Mapping[str, str]) -> None:
        self.file = file
        super().__init__(None, status_code, headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": self.status_code,
                        "headers": self.raw_headers})  # fmt: skip
            count = int(self.headers["content-length"])
            await send({"type": ZEROCOPY, "file": self.file, "offset": 0, "count": count})
        finally:
            self.file.close()
