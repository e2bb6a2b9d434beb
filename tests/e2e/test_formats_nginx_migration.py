"""The migration of docs/formats.md on a real nginx edge: nginx verifies the new secure_link URLs
itself and passes everything else to the shield, where outstanding CloudFront links still play."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from edge_validator.asgi.app import create_app as create_validator
from edge_validator.core.keyring import encode_secret
from edge_validator.formats import secure_link
from edge_validator.settings import ValidatorSettings
from playgate.nginx.config import current_user_if_root
from tests.e2e.test_nginx_secure_link import CONF
from tests.http.test_formats_migration import (
    CDN,
    KEY_PAIR_ID,
    PUBLIC_PEM,
    SEGMENTS,
    outstanding_cloudfront_links,
    play,
)
from tests.support.factories import SAMPLES
from tests.support.formats import policy, secure_link_key
from tests.support.servers import LOOPBACK, free_port, require_tool, run_process, serve_app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def nginx_edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    environ = {
        "PLAYGATE_KEYRING": json.dumps({"keys": {"k1": encode_secret(b"N" * 32)}}),
        "PLAYGATE_MEDIA_ROOT": str(SAMPLES),
        "PLAYGATE_ACCEPT_FORMATS": "cloudfront",
        "PLAYGATE_FORMAT_KEYS": json.dumps(
            {"public_url": CDN, "cloudfront": [{"id": KEY_PAIR_ID, "public_key_pem": PUBLIC_PEM}]}
        ),
    }
    with serve_app(create_validator(ValidatorSettings.from_env(environ))) as shield:
        prefix = tmp_path_factory.mktemp("nginx-migration")
        (prefix / "tmp").mkdir()
        port = free_port()
        user = current_user_if_root()
        conf = CONF.format(
            prefix=prefix,
            user=f"user {user};" if user else "",
            listen=f"{LOOPBACK}:{port}",
            media=SAMPLES,
            unbound=secure_link_key().nginx_location("try_files $sl_path =404;"),
            # Everything else, the outstanding CloudFront links first of all, goes to the shield
            # with its query and cookies.
            bound=f"location /videos/ {{ proxy_pass {shield}; }}",
        )
        (prefix / "nginx.conf").write_text(conf, encoding="utf-8")
        binary = require_tool("nginx")
        argv = [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", "stderr"]
        with run_process(argv, port=port, log=prefix / "nginx.out"):
            yield f"http://{LOOPBACK}:{port}"


def test_outstanding_cloudfront_links_play_through_the_nginx_edge(nginx_edge: str) -> None:
    url, cookies = outstanding_cloudfront_links(time.time())
    assert play(url, nginx_edge, cookies) == SEGMENTS


def test_new_secure_link_urls_are_verified_by_nginx_itself(nginx_edge: str) -> None:
    path = secure_link.emit(policy(now=int(time.time())), secure_link_key())
    assert play(CDN + path, nginx_edge) == SEGMENTS


def test_the_nginx_edge_refuses_what_the_shield_refuses(nginx_edge: str) -> None:
    url, _ = outstanding_cloudfront_links(time.time() - 3600)
    resp = httpx.get(url.replace(CDN, nginx_edge), timeout=10)
    assert (resp.status_code, resp.headers["x-playgate-reason"]) == (403, "expired")
    bare = httpx.get(f"{nginx_edge}/videos/demo/master.m3u8", timeout=10)
    assert bare.status_code == 401
