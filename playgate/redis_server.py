"""A real redis-server (and a real 3-node Redis Cluster) on loopback free ports, for tests,
benchmarks and local trials.

Persistence is on (append-only file, fsync every second) like production should be, so a stop and a
start keep the data: fault tests rely on that.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from .processes import LOOPBACK, free_port, require_tool, stop_process, wait_for_port


class RedisServer:
    def __init__(self, workdir: Path, port: int | None = None, *extra: str) -> None:
        self.binary = require_tool("redis-server")
        self.port = port or free_port()
        self.workdir = workdir
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def start(self) -> None:
        argv = [
            self.binary,
            "--bind", LOOPBACK,
            "--port", str(self.port),
            "--dir", str(self.workdir),
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--protected-mode", "no",
            "--logfile", str(self.workdir / "redis.log"),
            *self.extra,
        ]  # fmt: skip
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_for_port(self.port, proc=self.proc)

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None


@contextlib.contextmanager
def redis_server(*extra: str) -> Iterator[RedisServer]:
    with tempfile.TemporaryDirectory(prefix="playgate-redis-") as tmp:
        server = RedisServer(Path(tmp), None, *extra)
        server.start()
        try:
            yield server
        finally:
            server.stop()


@contextlib.contextmanager
def redis_cluster(nodes: int = 3) -> Iterator[list[RedisServer]]:
    """``nodes`` primaries made with --cluster-enabled and ``redis-cli --cluster create``."""
    cli = require_tool("redis-cli")
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="playgate-cluster-")))
        servers = []
        for i in range(nodes):
            (tmp / str(i)).mkdir()
            server = RedisServer(
                tmp / str(i),
                _cluster_port(),
                "--cluster-enabled", "yes",
                "--cluster-node-timeout", "2000",
            )  # fmt: skip
            server.start()
            stack.callback(server.stop)
            servers.append(server)
        addresses = [f"{LOOPBACK}:{s.port}" for s in servers]
        subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=30,
        )
        _wait_cluster_ok(cli, servers)
        yield servers


def _cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is a valid port too."""
    for _ in range(200):
        port = free_port()
        if port < 55000:
            with contextlib.suppress(OSError), socket.socket() as probe:
                probe.bind((LOOPBACK, port + 10000))
                return port
    raise RuntimeError("no free port pair for a cluster node")


def _wait_cluster_ok(cli: str, servers: list[RedisServer]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        states = [
            subprocess.run(
                [cli, "-h", LOOPBACK, "-p", str(s.port), "cluster", "info"],
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout
            for s in servers
        ]
        if all("cluster_state:ok" in st for st in states):
            return
        time.sleep(0.1)
    raise TimeoutError("the Redis Cluster did not reach cluster_state:ok")


@contextlib.contextmanager
def redis_sentinel(primary: RedisServer, service: str = "playgate") -> Iterator[str]:
    """A real Sentinel (``redis-server --sentinel``) monitoring ``primary``; yields host:port."""
    binary = require_tool("redis-server")
    with tempfile.TemporaryDirectory(prefix="playgate-sentinel-") as tmp:
        port = free_port()
        conf = Path(tmp) / "sentinel.conf"
        conf.write_text(
            f"bind {LOOPBACK}\nport {port}\ndir {tmp}\nprotected-mode no\n"
            f"sentinel monitor {service} {LOOPBACK} {primary.port} 1\n"
            f"sentinel down-after-milliseconds {service} 2000\n"
        )
        proc = subprocess.Popen(
            [binary, str(conf), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        try:
            wait_for_port(port, proc=proc)
            yield f"{LOOPBACK}:{port}"
        finally:
            stop_process(proc)
