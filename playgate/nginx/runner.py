"""Running the nginx edge from a private prefix (``playgate demo --edge nginx``, tests, bench).

nginx runs in the foreground from a temp folder, on a loopback port, and is stopped with its
owner.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from edge_validator.core.cors import CorsPolicy
from edge_validator.core.errors import ConfigurationError

from ..processes import stop_process, wait_for_port
from .config import EdgeConfig, current_user_if_root, nginx_argv, prepare_prefix
from .error_log import pipe_in_thread
from .fast_module import built

ERROR_LOG = "error.log"


def start_nginx(binary: str, config: EdgeConfig) -> subprocess.Popen[bytes]:
    """nginx in the foreground; its stderr (the error log, see the template) is redacted into
    ``<prefix>/error.log`` (``playgate.nginx.error_log``)."""
    proc = subprocess.Popen(
        nginx_argv(binary, config), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert proc.stderr is not None
    pipe_in_thread(proc.stderr, config.prefix / ERROR_LOG)
    return proc


@contextlib.contextmanager
def running_nginx(binary: str, config: EdgeConfig, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """``start_nginx``, wait until ``port`` listens, always stop it."""
    proc = start_nginx(binary, config)
    try:
        wait_for_port(port, proc=proc, host=config.listen.rsplit(":", 1)[0].strip("[]"))
        yield proc
    finally:
        stop_process(proc)


def _fast_module(nginx: str) -> Path | None:
    try:
        return built(nginx)
    except ConfigurationError:
        return None


class NginxEdge:
    def __init__(
        self,
        binary: str,
        listen_host: str,
        port: int,
        validator_url: str,
        origin_url: str,
        cors: CorsPolicy | None = None,
        keyring_file: Path | None = None,
    ):
        self.host, self.port = listen_host, port
        self.prefix = Path(tempfile.mkdtemp(prefix="playgate-nginx-"))
        self.config = EdgeConfig(
            listen=f"{listen_host}:{port}",
            validator_url=validator_url,
            origin_url=origin_url,
            prefix=self.prefix,
            workers="2",
            user=current_user_if_root(),
            cors=cors or CorsPolicy(),
            # The native verifier, with the validators' key ring (None: auth_request only),
            # and its C fast path where this machine can build it (else Lua decides all).
            keyring_file=keyring_file,
            fast_module=_fast_module(binary) if keyring_file is not None else None,
        )
        self.binary = binary
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        prepare_prefix(self.config)
        self.proc = start_nginx(self.binary, self.config)

    async def wait_ready(self, timeout: float = 10.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                output = (self.prefix / ERROR_LOG).read_text(errors="replace")
                raise RuntimeError(f"nginx exited: {output.strip()}")
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection(self.host, self.port)
                writer.close()
                return
            await asyncio.sleep(0.05)
        raise TimeoutError("nginx did not start listening")

    def stop(self) -> None:
        stop_process(self.proc)
        shutil.rmtree(self.prefix, ignore_errors=True)
