"""The real nginx ``secure_link`` module verifies the secure_link URLs PlayGate emits."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import httpx
import pytest

from edge_validator.formats import secure_link
from edge_validator.formats.secure_link import SecureLinkKey
from playgate.nginx.config import current_user_if_root
from tests.support.factories import SAMPLES
from tests.support.formats import policy, secure_link_key
from tests.support.servers import LOOPBACK, free_port, require_tool, run_process

pytestmark = pytest.mark.slow
SEGMENT = "hls/v0/seg_001.ts"
CONF = """
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log stderr warn;
{user}
events {{ worker_connections 64; }}
http {{
    client_body_temp_path {prefix}/tmp;
    proxy_temp_path {prefix}/tmp;
    fastcgi_temp_path {prefix}/tmp;
    uwsgi_temp_path {prefix}/tmp;
    scgi_temp_path {prefix}/tmp;
    access_log off;
    server {{
        listen {listen};
        root {media};
        {unbound}
        {bound}
        location / {{ return 404; }}
    }}
}}
"""


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """nginx with two secure_link locations: the PlayGate ``scope`` layout, without and with
    ``$remote_addr`` (on another prefix), serving the sample video from disk."""
    binary = require_tool("nginx")
    media = tmp_path_factory.mktemp("media")
    shutil.copytree(SAMPLES / "videos" / "demo", media / "videos" / "demo")
    prefix = tmp_path_factory.mktemp("nginx-sl")
    (prefix / "tmp").mkdir()
    port = free_port()
    user = current_user_if_root()
    bound = SecureLinkKey("bound", "b" * 40, bind_client=True)
    conf = CONF.format(
        prefix=prefix,
        user=f"user {user};" if user else "",
        listen=f"{LOOPBACK}:{port}",
        media=media,
        unbound=secure_link_key().nginx_location("try_files $sl_path =404;"),
        # The same location under /slip/: a key whose expression includes the address.
        bound=bound.nginx_location("try_files $sl_path =404;").replace('"^/sl/', '"^/slip/'),
    )
    (prefix / "nginx.conf").write_text(conf, encoding="utf-8")
    argv = [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", "stderr"]
    with run_process(argv, port=port, log=prefix / "nginx.out"):
        yield f"http://{LOOPBACK}:{port}"


def test_nginx_serves_the_master_and_its_segments_with_one_playgate_emitted_url(
    nginx: str,
) -> None:
    now = int(time.time())
    url = secure_link.emit(policy(now=now), secure_link_key())
    master = httpx.get(nginx + url, timeout=10)
    assert master.status_code == 200
    assert master.text.startswith("#EXTM3U")
    # A relative URI in the playlist resolves under the same token prefix.
    segment = str(httpx.URL(nginx + url).join(SEGMENT))
    assert httpx.get(segment, timeout=10).status_code == 200
    # And PlayGate's own verifier agrees with nginx on the same URL.
    assert secure_link.verify(httpx.URL(segment).path, None, (secure_link_key(),)).key_id == "sl1"


def test_nginx_refuses_what_playgate_refuses(nginx: str) -> None:
    now = int(time.time())
    url = secure_link.emit(policy(now=now), secure_link_key())
    other_video = url.replace("/videos/demo/", "/videos/other/")
    assert httpx.get(nginx + other_video, timeout=10).status_code == 403
    expired = secure_link.emit(policy(now=now - 1000, ttl=60), secure_link_key())
    assert httpx.get(nginx + expired, timeout=10).status_code == 410
    wrong_key = secure_link.emit(policy(now=now), SecureLinkKey("x", "x" * 40))
    assert httpx.get(nginx + wrong_key, timeout=10).status_code == 403


def test_nginx_checks_the_bound_client_address(nginx: str) -> None:
    now = int(time.time())
    bound = SecureLinkKey("bound", "b" * 40, bind_client=True)
    ours = secure_link.emit(policy(now=now, client_network=f"{LOOPBACK}/32"), bound)
    theirs = secure_link.emit(policy(now=now, client_network="192.0.2.1/32"), bound)
    assert httpx.get(nginx + ours.replace("/sl/", "/slip/", 1), timeout=10).status_code == 200
    assert httpx.get(nginx + theirs.replace("/sl/", "/slip/", 1), timeout=10).status_code == 403
