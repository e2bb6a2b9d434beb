"""Rendering the nginx edge config: every value filled, nothing injectable, nginx -t accepts it."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_validator.core.errors import ConfigurationError
from playgate.cli import main
from playgate.nginx.config import EdgeConfig, check_config, prepare_prefix, render
from tests.support.servers import require_tool


def config(tmp_path: Path, **kw: str) -> EdgeConfig:
    values = {
        "listen": "127.0.0.1:8088",
        "validator_url": "http://127.0.0.1:8081",
        "origin_url": "http://127.0.0.1:9000",
        **kw,
    }
    return EdgeConfig(prefix=tmp_path, **values)


def test_renders_every_placeholder(tmp_path: Path) -> None:
    text = render(config(tmp_path))
    assert "{{" not in text
    assert "listen 127.0.0.1:8088;" in text
    assert "server 127.0.0.1:8081 max_fails=1 fail_timeout=2s;" in text
    assert "server 127.0.0.1:9000;" in text
    assert "proxy_set_header X-Original-URI $request_uri;" in text


def test_rendered_config_passes_nginx_t(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    prepare_prefix(cfg)
    check_config(require_tool("nginx"), cfg)


@pytest.mark.parametrize(
    "bad",
    [
        {"listen": "8088; include /etc/passwd"},
        {"listen": "80 }"},
        {"validator_url": "https://127.0.0.1:8081"},
        {"validator_url": "http://127.0.0.1:8081/auth"},
        {"origin_url": "http://127.0.0.1:9000?x=1"},
        {"user": "root; include /etc/passwd"},
    ],
)
def test_refuses_values_that_would_change_the_config(tmp_path: Path, bad: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        render(config(tmp_path, **bad))


def test_cli_writes_the_config(tmp_path: Path) -> None:
    out = tmp_path / "edge.conf"
    argv = ["nginx-config", "--listen", "127.0.0.1:8088", "--prefix", str(tmp_path)]
    argv += ["--validator-url", "http://127.0.0.1:8081", "--origin-url", "http://127.0.0.1:9000"]
    assert main([*argv, "--output", str(out)]) == 0
    assert "auth_request /_playgate/auth;" in out.read_text()


def test_cli_makes_the_prefix_ready_for_nginx(tmp_path: Path) -> None:
    prefix = tmp_path / "edge"
    argv = ["nginx-config", "--listen", "127.0.0.1:8088", "--prefix", str(prefix), "--user", "www"]
    argv += ["--validator-url", "http://127.0.0.1:8081", "--origin-url", "http://127.0.0.1:9000"]
    assert main([*argv, "--output", str(prefix / "edge.conf")]) == 0
    assert (prefix / "tmp" / "body").is_dir()
    assert (prefix / "cache").is_dir()
    assert (prefix / "edge.conf").read_text().startswith("user www;\n")
