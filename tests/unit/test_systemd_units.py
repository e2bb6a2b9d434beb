"""infra/systemd: the units pass ``systemd-analyze verify`` (with the venv's playgate standing in
for /opt/playgate/venv), and keep the properties docs/production.md promises."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.factories import ROOT
from tests.support.servers import require_tool

UNITS = ROOT / "infra" / "systemd"
INSTALLED = "/opt/playgate/venv/bin/playgate"
NGINX_CTL = "/usr/sbin/nginx -s"
PREFIX = "-p /var/lib/playgate-edge -c /var/lib/playgate-edge/nginx.conf"
NAMES = ["playgate-signer.service", "playgate-validator@.service", "playgate-edge.service"]


def localized(tmp_path: Path) -> Path:
    """The units with the venv's playgate in place of the installed one (verify checks it)."""
    here = str(Path(sys.executable).with_name("playgate"))
    for name in NAMES:
        (tmp_path / name).write_text((UNITS / name).read_text().replace(INSTALLED, here))
    return tmp_path


def verify(folder: Path, *units: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool("systemd-analyze"), "verify", *units],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    folder = localized(tmp_path)
    done = verify(
        folder,
        "playgate-signer.service",
        "playgate-validator@8081.service",
        "playgate-edge.service",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Unknown" not in done.stderr, done.stderr  # no misspelt directive was ignored


def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    folder = localized(tmp_path)
    unit = folder / "playgate-signer.service"
    unit.write_text(unit.read_text().replace("ExecStart=/", "ExecStart=", 1))
    assert verify(folder, "playgate-signer.service").returncode != 0


def read(name: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNITS / name)
    return parser


@pytest.mark.parametrize("name", NAMES)
def test_services_run_unprivileged_and_stop_gracefully(name: str) -> None:
    service = read(name)["Service"]
    assert service["User"].startswith("playgate-")
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    # Reload: key rings (SIGHUP to the serve command) or nginx's rendered config.
    assert service["ExecReload"] in ("/bin/kill -HUP $MAINPID", f"{NGINX_CTL} reload {PREFIX}")
    assert service["KillSignal"] == "SIGTERM"  # drain, never SIGKILL first


def test_nginx_errors_reach_the_journal_only_through_the_filter() -> None:
    service = read("playgate-edge.service")["Service"]
    assert service["ExecStart"].endswith(f"2>&1 | {INSTALLED} nginx-error-log'")
    assert service["ExecStop"] == f"{NGINX_CTL} quit {PREFIX}"  # graceful


def test_servers_listen_on_loopback_only() -> None:
    for name in ("playgate-signer.service", "playgate-validator@.service"):
        assert "--host 127.0.0.1" in read(name)["Service"]["ExecStart"]
