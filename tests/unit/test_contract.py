"""One written contract: the error tree, the nginx template and the signer's OpenAPI document
all come from the code, so none of them can drift from it."""

from __future__ import annotations

import pytest

from edge_validator.core import errors, protocol
from edge_validator.core.errors import PlayGateError, error_classes
from edge_validator.state.settings import StateSettings
from playgate.nginx import config as nginx_config
from playgate.nginx.config import EdgeConfig, render


def test_every_reason_names_one_class_with_one_status() -> None:
    seen: dict[str, type[PlayGateError]] = {}
    for cls in error_classes():
        assert cls.reason not in seen, f"{cls.__name__} and {seen[cls.reason].__name__}"
        seen[cls.reason] = cls
        assert 400 <= cls.status < 600
        assert cls.__doc__, f"{cls.__name__} has no docstring (it is the OpenAPI description)"


def test_every_denial_is_401_or_403() -> None:
    """The auth_request contract: nginx honours 2xx, 401 and 403 only."""
    for cls in error_classes():
        if issubclass(cls, errors.PlaybackTokenError):
            assert cls.status in (401, 403), cls


def test_the_rendered_nginx_config_carries_the_wire_contract(tmp_path: object) -> None:
    config = EdgeConfig("127.0.0.1:8088", "http://127.0.0.1:1", "http://127.0.0.1:2", tmp_path)  # type: ignore[arg-type]
    text = render(config)
    assert "{{" not in text
    for value in nginx_config.contract_values().values():
        assert value in text
    assert f"proxy_pass http://playgate_validator{protocol.AUTH_ROUTE};" in text
    assert f"proxy_set_header {protocol.ORIGINAL_URI_HEADER} $request_uri;" in text
    assert "auth_request_set $pg_reason $upstream_http_x_playgate_reason;" in text


def test_the_template_follows_the_protocol_module(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    """Change a constant, and the rendered edge changes with it: nothing is written twice."""
    monkeypatch.setattr(protocol, "TOKEN_PREFIX", "/tok/")
    monkeypatch.setattr(protocol, "SESSION_PREFIX", "/ses/")
    monkeypatch.setattr(protocol, "REASON_HEADER", "X-Edge-Why")
    monkeypatch.setattr(protocol, "MANIFEST_SUFFIXES", (".m3u8", ".mpd", ".vtt"))
    monkeypatch.setattr(protocol, "MANIFEST_CACHE", "private, max-age=1")
    config = EdgeConfig("127.0.0.1:8088", "http://127.0.0.1:1", "http://127.0.0.1:2", tmp_path)  # type: ignore[arg-type]
    text = render(config)
    assert '"~^(?:/tok/|/ses/)"' in text
    assert "(?i:/tok/[^?]*" in text  # start-token manifests go to the shield
    assert '"private, max-age=1"' in text
    code = "\n".join(ln for ln in text.splitlines() if not ln.strip().startswith("#"))
    assert "/t/" not in code
    assert "/s/" not in code
    assert "$upstream_http_x_edge_why" in text
    assert "add_header X-Edge-Why" in text
    assert "(?:m3u8|mpd|vtt)" in text


def test_the_state_settings_repr_hides_the_redis_password() -> None:
    state = StateSettings.from_env({"REDIS_URL": "redis://:s3cret-pass@cache.internal:6380/2"})
    assert "s3cret" not in repr(state)
    assert "cache.internal:6380/2" in repr(state)
    assert state.redis_url == "redis://:s3cret-pass@cache.internal:6380/2"
