"""What every origin answers: a status, headers, and a body as a stream or a local file."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

import anyio
from starlette.concurrency import iterate_in_threadpool
from starlette.datastructures import Headers

from ..core.errors import BadManifest

Body = AsyncIterator[bytes] | Iterator[bytes]


@dataclass
class OriginReply:
    """An origin's answer, as data: ``content`` in memory, ``file`` on disk (served with Range
    and HEAD support), ``opened``: a file already opened and checked, sent whole (zero-copy, the
    server's ``sendfile``; its ``Content-Length`` is in ``headers``), or ``body`` streamed
    through; none: an empty body. ``close`` releases the upstream connection."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None
    file: Path | None = None
    opened: BinaryIO | None = None
    body: Body | None = None
    close: Callable[[], Awaitable[None]] | None = None
    # ``headers`` already encoded for the wire, lower-case names (a file sent whole: encoded
    # once per file version and shared, never changed), or None.
    head: tuple[tuple[bytes, bytes], ...] | None = None

    async def read(self, limit: int) -> bytes:
        """The whole body, at most ``limit`` bytes (else BadManifest); releases the upstream."""
        try:
            if self.content is not None:
                data = self.content
            elif self.file is not None:
                data = await anyio.Path(self.file).read_bytes()
            elif self.body is None:
                data = b""
            else:
                data = await _collect(self.body, limit)
        finally:
            await self.release()
        if len(data) > limit:
            raise BadManifest("the manifest is too large")
        return data

    async def release(self) -> None:
        if self.close is not None:
            close, self.close = self.close, None
            await close()


async def _collect(body: Body, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0

    def add(chunk: bytes) -> None:
        nonlocal size
        size += len(chunk)
        if size > limit:
            raise BadManifest("the manifest is too large")
        chunks.append(chunk)

    # A sync body (S3) is read in a worker thread, never on the event loop.
    stream = body if isinstance(body, AsyncIterator) else iterate_in_threadpool(body)
    async for chunk in stream:
        add(chunk)
    return b"".join(chunks)


class Origin(Protocol):
    async def fetch(self, path: str, headers: Headers, method: str) -> OriginReply: ...

    async def close(self) -> None: ...
