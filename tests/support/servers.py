"""Real servers for tests: uvicorn in a thread or any program in a subprocess, on loopback.

Every server binds 127.0.0.1 on a free port and is stopped when its context exits. The process
helpers are the product's own (``playgate.processes``), shared with the demo and the benches.
"""

from __future__ import annotations

import socket

import httpx

from playgate.processes import (
    LOOPBACK,
    free_port,
    require_tool,
    run_process,
    serve_app,
    wait_for_port,
)

__all__ = [
    "LOOPBACK",
    "free_port",
    "get",
    "raw_request",
    "require_tool",
    "run_process",
    "serve_app",
    "wait_for_port",
]


def get(url: str, **kwargs: object) -> httpx.Response:
    return httpx.get(url, timeout=10, **kwargs)  # type: ignore[arg-type]


def raw_request(base_url: str, head: bytes, timeout: float = 10.0) -> tuple[int, bytes]:
    """Send raw request bytes (for targets and headers no client library would send).

    Returns the status code and the whole response; the request should ask Connection: close.
    """
    host, port = httpx.URL(base_url).host, httpx.URL(base_url).port
    assert port is not None
    with socket.create_connection((host, port), timeout) as sock:
        sock.sendall(head)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    response = b"".join(chunks)
    return int(response.split(b" ", 2)[1]), response
