"""Rendering the nginx edge config: every value filled, nothing injectable, nginx -t accepts it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from edge_validator.core.errors import ConfigurationError
from edge_validator.core.keyring import new_keyring_json
from edge_validator.core.protocol import LOGGED_SEGMENT_CHARS
from playgate.cli import main
from playgate.nginx import fast_module
from playgate.nginx.config import EdgeConfig, check_config, check_native, prepare_prefix, render
from playgate.nginx.fast_module import built
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


def _keyring_file(tmp_path: Path) -> Path:
    path = tmp_path / "keyring.json"
    path.write_text(new_keyring_json("k1"))
    return path


def test_the_native_verifier_is_rendered_with_a_key_ring_file(tmp_path: Path) -> None:
    keyring_file = _keyring_file(tmp_path)
    cfg = EdgeConfig(
        "127.0.0.1:8088",
        "http://127.0.0.1:8081",
        "http://127.0.0.1:9000",
        tmp_path,
        more_validator_urls=("http://127.0.0.1:8082",),
        keyring_file=keyring_file,
    )
    text = render(cfg)
    assert "\nload_module /usr/lib/nginx/modules/ndk_http_module.so;\n" in text
    assert 'require("playgate_native").access()' in text
    assert f'keyring_file = "{keyring_file.resolve()}"' in text
    assert 'validators = { "127.0.0.1:8081", "127.0.0.1:8082" }' in text
    # The verifier sets $pg_is_manifest itself only for the suffixes it knows.
    assert 'manifest_suffixes = ".m3u8,.mpd",' in text
    assert "memo_slots = 262144," in text
    assert "text_address = false," in text
    assert "auth_request /_playgate/auth;" not in text
    prepare_prefix(cfg)
    check_native(cfg)
    check_config(require_tool("nginx"), cfg)


def test_without_a_key_ring_file_or_with_native_off_every_request_asks_the_validator(
    tmp_path: Path,
) -> None:
    off = EdgeConfig(
        "127.0.0.1:8088",
        "http://127.0.0.1:8081",
        "http://127.0.0.1:9000",
        tmp_path,
        keyring_file=_keyring_file(tmp_path),
        native=False,
    )
    for cfg in (config(tmp_path), off):
        text = render(cfg)
        assert "auth_request /_playgate/auth;" in text
        assert "load_module" not in text
        assert "_by_lua" not in text


def test_a_native_edge_takes_validator_host_names(tmp_path: Path) -> None:
    """nginx resolves them at start and reload, for the upstream and for the feed poller
    (playgate_resolve.lua; tests/e2e/test_nginx_feed_hostname.py runs it)."""
    cfg = EdgeConfig(
        "127.0.0.1:8088", "http://127.0.0.1:8081", "http://127.0.0.1:9000", tmp_path,
        more_validator_urls=("http://localhost:8082",), keyring_file=_keyring_file(tmp_path),
    )  # fmt: skip
    check_native(cfg)
    assert 'validators = { "127.0.0.1:8081", "localhost:8082" }' in render(cfg)


def test_a_native_edge_refuses_a_bad_key_ring_or_dict_size(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"keys": {"k1": "short"}}')
    cfg = EdgeConfig(
        "127.0.0.1:8088", "http://127.0.0.1:8081", "http://127.0.0.1:9000", tmp_path,
        keyring_file=bad,
    )  # fmt: skip
    with pytest.raises(ConfigurationError):
        check_native(cfg)
    with pytest.raises(ConfigurationError, match="dict size"):
        render(dataclasses.replace(cfg, native_dict_size="64m; evil"))
    with pytest.raises(ConfigurationError, match="characters nginx would parse"):
        render(dataclasses.replace(cfg, keyring_file=tmp_path / 'a";b.json'))
    for slots in (1, 3, 1 << 25, -2, True):
        with pytest.raises(ConfigurationError, match="power of two"):
            render(dataclasses.replace(cfg, native_memo_slots=slots))
    assert "memo_slots = 0," in render(dataclasses.replace(cfg, native_memo_slots=0))
    # On a UNIX socket $binary_remote_addr is the peer's path: the address is read as text.
    unix = dataclasses.replace(cfg, listen="unix:/run/playgate-edge.sock")
    assert "text_address = true," in render(unix)


def test_cli_renders_native_from_the_environment_and_no_native_turns_it_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAYGATE_KEYRING_FILE", str(_keyring_file(tmp_path)))
    base = ["nginx-config", "--prefix", str(tmp_path), "--validator-url", "http://127.0.0.1:1"]
    base += ["--origin-url", "http://127.0.0.1:2", "-o"]
    assert main([*base, str(tmp_path / "native.conf")]) == 0
    assert main([*base, str(tmp_path / "plain.conf"), "--no-native"]) == 0
    assert main([*base, str(tmp_path / "lua.conf"), "--no-fast"]) == 0
    assert "access_by_lua_block" in (tmp_path / "native.conf").read_text()
    assert "access_by_lua_block" not in (tmp_path / "plain.conf").read_text()
    # The C fast path by default (nginx-dev builds it here), and not with --no-fast.
    assert "playgate_fast on;" in (tmp_path / "native.conf").read_text()
    assert "playgate_fast" not in (tmp_path / "lua.conf").read_text()
    assert "access_by_lua_block" in (tmp_path / "lua.conf").read_text()
    monkeypatch.setenv("PLAYGATE_EDGE_NATIVE", "false")
    assert main([*base, str(tmp_path / "env-off.conf")]) == 0
    assert "access_by_lua_block" not in (tmp_path / "env-off.conf").read_text()


def test_no_allow_is_ever_reused(tmp_path: Path) -> None:
    """The grant cache is gone (the native verifier decides in nginx): one cache, the media's."""
    text = render(config(tmp_path))
    assert text.count("proxy_cache_path ") == 1
    assert "keys_zone=playgate_media:" in text
    assert "proxy_cache playgate_media;" in text
    assert "proxy_cache " not in text.split("location = /_playgate/auth", 1)[1]


def test_the_native_counts_are_served_on_the_admin_address_only(tmp_path: Path) -> None:
    native = config(tmp_path, keyring_file=_keyring_file(tmp_path))  # type: ignore[arg-type]
    assert "playgate_metrics" in render(native)  # counted, even when not served
    assert "expose_metrics" not in render(native)
    served = render(dataclasses.replace(native, metrics_listen="127.0.0.1:9146"))
    admin = served.split("listen 127.0.0.1:9146;", 1)[1]
    assert 'require("playgate_native").expose_metrics()' in admin
    assert "expose_metrics" not in served.split("listen 127.0.0.1:9146;", 1)[0]
    with pytest.raises(ConfigurationError, match="would parse"):
        render(dataclasses.replace(native, metrics_listen="127.0.0.1:9146; evil"))
    with pytest.raises(ConfigurationError, match="native verifier's counts"):
        render(dataclasses.replace(native, native=False, metrics_listen="127.0.0.1:9146"))
    with_admin = dataclasses.replace(native, metrics_listen="127.0.0.1:9")
    prepare_prefix(with_admin)
    check_config(require_tool("nginx"), with_admin)


def test_cli_serves_the_native_counts_where_it_is_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAYGATE_KEYRING_FILE", str(_keyring_file(tmp_path)))
    base = ["nginx-config", "--prefix", str(tmp_path), "--validator-url", "http://127.0.0.1:1"]
    base += ["--origin-url", "http://127.0.0.1:2", "-o"]
    assert main([*base, str(tmp_path / "flag.conf"), "--metrics-listen", "127.0.0.1:9146"]) == 0
    assert "listen 127.0.0.1:9146;" in (tmp_path / "flag.conf").read_text()
    monkeypatch.setenv("PLAYGATE_EDGE_METRICS_LISTEN", "127.0.0.1:9147")
    assert main([*base, str(tmp_path / "env.conf")]) == 0
    assert "listen 127.0.0.1:9147;" in (tmp_path / "env.conf").read_text()


def test_the_fast_path_module_is_built_loaded_after_lua_and_enabled_where_lua_decides(
    tmp_path: Path,
) -> None:
    """nginx-dev builds the C fast path for this nginx (cached: the second call is the same
    file); the rendered edge loads it after ngx_http_lua (it calls the shared-dict read) and
    turns it on in front of the Lua verifier, and `nginx -t` accepts the whole."""
    module = built(require_tool("nginx"))
    assert built(require_tool("nginx")) == module
    cfg = dataclasses.replace(
        config(tmp_path), keyring_file=_keyring_file(tmp_path), fast_module=module
    )
    text = render(cfg)
    lua = text.index("ngx_http_lua_module.so;")
    assert text.index(f"load_module {module};") > lua
    fast = text.index("playgate_fast on;")
    assert fast < text.index('require("playgate_native").access()')
    assert f"playgate_fast_logged_segment_chars {LOGGED_SEGMENT_CHARS};" in text
    prepare_prefix(cfg)
    check_config(require_tool("nginx"), cfg)
    # Without a key ring (auth_request) there is no fast path, whatever the module.
    assert "playgate_fast" not in render(dataclasses.replace(cfg, keyring_file=None))
    with pytest.raises(ConfigurationError, match="characters nginx would parse"):
        render(dataclasses.replace(cfg, fast_module=tmp_path / "a b.so"))


def test_a_machine_without_nginx_dev_is_told_how_to_get_the_fast_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(fast_module, "NGINX_SOURCE", tmp_path / "no-nginx-dev")
    with pytest.raises(ConfigurationError, match="apt-get install nginx-dev"):
        built(require_tool("nginx"))
    # The CLI then renders the Lua verifier alone and says, in one line, how to get it.
    keyring_file = _keyring_file(tmp_path)
    out = tmp_path / "edge.conf"
    argv = ["nginx-config", "--prefix", str(tmp_path), "--validator-url", "http://127.0.0.1:1",
            "--origin-url", "http://127.0.0.1:2", "--keyring-file", str(keyring_file)]  # fmt: skip
    assert main([*argv, "-o", str(out)]) == 0
    assert "playgate_fast" not in out.read_text()
    assert 'require("playgate_native").access()' in out.read_text()
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "the C fast path is off" in err
    assert "--no-fast" in err
