"""Objects from a local folder."""

from __future__ import annotations

import functools
import hashlib
import io
import os
import stat
from email.utils import formatdate
from pathlib import Path
from typing import BinaryIO

import anyio.to_thread
from starlette.datastructures import Headers

from ..core.errors import NotFound
from .base import OriginReply
from .media_types import media_type

# A plain GET under ``playgate serve-validator``: the file is opened and checked in the event
# loop and the server sends it with ``sendfile`` (ASGI ``http.response.zerocopy``,
# playgate/file_sending.py), as nginx does: an open from the page cache costs microseconds and
# sendfile reads the disk in the loop anyway, while a worker-thread trip cost more CPU than all
# the rest of the request (docs/performance.md#origin-shield). Under a server without zero-copy
# a segment or playlist is opened and read whole in one worker-thread trip. Larger objects
# without zero-copy, HEAD and Range requests are streamed by FileResponse, which answers Range
# (206, 416) and HEAD itself.
WHOLE_READ_LIMIT = 8 * 2**20
# Non-blocking: opening a FIFO planted in the root returns at once (then fstat refuses it).
_OPEN_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK


class FileOrigin:
    """``path`` is already judged safe by the validator; checking where the opened file really
    is (links followed) is a second wall."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._prefix = f"{str(self.root).rstrip(os.sep)}{os.sep}"

    async def fetch(self, path: str, headers: Headers, method: str) -> OriginReply:
        if method == "GET" and "range" not in headers:
            return await anyio.to_thread.run_sync(self._read, path)
        return OriginReply(200, {"content-type": media_type(path)}, file=self._locate(path))

    async def open(self, path: str) -> OriginReply:
        """The whole object, opened and checked, for the server to send (zero-copy). Its
        headers are shared by every request for this file version: copy before changing them."""
        file, info = self.opened_file(path)
        headers, head = _whole_file(path, info.st_mtime, info.st_size)
        return OriginReply(200, headers, opened=file, head=head)

    def _locate(self, path: str) -> Path:
        try:
            candidate = (self.root / path.lstrip("/")).resolve()
            found = candidate.is_relative_to(self.root) and candidate.is_file()
        except OSError:  # a name too long for the file system, a loop of links: no such object
            found = False
        if not found:
            raise NotFound("no such object")
        return candidate

    def _read(self, path: str) -> OriginReply:
        """The whole object with FileResponse's validators, or the file when it is large."""
        file, info = self.opened_file(path)
        with file:
            if info.st_size > WHOLE_READ_LIMIT:
                return OriginReply(200, {"content-type": media_type(path)}, file=self._locate(path))
            try:
                content = file.read()
            except OSError:  # unreadable since it was opened
                raise NotFound("no such object") from None
        return OriginReply(200, _validators(path, info), content=content)

    def opened_file(self, path: str) -> tuple[BinaryIO, os.stat_result]:
        """The object opened, and its status: a regular file whose real path is in the root."""
        fd, info = self.opened_fd(path)
        try:
            # Unbuffered: the descriptor is what is sent (or read whole); no read buffer to make.
            return io.FileIO(fd, "r"), info  # what os.fdopen(fd, "rb", buffering=0) returns
        except BaseException:
            os.close(fd)
            raise

    def opened_fd(self, path: str) -> tuple[int, os.stat_result]:
        """``opened_file``'s descriptor, the caller's to close (the server's fast path sends it
        as it is: a file object would cost one more ``fstat``)."""
        name = self._prefix + path.lstrip("/")  # os.path.join(root, ...), without the fspath
        try:
            fd = os.open(name, _OPEN_FLAGS)
        except (OSError, ValueError):  # missing, unreadable, a name too long, a NUL byte
            raise NotFound("no such object") from None
        try:
            info = os.fstat(fd)
            if not (stat.S_ISREG(info.st_mode) and self._inside(fd, name)):
                raise NotFound("no such object")  # a folder, a device, a link out of the root
        except BaseException:
            os.close(fd)
            raise
        return fd, info

    def _inside(self, fd: int, name: str) -> bool:
        """Whether the open file really is in the root: one readlink of the descriptor (the
        file itself, and no lstat per path component); without /proc, its name resolved."""
        try:
            real = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            real = os.path.realpath(name)
        return real.startswith(self._prefix)

    async def close(self) -> None:
        return None


def whole_file_head(path: str, mtime: float, size: int) -> tuple[tuple[bytes, bytes], ...]:
    """The encoded head ``open`` gives a file sent whole (one tuple per file version)."""
    return _whole_file(path, mtime, size)[1]


def _validators(path: str, info: os.stat_result) -> dict[str, str]:
    """The headers FileResponse sends, so a player's conditional request still works."""
    return {"content-type": media_type(path), **_stat_validators(info.st_mtime, info.st_size)}


@functools.lru_cache(maxsize=4096)
def _whole_file(
    path: str, mtime: float, size: int
) -> tuple[dict[str, str], tuple[tuple[bytes, bytes], ...]]:
    """The headers of a file sent whole, and the same encoded for the wire, once per file
    version (its path, modification time and size): shared, never changed."""
    headers = {
        "content-type": media_type(path),
        **_stat_validators(mtime, size),
        "content-length": str(size),
    }
    return headers, tuple(
        (name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()
    )


@functools.lru_cache(maxsize=4096)
def _stat_validators(mtime: float, size: int) -> dict[str, str]:
    # Computed once per file version, not per request (formatdate and md5 cost more than
    # the open). Callers copy the dict.
    tag = hashlib.md5(f"{mtime}-{size}".encode(), usedforsecurity=False)
    return {
        "last-modified": formatdate(mtime, usegmt=True),
        "etag": f'"{tag.hexdigest()}"',
        "accept-ranges": "bytes",
    }
