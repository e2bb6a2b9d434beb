"""The built wheel, installed in a fresh virtual environment outside the checkout, works: the
CLI, both servers, the nginx config and the demo run from it, with the data they ship."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.support.demo import running_demo
from tests.support.factories import ROOT
from tests.support.servers import free_port, run_process

# Building the wheel and installing it with its dependencies (cryptography among them) into a
# fresh virtual environment takes a minute alone and several on a loaded machine.
pytestmark = pytest.mark.timeout(600)


def run(*argv: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


class Installed:
    def __init__(self, work: Path, wheel: Path, bin_dir: Path) -> None:
        self.work, self.wheel, self.bin = work, wheel, bin_dir
        # Nothing from the checkout: no PYTHONPATH, a working folder outside it.
        self.env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "REDIS_URL")}

    def playgate(self, *argv: str, env: dict[str, str] | None = None) -> str:
        return run(self.bin / "playgate", *argv, cwd=self.work, env={**self.env, **(env or {})})

    def python(self, code: str) -> str:
        return run(self.bin / "python", "-c", code, cwd=self.work, env=self.env).strip()


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    work = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    run(*pip, "wheel", "--no-deps", "-q", "-w", work / "dist", ROOT, cwd=work)
    wheel = next((work / "dist").glob("playgate-*.whl"))
    run(sys.executable, "-m", "venv", work / "venv", cwd=work)
    venv_pip = [work / "venv" / "bin" / "python", "-m", "pip", "--disable-pip-version-check"]
    run(*venv_pip, "install", "-q", wheel, cwd=work)
    installed = Installed(work, wheel, work / "venv" / "bin")
    installed.playgate("keygen", "-o", "ring.json")
    return installed


def test_the_wheel_holds_the_packages_and_their_data_not_the_tests(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    for needed in (
        "edge_validator/state/redis_store.py",
        "edge_validator/core/token.py",
        "edge_validator/TOKEN_FORMAT.md",
        "signer/app.py",
        "playgate/cli.py",
        "playgate/nginx/edge.conf.template",
        "playgate/nginx/lua/playgate_native.lua",
        "playgate/nginx/module/ngx_http_playgate_module.c",
        "playgate/nginx/module/config",
        "playgate/demo/samples/videos/demo/master.m3u8",
        "playgate/demo/player/index.html",
        "playgate/demo/player/node_modules/hls.js/dist/hls.min.js",
    ):
        assert needed in names, needed
    assert not any(n.startswith(("tests/", "bench/")) for n in names)


def test_imports_come_from_the_installed_wheel(installed: Installed) -> None:
    where = installed.python("import edge_validator, signer, playgate; print(playgate.__file__)")
    assert where.startswith(str(installed.work / "venv")), where


def test_cli_signs_and_explains_from_the_wheel(installed: Installed) -> None:
    url = installed.playgate("sign", "demo", "--keyring", "ring.json").strip()
    assert "ACCEPTED" in installed.playgate("explain", url, "--keyring", "ring.json")
    conf = installed.playgate(
        "nginx-config",
        "--validator-url",
        "http://127.0.0.1:1",
        "--origin-url",
        "http://127.0.0.1:2",
        "--prefix",
        str(installed.work / "nginx"),
    )
    assert "auth_request /_playgate/auth;" in conf
    # With the key ring, the native verifier and its C fast path, built from the wheel's source.
    native = installed.playgate(
        "nginx-config", "--validator-url", "http://127.0.0.1:1", "--origin-url",
        "http://127.0.0.1:2", "--prefix", str(installed.work / "nginx"), "--keyring-file",
        "ring.json",
    )  # fmt: skip
    assert "playgate_fast on;" in native
    module = native.split("ngx_http_lua_module.so;\nload_module ", 1)[1].split(";", 1)[0]
    assert Path(module).is_file()


def test_both_servers_run_from_the_wheel(installed: Installed) -> None:
    samples = installed.python("from playgate.demo import SAMPLES; print(SAMPLES)")
    ring = (installed.work / "ring.json").read_text()
    key = "pgk_wheel-test-key-0123456789abcdefghijklmnop"
    digest = installed.python(
        f"from signer.api_keys import hash_api_key; print(hash_api_key({key!r}))"
    )
    v_port, s_port = free_port(), free_port()
    env = {
        **installed.env,
        "PLAYGATE_KEYRING": ring,
        "PLAYGATE_MEDIA_ROOT": samples,
        "PLAYGATE_API_KEYS": f"wheel:{digest}",
        "PLAYGATE_PUBLIC_URL": f"http://127.0.0.1:{v_port}",
    }
    playgate = str(installed.bin / "playgate")
    with (
        run_process([playgate, "serve-validator", "--port", str(v_port)], port=v_port, env=env),
        run_process([playgate, "serve-signer", "--port", str(s_port)], port=s_port, env=env),
    ):
        resp = httpx.post(
            f"http://127.0.0.1:{s_port}/v1/playback-urls",
            json={"video_id": "demo"},
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        assert resp.status_code == 201, resp.text
        media = httpx.get(resp.json()["url"], timeout=10, follow_redirects=True)
        assert media.status_code == 200
        assert media.text.startswith("#EXTM3U")


def test_the_demo_runs_from_the_wheel(installed: Installed) -> None:
    with running_demo(
        [str(installed.bin / "playgate")], cwd=installed.work, env=installed.env
    ) as lines:
        first = httpx.get(lines["Playback URL"], timeout=10, follow_redirects=True)
        assert first.text.startswith("#EXTM3U")
        player = lines["Player"].removesuffix("/player/")
        hls = httpx.get(f"{player}/player/hls.min.js", timeout=10)
        assert hls.status_code == 200
        assert len(hls.content) > 100_000  # the real hls.js, shipped in the wheel
        doc = json.loads(httpx.post(f"{player}/player/api/playback-url", timeout=10).text)
        assert httpx.get(doc["url"], timeout=10, follow_redirects=True).status_code == 200
