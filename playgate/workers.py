"""``playgate serve-signer`` / ``serve-validator``: N uvicorn workers under one supervisor.

Each worker serves with the limits of ``playgate.serving`` (head and body sizes, timeouts,
connection cap), read from the environment in the worker.

- ``--workers N`` (default 1): uvicorn's supervisor runs N worker processes, replaces any that
  die, and is always used (even for one worker) so that signals mean the same thing at every N.
  Each worker has its own listening socket, all bound to the port with ``SO_REUSEPORT`` (nginx's
  ``listen ... reuseport``): the kernel spreads new connections over the workers by a hash of
  their addresses. On one shared socket, the worker that woke first accepted every connection
  waiting (libuv accepts until the queue is empty), so one worker could hold most of a burst of
  keep-alive connections while the other idled (docs/performance.md#origin-shield). The
  supervisor keeps the sockets: a worker that dies is replaced on its own socket, and the
  connections waiting there are served by the replacement. The worker count is fixed
  (``SIGTTIN``/``SIGTTOU`` are ignored). Each validator worker keeps its own revocation view.
- ``SIGHUP``: every worker re-reads its key ring file and swaps in a new Verifier (validator) or
  signing ring (signer) between two requests; nothing restarts, no request fails. A ring that
  does not load is logged and the running one kept.
- ``SIGTERM``/``SIGINT``: workers stop accepting, finish in-flight requests, then exit.
- Metrics: every worker writes to ``PROMETHEUS_MULTIPROC_DIR`` (a private temp folder made
  here unless the operator set one), and ``/metrics`` sums them (``edge_validator.metrics``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator

from starlette.applications import Starlette

log = logging.getLogger("playgate.serving")
VALIDATOR_FACTORY = "playgate.workers:validator_app"
SIGNER_FACTORY = "playgate.workers:signer_app"
MAX_WORKERS = 64
PROTOCOL = "playgate.serving:GuardedHttpToolsProtocol"


@contextlib.contextmanager
def metrics_dir() -> Iterator[str]:
    """The operator's PROMETHEUS_MULTIPROC_DIR, else a private one removed at exit.

    Set before any worker starts (prometheus-client picks its storage when first imported)."""
    from edge_validator.metrics import MULTIPROC_DIR

    given = os.environ.get(MULTIPROC_DIR)
    if given:
        yield given
        return
    path = tempfile.mkdtemp(prefix="playgate-metrics-")
    os.environ[MULTIPROC_DIR] = path
    try:
        yield path
    finally:
        os.environ.pop(MULTIPROC_DIR, None)
        shutil.rmtree(path, ignore_errors=True)


def listening_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` sockets bound to ``host:port``, one per worker; with more than one, all with
    ``SO_REUSEPORT`` (only sockets of the same user can join the port). Port 0: the others
    join the port the first one got."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            if count > 1:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def serve(factory: str, host: str, port: int, workers: int) -> int:
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors.multiprocess import Multiprocess, Process

    class Supervisor(Multiprocess):
        """uvicorn's supervisor, but each worker on its own socket (``slots[i]`` for worker
        ``i``, kept across restarts), and SIGHUP reloads settings inside the workers (see
        above) instead of replacing them."""

        def __init__(self, config: uvicorn.Config, slots: list[socket.socket]) -> None:
            super().__init__(config, sockets=slots)
            self.slots = slots

        def init_processes(self) -> None:
            for sock in self.slots:
                self.processes.append(self._start(sock))

        def _start(self, sock: socket.socket) -> Process:
            process = Process(self.config, [sock])
            process.start()
            return process

        def keep_subprocess_alive(self) -> None:
            # uvicorn's, replacing a worker on its own socket.
            for idx, process in enumerate(self.processes):
                if self.should_exit.is_set():
                    return
                if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                    continue
                process.kill()  # hung, or dead already
                process.join()
                if process.exitcode == STARTUP_FAILURE:
                    # It failed before serving: the app or settings are broken, and would be
                    # at every restart.
                    log.error("worker [%s] failed to start, stopping", process.pid)
                    self.should_exit.set()
                    return
                log.info("worker [%s] died, replacing it", process.pid)
                self.processes[idx] = self._start(self.slots[idx])

        def handle_hup(self) -> None:
            for process in self.processes:
                pid = process.process.pid
                if pid is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGHUP)

        def handle_ttin(self) -> None:
            log.warning("SIGTTIN ignored: the worker count is fixed (--workers)")

        def handle_ttou(self) -> None:
            log.warning("SIGTTOU ignored: the worker count is fixed (--workers)")

    from .serving import ServerLimits

    limits = ServerLimits.from_env(os.environ)  # a bad limit: one line here, before any worker
    with metrics_dir():
        config = uvicorn.Config(
            factory,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            # By name: the config travels to spawned workers, which set the class's limits
            # (_guard_connections) before the first connection.
            http=PROTOCOL,
            ws="none",
            timeout_keep_alive=int(limits.keep_alive_timeout),
            # proxy_headers off: the validator decides itself which forwarding headers to
            # trust. access_log off: uvicorn's access line holds the path, hence the token;
            # the validator logs token ids instead. log_config None: the workers configure
            # PlayGate's own logging (configure_logging), never uvicorn's defaults.
            proxy_headers=False,
            access_log=False,
            server_header=False,
            log_config=None,
        )
        try:
            slots = listening_sockets(host, port, workers)
        except OSError as exc:  # taken since the CLI's check
            log.error("cannot listen on %s:%d: %s", host, port, exc.strerror)
            return STARTUP_FAILURE
        name = slots[0].getsockname()
        log.info("listening on %s:%d, %d worker(s)", name[0], name[1], workers)
        try:
            Supervisor(config, slots).run()
        finally:
            for sock in slots:
                sock.close()
    return 0


def on_sighup(reload: Callable[[], object]) -> None:
    """Run ``reload`` on SIGHUP, in the event loop (between requests). Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        return
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload)


def validator_app() -> Starlette:
    """Factory run in each validator worker."""
    from edge_validator.asgi.app import create_app
    from edge_validator.settings import ValidatorSettings

    from .logs import configure_logging

    configure_logging()
    _guard_connections()
    return create_app(ValidatorSettings.from_env(), on_started=_install_reload)


def signer_app() -> Starlette:
    """Factory run in each signer worker."""
    from signer.app import create_app
    from signer.settings import SignerSettings

    from .logs import configure_logging

    configure_logging()
    _guard_connections()
    return create_app(SignerSettings.from_env(), on_started=_install_reload)


def _guard_connections() -> None:
    """This worker's connection limits (PLAYGATE_MAX_CONNECTIONS...), within its file limit."""
    from .serving import GuardedHttpToolsProtocol, ServerLimits

    GuardedHttpToolsProtocol.limits = ServerLimits.from_env(os.environ).within_file_limit()


def _install_reload(reload: Callable[[], object]) -> None:
    on_sighup(reload)
