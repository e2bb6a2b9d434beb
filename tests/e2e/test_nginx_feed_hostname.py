"""The native verifier's revocation feed poller reaches validators named by host name, as a
production config names them (playgate/nginx/lua/playgate_resolve.lua): nginx decides natively
and a revocation reaches it, with the validator given as ``http://localhost:<port>``."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

from edge_validator.settings import ValidatorSettings
from edge_validator.state.guard import StateGuard
from edge_validator.state.memory import MemoryStore
from tests.e2e.test_nginx_metrics import token_id, url_for
from tests.e2e.test_nginx_native import KEYRING, KEYRING_DOC, _revoke, checks, wait_until_native
from tests.support.factories import SAMPLES
from tests.support.nginx_edge import nginx_edge


def test_a_validator_named_by_host_name_feeds_nginx(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    assert socket.gethostbyname("localhost") == "127.0.0.1"
    prefix = tmp_path_factory.mktemp("nginx-hostname")
    keyring_file = prefix / "keyring.json"
    keyring_file.write_text(json.dumps(KEYRING_DOC))
    store = MemoryStore()
    guard = StateGuard(store, ValidatorSettings(keyring=KEYRING).state, shared=True)
    with nginx_edge(
        KEYRING, SAMPLES, prefix, keyring_file=keyring_file, guard=guard, validator_host="localhost"
    ) as edge:
        conf = (prefix / "nginx.conf").read_text()
        assert 'validators = { "localhost:' in conf
        wait_until_native(edge)  # the feed was read: nginx decides without the validator
        url = url_for(edge, time.time())
        assert httpx.get(url, timeout=10).status_code == 200
        _revoke(store, "token_id", token_id(url), time.time())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            asked = checks(edge)
            resp = httpx.get(url, timeout=10)
            if resp.status_code == 403 and checks(edge) == asked:
                break
            time.sleep(0.05)
        assert (resp.status_code, resp.headers["x-playgate-reason"]) == (403, "revoked")
        assert checks(edge) == asked  # denied by nginx itself, from the feed
        assert "feed lost" not in edge.error_log.read_text()
