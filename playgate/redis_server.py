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
from collections.abc import Callable, Iterator
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
def redis_replica(primary: RedisServer) -> Iterator[RedisServer]:
    """A replica of ``primary``, returned once its replication link is up."""
    with redis_server("--replicaof", LOOPBACK, str(primary.port)) as replica:
        cli = require_tool("redis-cli")
        _wait_for(
            lambda: "master_link_status:up" in _cli(cli, replica.port, "info", "replication"),
            "the replica did not connect to its primary",
        )
        yield replica


@contextlib.contextmanager
def redis_sentinel(primary: RedisServer, service: str = "playgate") -> Iterator[str]:
    """A real Sentinel (``redis-server --sentinel``) monitoring ``primary``; yields host:port."""
    with redis_sentinels(primary, service, count=1, quorum=1) as addresses:
        yield addresses[0]


@contextlib.contextmanager
def redis_sentinels(
    primary: RedisServer, service: str = "playgate", *, count: int = 3, quorum: int = 2
) -> Iterator[list[str]]:
    """``count`` real Sentinels monitoring ``primary``; yields their host:port list once each
    one knows the others (with ``count`` > 1) and the primary's replicas."""
    binary = require_tool("redis-server")
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="playgate-sentinel-")))
        ports = []
        for i in range(count):
            port = free_port()
            conf = tmp / f"sentinel-{i}.conf"
            conf.write_text(
                f"bind {LOOPBACK}\nport {port}\ndir {tmp}\nprotected-mode no\n"
                f"sentinel monitor {service} {LOOPBACK} {primary.port} {quorum}\n"
                f"sentinel down-after-milliseconds {service} 2000\n"
                f"sentinel failover-timeout {service} 10000\n"
            )
            proc = subprocess.Popen(
                [binary, str(conf), "--sentinel"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
            )
            stack.callback(stop_process, proc)
            wait_for_port(port, proc=proc)
            ports.append(port)
        if count > 1:
            cli = require_tool("redis-cli")
            info = _cli(cli, primary.port, "info", "replication")
            replicas = int(info.split("connected_slaves:")[1].split()[0])
            _wait_for(
                lambda: all(_knows(cli, p, service, count - 1, replicas) for p in ports),
                "the sentinels did not discover each other and the replicas",
            )
        yield [f"{LOOPBACK}:{port}" for port in ports]


def _knows(cli: str, port: int, service: str, sentinels: int, replicas: int) -> bool:
    """Does the sentinel on ``port`` know that many other sentinels and replicas?"""
    known_sentinels = _cli(cli, port, "sentinel", "sentinels", service).count("runid")
    known_replicas = _cli(cli, port, "sentinel", "replicas", service).count("runid")
    return known_sentinels >= sentinels and known_replicas >= replicas


def _cli(cli: str, port: int, *command: str) -> str:
    return subprocess.run(
        [cli, "-h", LOOPBACK, "-p", str(port), *command],
        capture_output=True,
        text=True,
        timeout=5,
    ).stdout


def _wait_for(ready: Callable[[], bool], failure: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(failure)
        time.sleep(0.1)
