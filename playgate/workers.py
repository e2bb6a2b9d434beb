"""``playgate serve-signer`` / ``serve-validator``: N uvicorn workers under one supervisor.

Each worker serves with the limits of ``playgate.serving`` (head and body sizes, timeouts,
connection cap), read from the environment in the worker.

- ``--workers N`` (default 1): uvicorn's supervisor runs N worker processes on one listening
  socket, replaces any that die, and is always used (even for one worker) so that signals mean
  the same thing at every N. Each validator worker keeps its own revocation view.
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


def serve(factory: str, host: str, port: int, workers: int) -> int:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    class Supervisor(Multiprocess):
        """uvicorn's supervisor, but SIGHUP reloads settings inside the workers (see above)
        instead of replacing them."""

        def handle_hup(self) -> None:
            for process in self.processes:
                pid = process.process.pid
                if pid is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGHUP)

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
        sock = config.bind_socket()
        try:
            Supervisor(config, sockets=[sock]).run()
        finally:
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
