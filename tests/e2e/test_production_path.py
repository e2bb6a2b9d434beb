"""docs/production.md, followed as written: its *tested* blocks run in bash with only folders,
ports, Redis and the origin replaced, and the services start from infra/systemd's own ExecStart
lines; a signed URL then plays over HTTPS through nginx and two validators."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from playgate.demo.origin import create_origin_app
from tests.support.factories import ROOT, SAMPLES
from tests.support.servers import free_port, require_tool, run_process, serve_app

pytestmark = pytest.mark.slow
DOC = ROOT / "docs" / "production.md"
UNITS = ROOT / "infra" / "systemd"
_BLOCK = re.compile(r"<!-- tested: ([a-z-]+) -->\n```bash\n(.*?)```", re.S)


def doc_blocks() -> dict[str, str]:
    return dict(_BLOCK.findall(DOC.read_text()))


class Machine:
    """The server's paths and ports, replaced by temporary ones."""

    def __init__(self, root: Path, origin: str, redis_url: str) -> None:
        self.root = root
        self.ports = {name: free_port() for name in ("signer", "v1", "v2", "edge")}
        self.replacements = [
            ("/etc/playgate", str(root / "etc/playgate")),
            ("/var/lib/playgate-edge", str(root / "var/lib/playgate-edge")),
            ("/var/lib/playgate-signer", str(root / "var/lib/playgate-signer")),
            ("/opt/playgate/venv/bin/playgate", str(Path(sys.executable).with_name("playgate"))),
            ("127.0.0.1:8080", f"127.0.0.1:{self.ports['signer']}"),
            ("--port 8080", f"--port {self.ports['signer']}"),
            ("127.0.0.1:8081", f"127.0.0.1:{self.ports['v1']}"),
            ("127.0.0.1:8082", f"127.0.0.1:{self.ports['v2']}"),
            ("0.0.0.0:443", f"127.0.0.1:{self.ports['edge']}"),
            ("http://10.0.0.5:80", origin),
            ("redis://127.0.0.1:6379/0", redis_url),
        ]

    def local(self, text: str) -> str:
        for old, new in self.replacements:
            text = text.replace(old, new)
        return text

    def bash(self, script: str, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", self.local(script)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, **(env or {})},
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def env_file(self, name: str) -> dict[str, str]:
        path = self.root / "etc/playgate" / name
        pairs = (ln.split("=", 1) for ln in path.read_text().splitlines() if "=" in ln)
        return {k: v for k, v in pairs}

    def unit_commands(
        self, unit: str, instance: str = ""
    ) -> tuple[list[list[str]], list[str], list[list[str]]]:
        """(ExecStartPre argvs, ExecStart argv, ExecStop argvs), as systemd would run them."""
        pre: list[list[str]] = []
        start: list[str] = []
        stop: list[list[str]] = []
        for line in (UNITS / unit).read_text().splitlines():
            key, _, value = line.partition("=")
            if key == "ExecStop":
                stop.append(shlex.split(self.local(value.replace("%i", instance))))
            if key in ("ExecStartPre", "ExecStart"):
                argv = shlex.split(self.local(value.replace("%i", instance)))
                if os.geteuid() == 0 and argv[:2] == ["/bin/sh", "-c"] and "nginx -" in argv[2]:
                    # The unit runs nginx as User=playgate-edge; as root here, keep workers root
                    # so that they can use the private temporary prefix.
                    argv[2] = argv[2].replace(" -e stderr", " -e stderr -g 'user root;'")
                (pre.append(argv) if key == "ExecStartPre" else start.extend(argv))
        return pre, start, stop


@contextlib.contextmanager
def service(
    machine: Machine, unit: str, env_name: str, port: int, instance: str = ""
) -> Iterator[None]:
    env = {**machine.env_file(env_name)}
    metrics = machine.root / "run" / (unit + instance)
    metrics.mkdir(parents=True)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)  # the unit's RuntimeDirectory
    for line in (UNITS / unit).read_text().splitlines():
        if line.startswith("StateDirectory="):  # systemd creates it, owned by the unit's user
            (machine.root / "var/lib" / line.split("=", 1)[1]).mkdir(parents=True)
    pre, start, stop = machine.unit_commands(unit, instance)
    for argv in pre:
        done = subprocess.run(
            argv, env={**os.environ, **env}, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, (argv, done.stderr)
    log = machine.root / f"{unit}{instance}.log"
    with run_process(start, port=port, env=env, log=log):
        try:
            yield
        finally:
            for argv in stop:  # as systemd does before signalling what is left
                subprocess.run(argv, capture_output=True, timeout=30, check=False)


def test_production_path_plays_over_https(tmp_path: Path, redis_url: str) -> None:
    require_tool("nginx")
    require_tool("openssl")
    require_tool("curl")
    blocks = doc_blocks()
    assert list(blocks) == ["secrets", "tls", "edge-tls", "check"]
    with contextlib.ExitStack() as stack:
        origin = stack.enter_context(serve_app(create_origin_app(SAMPLES)))
        machine = Machine(tmp_path, origin, redis_url)
        for name in ("secrets", "tls", "edge-tls"):
            machine.bash(blocks[name])
        p = machine.ports
        stack.enter_context(service(machine, "playgate-signer.service", "signer.env", p["signer"]))
        for port in (p["v1"], p["v2"]):
            stack.enter_context(
                service(machine, "playgate-validator@.service", "validator.env", port, str(port))
            )
        stack.enter_context(service(machine, "playgate-edge.service", "edge.env", p["edge"]))
        # curl reaches video.example.com:443 at the temporary edge and trusts its certificate.
        curl_home = tmp_path / "curl"
        curl_home.mkdir()
        cert = tmp_path / "etc/playgate/tls/edge.crt"
        (curl_home / ".curlrc").write_text(
            f"connect-to = video.example.com:443:127.0.0.1:{p['edge']}\ncacert = {cert}\n"
        )
        out = machine.bash(blocks["check"], {"CURL_HOME": str(curl_home)})
    assert out.splitlines() == ["200", "403", '{"status":"ok"}']
