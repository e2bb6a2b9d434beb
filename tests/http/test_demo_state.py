"""`playgate demo` (what ./scripts/demo runs) revokes at its edge, in memory or with REDIS_URL."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.factories import ROOT
from tests.support.servers import free_port, run_process
from tests.support.state_helpers import wait_for_status


def _banner(log: Path) -> dict[str, str]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        text = log.read_text() if log.exists() else ""
        if "Press Ctrl-C" in text:
            return dict(re.findall(r"^([A-Za-z ]+): (\S+)", text, re.M))
        time.sleep(0.05)
    raise AssertionError(f"the demo did not start:\n{log.read_text()}")


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_demo_revokes_at_its_edge(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env = {"REDIS_URL": request.getfixturevalue("redis_url")} if backend == "redis" else {}
    env["PLAYGATE_REDIS_PREFIX"] = f"demo{time.monotonic_ns()}"
    signer_port, edge_port = free_port(), free_port()
    log = tmp_path / "demo.log"
    argv = [sys.executable, "-m", "playgate.cli", "demo", "--signer-port", str(signer_port)]
    with run_process([*argv, "--edge-port", str(edge_port)], env=env, cwd=ROOT, log=log):
        banner = _banner(log)
        assert banner["State"] == backend
        auth = {"Authorization": f"Bearer {banner['API key']}"}
        issued = httpx.post(
            f"{banner['Signer']}/v1/playback-urls", json={"video_id": "demo"}, headers=auth
        ).json()
        assert httpx.get(issued["url"], follow_redirects=True).status_code == 200
        revoked = httpx.post(
            f"{banner['Signer']}/v1/revocations",
            json={"token_id": issued["token_id"]},
            headers=auth,
        )
        assert revoked.status_code == 201
        resp = wait_for_status(issued["url"], 403)
        assert resp.headers["x-playgate-reason"] == "revoked"
        assert httpx.get(banner["Playback URL"], follow_redirects=True).status_code == 200
