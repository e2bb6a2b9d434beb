"""nginx in front of several validators rides through a validator restart: under load, each
validator in turn is stopped (SIGTERM: it drains) and started again, and no viewer sees a 5xx."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from edge_validator.core.keyring import KeyRing, new_keyring_json
from playgate.demo.origin import create_origin_app
from playgate.nginx.config import EdgeConfig, current_user_if_root, nginx_argv, prepare_prefix
from tests.support import factories
from tests.support.factories import SAMPLES
from tests.support.servers import (
    LOOPBACK,
    free_port,
    require_tool,
    run_process,
    serve_app,
    wait_for_port,
)

pytestmark = pytest.mark.slow


def start_validator(port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "playgate.cli", "serve-validator", "--port", str(port)]
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    wait_for_port(port, proc=proc)
    # The supervisor listens before its worker is ready; a restart is done once it answers.
    deadline = time.monotonic() + 60
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://{LOOPBACK}:{port}/readyz", timeout=2).status_code == 200:
                return proc
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)


@contextlib.contextmanager
def validators(env: dict[str, str], tmp: Path, count: int) -> Iterator[list[list[object]]]:
    """``[port, process]`` pairs; the test replaces processes, every one is stopped at the end."""
    slots: list[list[object]] = []
    try:
        for n in range(count):
            port = free_port()
            slots.append([port, start_validator(port, env, tmp / f"validator-{n}.log")])
        yield slots
    finally:
        for _, proc in slots:
            assert isinstance(proc, subprocess.Popen)
            if proc.poll() is None:
                proc.terminate()
                proc.wait(15)


def test_restarting_each_validator_under_load_costs_no_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nginx = require_tool("nginx")
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    ring_file = tmp_path / "keyring.json"
    ring_file.write_text(new_keyring_json("k1"))

    ring = KeyRing.from_file(ring_file)
    env = {
        **os.environ,
        "PLAYGATE_KEYRING_FILE": str(ring_file),
        "PLAYGATE_TRUSTED_PROXIES": "127.0.0.1/32",
        "PLAYGATE_CLIENT_IP_HEADER": "x-real-ip",
    }
    statuses: Counter[int] = Counter()
    stop = threading.Event()
    with contextlib.ExitStack() as stack:
        origin = stack.enter_context(serve_app(create_origin_app(SAMPLES)))
        slots = stack.enter_context(validators(env, tmp_path, 2))
        port = free_port()
        prefix = tmp_path / "nginx"
        config = EdgeConfig(
            listen=f"{LOOPBACK}:{port}",
            validator_url=f"http://{LOOPBACK}:{slots[0][0]}",
            more_validator_urls=(f"http://{LOOPBACK}:{slots[1][0]}",),
            origin_url=origin,
            prefix=prefix,
            workers="1",
            user=current_user_if_root(),
        )
        prepare_prefix(config)
        stack.enter_context(
            run_process(nginx_argv(nginx, config), port=port, log=tmp_path / "nginx.out")
        )
        edge = f"http://{LOOPBACK}:{port}"
        token = factories.token(ring, ttl=600, token_id="tid-drain")
        url = f"{edge}/t/{token}/videos/demo/hls/v0/seg_000.ts"

        def viewer() -> None:
            with httpx.Client(timeout=10) as client:
                while not stop.is_set():
                    try:
                        statuses[client.get(url).status_code] += 1
                    except httpx.HTTPError:
                        statuses[0] += 1

        viewers = [threading.Thread(target=viewer) for _ in range(4)]
        for t in viewers:
            t.start()
        try:
            time.sleep(1.0)
            for n, slot in enumerate(slots):
                proc = slot[1]
                assert isinstance(proc, subprocess.Popen)
                proc.terminate()  # SIGTERM: stop accepting, finish what is in flight
                proc.wait(15)
                time.sleep(1.0)  # the edge runs on the other validator alone meanwhile
                slot[1] = start_validator(int(str(slot[0])), env, tmp_path / f"validator-{n}.log")
                # The rolling-restart rule (docs/production.md): nginx keeps a failed validator
                # out for fail_timeout (2 s); wait that long before stopping the next one.
                time.sleep(3.0)
        finally:
            stop.set()
            for t in viewers:
                t.join()
    assert sum(statuses.values()) > 100
    assert set(statuses) == {200}, statuses
