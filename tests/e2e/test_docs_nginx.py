"""docs/nginx.md's deploy commands, run as written (folders, ports and origin replaced): the
rendered prefix passes ``nginx -t`` at once, nginx and the validator start, a URL plays."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from edge_validator.core.keyring import KeyRing, new_keyring_json
from playgate.cli import main
from playgate.demo.origin import create_origin_app
from tests.support import factories
from tests.support.factories import ROOT, SAMPLES
from tests.support.servers import free_port, require_tool, run_process, serve_app

pytestmark = pytest.mark.slow
DOC = ROOT / "docs" / "nginx.md"
_BLOCK = re.compile(r"<!-- tested: ([a-z-]+) -->\n```bash\n(.*?)```", re.S)


def commands(block: str) -> list[str]:
    """One string per command, continuation lines joined, comments dropped."""
    joined = block.replace("\\\n", " ")
    return [ln.split("  #")[0].strip() for ln in joined.splitlines() if ln.strip()]


def test_the_documented_deploy_runs(tmp_path: Path) -> None:
    require_tool("nginx")
    blocks = dict(_BLOCK.findall(DOC.read_text()))
    ring_file = tmp_path / "keyring.json"
    ring_file.write_text(new_keyring_json("k1"))
    edge, v1, v2 = free_port(), free_port(), free_port()
    path = f"{Path(sys.executable).parent}:/usr/sbin:{os.environ['PATH']}"
    env = {**os.environ, "PATH": path}
    env.pop("REDIS_URL", None)
    with contextlib.ExitStack() as stack:
        origin = stack.enter_context(serve_app(create_origin_app(SAMPLES)))
        replacements = {
            "/var/lib/playgate-nginx": str(tmp_path / "prefix"),
            "/var/log/playgate": str(tmp_path / "log"),
            "0.0.0.0:80": f"127.0.0.1:{edge}",
            "127.0.0.1:8081": f"127.0.0.1:{v1}",
            "127.0.0.1:8082": f"127.0.0.1:{v2}",
            "--port 8081": f"--port {v1}",
            "http://10.0.0.5:80": origin,
            "keyring.json": str(ring_file),
        }

        def local(text: str) -> str:
            for old, new in replacements.items():
                text = text.replace(old, new)
            return text

        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", local(blocks["nginx-deploy"])],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr  # nginx -t passes on the fresh prefix
        run_nginx, run_validator = commands(local(blocks["nginx-run"]))
        if os.geteuid() == 0:  # workers must use the private temp prefix
            run_nginx = run_nginx.replace(" -e stderr", " -e stderr -g 'user root;'")
        (tmp_path / "log").mkdir()
        prefix = tmp_path / "prefix"
        quit_nginx = ["nginx", "-s", "quit", "-p", str(prefix), "-c", str(prefix / "edge.conf")]
        # nginx runs in a pipeline: stop it itself, as its unit's ExecStop does.
        stack.callback(subprocess.run, quit_nginx, env=env, capture_output=True, timeout=30)
        stack.enter_context(
            run_process(["bash", "-c", run_nginx], port=edge, env=env, log=tmp_path / "n")
        )
        # Both validators the config names (the doc starts the first; the second is the same
        # command on the other port): a port named but not ours could answer anything.
        for port in (v1, v2):
            command = run_validator.replace(f"--port {v1}", f"--port {port}")
            stack.enter_context(
                run_process(
                    ["bash", "-c", f"exec env {command}"], port=port, env=env, log=tmp_path / "v"
                )
            )
        token = factories.token(KeyRing.from_file(ring_file), token_id="tid-docs")
        for _ in range(3):  # whichever validator nginx asks first, the check succeeds
            resp = httpx.get(
                f"http://127.0.0.1:{edge}/t/{token}/videos/demo/master.m3u8", timeout=10
            )
            assert resp.status_code == 200


def test_output_into_a_missing_folder_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "nginx-config",
        "--prefix",
        str(tmp_path / "p"),
        "--validator-url",
        "http://127.0.0.1:8081",
        "--origin-url",
        "http://127.0.0.1:9000",
    ]
    assert main([*argv, "-o", str(tmp_path / "missing" / "edge.conf")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "does not exist" in err
    blocked = tmp_path / "file"
    blocked.write_text("")
    argv[2] = str(blocked / "prefix")
    assert main(argv) == 2
    assert "choose a writable --prefix" in capsys.readouterr().err
