"""Signer: revocation API and CLI, rate limits (in memory and in a real Redis), field rules."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from edge_validator.admin_key import AdminKey
from edge_validator.core.keyring import KeyRing
from edge_validator.state import StateSettings
from edge_validator.state.memory import MemoryStore
from edge_validator.state.settings import RateLimit
from edge_validator.state.store import RateBucket, RateVerdict
from playgate.cli import main as cli_main
from playgate.revoke_cli import NO_API_KEY, NO_SIGNER, STORE_DOWN_ADVICE
from signer.api_keys import ApiKeys, hash_api_key
from signer.app import create_app as create_signer
from signer.settings import SignerSettings
from tests.support.factories import ADMIN_AUTH, ADMIN_KEY_HASH, API_KEY
from tests.support.servers import free_port, serve_app
from tests.support.state_helpers import AUTH


def _signer(keyring: KeyRing, state: StateSettings) -> SignerSettings:
    return SignerSettings(
        keyring=keyring,
        api_keys=ApiKeys({"test": hash_api_key(API_KEY)}),
        state=state,
        admin_key=AdminKey(ADMIN_KEY_HASH),
    )


@pytest.fixture(params=["memory", "redis"])
def state(request: pytest.FixtureRequest, key_prefix: str) -> StateSettings:
    if request.param == "memory":
        return StateSettings()
    return StateSettings(redis_url=request.getfixturevalue("redis_url"), key_prefix=key_prefix)


@pytest.fixture
def signer(keyring: KeyRing, state: StateSettings) -> Iterator[str]:
    # In memory, the store is handed in, as the demo shares one with its validator.
    store = MemoryStore() if state.redis_url is None else None
    with serve_app(create_signer(_signer(keyring, state), store=store)) as url:
        yield url


def test_standalone_memory_signer_refuses_revocations(keyring: KeyRing) -> None:
    # Its memory reaches no validator: accepting would promise a revocation nobody enforces.
    with serve_app(create_signer(_signer(keyring, StateSettings()))) as url:
        made = _post(f"{url}/v1/revocations", {"token_id": "t1"})
        assert made.status_code == 501
        assert made.json()["error"] == "state_not_shared"
        health = httpx.get(f"{url}/admin/health", headers=ADMIN_AUTH, timeout=10)
        assert health.json()["state"]["shared"] is False


def _post(url: str, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(url, json=body, headers=AUTH if headers is None else headers, timeout=10)


def test_revocations_are_created_and_listed(signer: str) -> None:
    made = _post(f"{signer}/v1/revocations", {"video_id": "demo"})
    assert made.status_code == 201
    doc = made.json()
    assert (doc["kind"], doc["value"]) == ("video_id", "demo")
    # ISO 8601 like a playback URL's expires_at; kept as long as the longest-lived token or
    # session could live: max(max TTL 3600, max session 43200) + leeway cap (60), from the
    # revocation's whole second; revoked_at is that second minus the not-before margin (5).
    revoked_at = datetime.fromisoformat(doc["revoked_at"])
    expires_at = datetime.fromisoformat(doc["expires_at"])
    assert doc["revoked_at"].endswith("Z")
    assert doc["expires_at"].endswith("Z")
    assert revoked_at.timestamp() == int(revoked_at.timestamp())
    assert (expires_at - revoked_at).total_seconds() == pytest.approx(43260 + 5, abs=1)
    assert abs(revoked_at.timestamp() - time.time()) < 60
    listed = httpx.get(f"{signer}/v1/revocations", headers=AUTH).json()["revocations"]
    assert [(r["kind"], r["value"]) for r in listed] == [("video_id", "demo")]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"token_id": "a", "video_id": "b"},
        {"tokenid": "a"},
        {"token_id": ""},
        {"token_id": 7},
        {"user_id": "with space"},
        {"video_id": "dots.not.allowed"},
        ["token_id"],
    ],
)
def test_revocation_needs_exactly_one_valid_target(signer: str, body: object) -> None:
    resp = _post(f"{signer}/v1/revocations", body)
    assert resp.status_code == 422
    assert resp.json()["error"] == "invalid_field"


def test_revocation_endpoints_need_an_api_key(signer: str) -> None:
    assert _post(f"{signer}/v1/revocations", {"token_id": "x"}, {}).status_code == 401
    wrong = {"Authorization": "Bearer pgk_wrong"}
    resp = httpx.get(f"{signer}/v1/revocations", headers=wrong)
    assert resp.status_code == 401
    assert resp.json()["error"] == "unauthorized"


def test_openapi_describes_revocations(signer: str) -> None:
    paths = httpx.get(f"{signer}/openapi.json").json()["paths"]
    assert set(paths["/v1/revocations"]) == {"get", "post"}


def test_max_streams_requires_user_id(signer: str) -> None:
    resp = _post(f"{signer}/v1/playback-urls", {"video_id": "demo", "max_streams": 2})
    assert resp.status_code == 422
    assert resp.json()["field"] == "max_streams"
    ok = {"video_id": "demo", "max_streams": 2, "user_id": "u1"}
    assert _post(f"{signer}/v1/playback-urls", ok).status_code == 201


def test_rate_limit_per_api_key(keyring: KeyRing, state: StateSettings) -> None:
    limited = dataclasses.replace(state, api_key_rate=RateLimit(3, 60))
    with serve_app(create_signer(_signer(keyring, limited))) as url:
        codes = [_post(f"{url}/v1/playback-urls", {"video_id": "demo"}) for _ in range(4)]
    assert [r.status_code for r in codes] == [201, 201, 201, 429]
    refused = codes[-1]
    assert refused.json()["error"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60


def test_retry_after_is_when_the_oldest_request_leaves_the_window(
    keyring: KeyRing, state: StateSettings
) -> None:
    """Timed by the test's clock (the signer's and Redis's on this host): the first request
    happened within [start, end], so Retry-After has exact bounds, with no timing guess."""
    import math

    limited = dataclasses.replace(state, api_key_rate=RateLimit(2, 30))
    with serve_app(create_signer(_signer(keyring, limited))) as url:
        start = time.time()
        assert _post(f"{url}/v1/playback-urls", {"video_id": "demo"}).status_code == 201
        end = time.time()
        assert _post(f"{url}/v1/playback-urls", {"video_id": "demo"}).status_code == 201
        asked = time.time()
        refused = _post(f"{url}/v1/playback-urls", {"video_id": "demo"})
        answered = time.time()
    assert refused.status_code == 429
    assert refused.json()["message"] == "too many requests for this API key"
    retry_after = int(refused.headers["retry-after"])
    assert math.ceil(start + 30 - answered) <= retry_after <= math.ceil(end + 30 - asked)


def test_rate_limit_per_viewer(keyring: KeyRing, state: StateSettings) -> None:
    limited = dataclasses.replace(state, viewer_rate=RateLimit(2, 60))
    with serve_app(create_signer(_signer(keyring, limited))) as url:
        issue = f"{url}/v1/playback-urls"
        a = [_post(issue, {"video_id": "demo", "session_id": "s-a"}) for _ in range(3)]
        assert [r.status_code for r in a] == [201, 201, 429]
        assert _post(issue, {"video_id": "demo", "session_id": "s-b"}).status_code == 201
        ip = [_post(issue, {"video_id": "demo", "client_ip": "203.0.113.9"}) for _ in range(3)]
        assert [r.status_code for r in ip] == [201, 201, 429]
        assert ip[-1].headers["retry-after"]
        # Requests naming no viewer only count against the API key.
        assert _post(issue, {"video_id": "demo"}).status_code == 201
        # A fresh session id per request does not dodge the address's bucket.
        fresh = [
            _post(issue, {"video_id": "demo", "session_id": f"n{i}", "client_ip": "198.51.100.4"})
            for i in range(3)
        ]
        assert [r.status_code for r in fresh] == [201, 201, 429]
        # Nor does a fresh IPv6 address inside the same /64.
        v6 = [_post(issue, {"video_id": "demo", "client_ip": f"2001:db8::{i}"}) for i in range(3)]
        assert [r.status_code for r in v6] == [201, 201, 429]
        # Nor a wider network written around the same viewer: the bucket is the viewer's.
        for spellings in (
            ["192.0.2.0", "192.0.2.0/31", "192.0.2.0/24"],
            ["2001:db8:7::/64", "2001:db8:7::/48", "2001:db8:7::/56"],
        ):
            wide = [_post(issue, {"video_id": "demo", "client_ip": ip}) for ip in spellings]
            assert [r.status_code for r in wide] == [201, 201, 429], spellings


def test_one_redis_script_per_url_at_most(keyring: KeyRing) -> None:
    """The API key's and both viewer buckets are counted by one script call per URL at most
    (there were three), and the requests in flight share calls (rate_batch.py)."""
    import asyncio

    import redis

    from edge_validator.state.redis_store import RedisStore
    from playgate.redis_server import redis_server

    body = {"video_id": "demo", "session_id": "s-1", "client_ip": "203.0.113.9"}
    roomy = RateLimit(1000, 60)
    with redis_server() as server, redis.Redis.from_url(server.url) as r:
        state = StateSettings(redis_url=server.url, api_key_rate=roomy, viewer_rate=roomy)
        with serve_app(create_signer(_signer(keyring, state), contract_check=True)) as url:
            assert _post(f"{url}/v1/playback-urls", body).status_code == 201  # loads the script
            r.config_resetstat()

            async def burst() -> list[int]:
                async with httpx.AsyncClient(headers=AUTH, timeout=10) as client:
                    posts = (client.post(f"{url}/v1/playback-urls", json=body) for _ in range(40))
                    return [resp.status_code for resp in await asyncio.gather(*posts)]

            assert asyncio.run(burst()) == [201] * 40
        stats = r.info("commandstats")
        assert 1 <= stats["cmdstat_evalsha"]["calls"] <= 40
        # Nothing else ran but the script's own commands (Redis counts those too) and the
        # handshake of any connection opened meanwhile.
        inside = {"time", "zremrangebyscore", "zcard", "zrange", "zadd", "pexpire"}
        others = {k.removeprefix("cmdstat_") for k in stats} - inside - {"evalsha"}
        assert others <= {"config|resetstat", "hello", "client|setinfo"}
        # The script and the signer agree on the buckets: 41 requests in each.
        keys = sorted(k.decode() for k in r.scan_iter("playgate:rate:*"))
        assert keys == [
            "playgate:rate:{test}:ip:203.0.113.9/32",
            "playgate:rate:{test}:key",
            "playgate:rate:{test}:session:s-1",
        ]
        assert [r.zcard(k) for k in keys] == [41, 41, 41]

        # Checks made in one turn of the event loop: one script call for them all, and still
        # exact (the limit is 5 of the 12).
        async def together() -> list[float]:
            store = RedisStore(state)
            try:
                await store.hit_rate("other", [("key", 5, 60)])  # connects, loads the script
                await store.client.config_resetstat()
                verdicts = await asyncio.gather(
                    *(store.hit_rate("app", [("key", 5, 60)]) for _ in range(12))
                )
            finally:
                await store.close()
            return [wait for wait, _ in verdicts]

        waits = asyncio.run(together())
        assert sorted(w > 0 for w in waits) == [False] * 5 + [True] * 7
        assert r.info("commandstats")["cmdstat_evalsha"]["calls"] == 1


def test_cli_revokes_through_the_signer(
    signer: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    key_file = tmp_path / "api-key"
    key_file.write_text(API_KEY + "\n")
    argv = ["revoke", "--user-id", "u-9", "--signer", signer, "--api-key-file", str(key_file)]
    assert cli_main(argv) == 0
    assert json.loads(capsys.readouterr().out)["kind"] == "user_id"
    monkeypatch.setenv("PLAYGATE_SIGNER_URL", signer)
    monkeypatch.setenv("PLAYGATE_API_KEY", API_KEY)
    assert cli_main(["revocations"]) == 0
    listed = json.loads(capsys.readouterr().out)["revocations"]
    assert [(r["kind"], r["value"]) for r in listed] == [("user_id", "u-9")]
    assert cli_main(["revoke", "--user-id", "bad id"]) == 1
    assert capsys.readouterr().err.startswith("playgate: the signer answered 422 invalid_field:")
    # A wrong key: one line naming the mistake and where the key comes from.
    monkeypatch.setenv("PLAYGATE_API_KEY", "pgk_wrong")
    assert cli_main(["revoke", "--user-id", "u-1"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "playgate: the signer answered 401 unauthorized: this API key is not one of the "
        "signer's PLAYGATE_API_KEYS: check the key, or add its entry (playgate api-key prints "
        "both) (check PLAYGATE_API_KEY or --api-key-file)\n"
    )
    with pytest.raises(SystemExit):
        cli_main(["revoke", "--user-id", "a", "--token-id", "b"])


def _refused(argv: list[str]) -> object:
    """The one line ``playgate`` stops with (SystemExit's message)."""
    with pytest.raises(SystemExit) as refused:
        cli_main(argv)
    return refused.value.code


def test_cli_says_which_piece_is_missing(signer: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLAYGATE_SIGNER_URL", raising=False)
    monkeypatch.setenv("PLAYGATE_API_KEY", API_KEY)
    assert _refused(["revoke", "--video-id", "v1"]) == NO_SIGNER
    bare = signer.removeprefix("http://")
    assert _refused(["revocations", "--signer", bare]) == (
        f"playgate: the signer URL {bare!r} must start with http:// or https://"
    )
    monkeypatch.delenv("PLAYGATE_API_KEY")
    assert _refused(["revocations", "--signer", signer]) == NO_API_KEY
    monkeypatch.setenv("PLAYGATE_API_KEY", API_KEY)
    assert _refused(["revoke", "--signer", signer]) == (
        "playgate revoke: give exactly one of --token-id, --session-id, --video-id, --user-id"
    )


def test_cli_refuses_an_api_key_on_the_command_line(signer: str) -> None:
    # Any local user reads argv (`ps`, /proc/<pid>/cmdline): the key is never taken from it.
    with pytest.raises(SystemExit, match="PLAYGATE_API_KEY or use --api-key-file"):
        cli_main(["revoke", "--user-id", "u-1", "--signer", signer, "--api-key", API_KEY])


def test_signer_without_redis_answers_503_and_not_ready(
    keyring: KeyRing, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    down = StateSettings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with serve_app(create_signer(_signer(keyring, down))) as url:
        resp = _post(f"{url}/v1/revocations", {"token_id": "x"})
        assert resp.status_code == 503
        assert resp.json()["error"] == "store_unavailable"
        assert resp.headers["retry-after"] == "1"
        ready = httpx.get(f"{url}/readyz")
        assert ready.status_code == 503
        assert ready.json() == {"ready": False}
        details = httpx.get(f"{url}/admin/health", headers=ADMIN_AUTH).json()
        assert details["state"]["connected"] is False
        # Fail-open (the default) still issues URLs when rate limits cannot be checked.
        assert _post(f"{url}/v1/playback-urls", {"video_id": "demo"}).status_code == 201
        # The CLI says what the 503 means and what to do.
        monkeypatch.setenv("PLAYGATE_API_KEY", API_KEY)
        assert cli_main(["revoke", "--token-id", "x", "--signer", url]) == 1
        err = capsys.readouterr().err
        assert err.startswith("playgate: the signer answered 503 store_unavailable: ")
        assert err.endswith(f"{STORE_DOWN_ADVICE}\n")
    closed = dataclasses.replace(down, failure_policy="fail_closed")
    with serve_app(create_signer(_signer(keyring, closed))) as url:
        resp = _post(f"{url}/v1/playback-urls", {"video_id": "demo"})
        assert resp.status_code == 503
        assert resp.json()["error"] == "store_unavailable"
        assert resp.headers["retry-after"] == "1"


def test_revocations_survive_a_signer_restart(
    keyring: KeyRing, redis_url: str, key_prefix: str
) -> None:
    state = StateSettings(redis_url=redis_url, key_prefix=key_prefix)
    with serve_app(create_signer(_signer(keyring, state))) as url:
        assert _post(f"{url}/v1/revocations", {"session_id": "s-keep"}).status_code == 201
    with serve_app(create_signer(_signer(keyring, state))) as url:
        listed = httpx.get(f"{url}/v1/revocations", headers=AUTH).json()["revocations"]
    assert [(r["kind"], r["value"]) for r in listed] == [("session_id", "s-keep")]


class _BrokenStore(MemoryStore):
    async def hit_rate(self, group: str, buckets: Sequence[RateBucket]) -> RateVerdict:
        raise RuntimeError("a bug in a store")


def test_an_unexpected_error_is_a_json_error_never_a_bare_500(keyring: KeyRing) -> None:
    app = create_signer(_signer(keyring, StateSettings()), store=_BrokenStore())
    with serve_app(app) as url:
        resp = _post(f"{url}/v1/playback-urls", {"video_id": "demo"})
    assert resp.headers["x-playgate-reason"] == "internal_error"
    assert resp.headers["cache-control"] == "no-store"
    assert resp.json()["error"] == "internal_error"


def test_revocations_are_rate_limited_per_api_key(
    keyring: KeyRing, redis_url: str, key_prefix: str
) -> None:
    """Every revocation is kept in Redis, in every validator's memory and in nginx's shared dict
    for hours: a key (a partner's, limited to a video prefix, say) must not flood them. Its own
    limit, apart from the URL issuance it shares nothing with."""
    state = StateSettings(
        redis_url=redis_url, key_prefix=key_prefix, revocation_rate=RateLimit(3, 60)
    )
    with serve_app(create_signer(_signer(keyring, state))) as url:
        codes = [_post(f"{url}/v1/revocations", {"token_id": f"flood-{i}"}) for i in range(4)]
        issued = _post(f"{url}/v1/playback-urls", {"video_id": "demo"})
        listed = httpx.get(f"{url}/v1/revocations", headers=AUTH, timeout=10).json()
    assert [r.status_code for r in codes] == [201, 201, 201, 429]
    refused = codes[-1]
    assert refused.json()["error"] == "rate_limited"
    assert refused.headers["cache-control"] == "no-store"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert issued.status_code == 201
    assert "flood-3" not in {r["value"] for r in listed["revocations"]}
