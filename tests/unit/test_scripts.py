"""The setup scripts a new user runs first: they install what the demo prints and uses."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"


def _commands(script: str) -> list[str]:
    lines = (SCRIPTS / script).read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def test_scripts_parse() -> None:
    for script in ("_common.sh", "demo", "install", "test"):
        subprocess.run(["bash", "-n", str(SCRIPTS / script)], check=True)


def test_demo_installs_what_it_prints_and_uses() -> None:
    commands = _commands("demo")
    # The player page's hls.js (npm ci), and moto_server for the S3 variant (the demo extra).
    assert "ensure_player" in commands
    assert "ensure_venv demo" in commands
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(dep.startswith("moto[server]") for dep in extras["optional-dependencies"]["demo"])
    # curl (the printed "New URL:" line) and ffprobe/ffplay (README's tour).
    assert any(c.startswith("ensure_apt") and "curl" in c and "ffmpeg" in c for c in commands)
    # ./scripts/install (the test suite) installs the same player packages the same way.
    assert "ensure_player" in _commands("install")
