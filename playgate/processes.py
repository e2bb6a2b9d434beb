"""Servers on loopback, started and always stopped: nginx and uvicorn in the demo, and the
servers the tests and benchmarks run."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from .serving import ServerLimits, uvicorn_config

LOOPBACK = "127.0.0.1"


def require_tool(name: str) -> str:
    """The path of a program PlayGate runs; fails loudly (never skips) when it is missing."""
    path = shutil.which(name) or (
        f"/usr/sbin/{name}" if os.access(f"/usr/sbin/{name}", os.X_OK) else None
    )
    if path is None:
        raise FileNotFoundError(f"{name} is required; ./scripts/install installs it")
    return path


def clock_offset_env(seconds: int) -> dict[str, str]:
    """Environment that sets a child's wall clock ``seconds`` off (libfaketime, preloaded
    straight into the child: the ``faketime`` wrapper would be a parent that a stop leaves
    orphaned). Monotonic clocks stay real, so timers and timeouts behave."""
    require_tool("faketime")  # the Debian package that ships the library
    found = sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))
    if not found:
        raise FileNotFoundError("libfaketime.so.1 is required; ./scripts/install installs it")
    return {
        "LD_PRELOAD": str(found[0]),
        "FAKETIME": f"{seconds:+d}s",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }


def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    """Ask politely (SIGTERM), then insist (SIGKILL) after ``timeout``; always reap it."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def bind(host: str, preferred: int) -> socket.socket:
    """A listening-ready socket on ``preferred`` if free (0 means any), else on any free port."""
    for port in (preferred, 0) if preferred else (0,):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            # Listening at once: with SO_REUSEADDR two processes can both *bind* a preferred
            # port (two demos at once) and the second would fail only later, in listen().
            sock.listen(2048)
        except OSError:
            sock.close()
            continue
        return sock
    raise OSError("no free port")


_HANDED_OUT: set[int] = set()


def free_port(host: str = LOOPBACK, preferred: int = 0) -> int:
    """A port another program can bind now: ``preferred`` when free, else any free one.

    Any free one is never a port handed out before in this process: the kernel may give a
    just-closed port again, so two ``free_port()`` calls made before either server binds
    could collide (an nginx proxying to its own port loops until its connections run out)."""
    for _ in range(100):
        with bind(host, preferred) as sock:
            port = int(sock.getsockname()[1])
        if port == preferred or port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port
    raise OSError("no free port not handed out before")


def wait_for_port(
    port: int,
    timeout: float = 15.0,
    proc: subprocess.Popen[bytes] | None = None,
    host: str = LOOPBACK,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection((host, port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on port {port} after {timeout} s")


@contextlib.contextmanager
def serve_app(app: ASGIApp, limits: ServerLimits | None = None) -> Iterator[str]:
    """Run ``app`` under a real uvicorn server in a thread on loopback; yield its base URL."""
    sock = bind(LOOPBACK, 0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(app, limits, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        yield f"http://{LOOPBACK}:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@contextlib.contextmanager
def run_process(
    argv: Sequence[str],
    *,
    port: int | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    log: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a program, wait for ``port`` to listen, and always stop it."""
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        list(argv), env={**os.environ, **(env or {})}, cwd=cwd, stdout=out, stderr=subprocess.STDOUT
    )
    try:
        if port is not None:
            wait_for_port(port, proc=proc)
        yield proc
    finally:
        stop_process(proc)
        if log:
            out.close()  # type: ignore[union-attr]
