"""nginx's native verifier (playgate/nginx/lua/playgate_native.lua) never disagrees with Python.

A real nginx runs the native verifier; a test-only location hands it batches of requests to
judge with the same function that judges live requests (``decide``), and every verdict is
compared with the Python ``Verifier``'s: the test vectors, thousands of random and mutated
tokens, the path attack table. Then real requests go through the edge: allowed ones are
decided in nginx (the validator is never asked), revocations reach nginx within a second, and
what nginx cannot decide still reaches the validator.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import ipaddress
import json
import os
import shutil
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge_validator.asgi.app import create_app, reload_keyring
from edge_validator.asgi.client_address import REAL_IP
from edge_validator.core.addresses import ClientAddress
from edge_validator.core.errors import PlaybackTokenError
from edge_validator.core.keyring import SESSION_CONTEXT, KeyRing
from edge_validator.core.protocol import (
    AUTH_ROUTE,
    MANIFEST_CACHE,
    NATIVE_FEED_ROUTE,
    REASON_HEADER,
    is_manifest,
)
from edge_validator.core.sessions import (
    opens_session,
    seal_session,
    session_claims,
    session_location,
)
from edge_validator.core.token import open_token
from edge_validator.env import networks
from edge_validator.settings import ValidatorSettings
from edge_validator.state.guard import StateGuard
from edge_validator.state.memory import MemoryStore
from edge_validator.state.redis_store import RedisStore
from edge_validator.state.revocations import Revocation
from edge_validator.state.settings import FAIL_CLOSED, FAIL_OPEN, StateSettings
from edge_validator.state.store import build_store
from playgate.demo.origin import create_origin_app
from playgate.nginx.config import EdgeConfig, current_user_if_root, prepare_prefix
from playgate.nginx.runner import running_nginx
from signer.issuing import PlaybackRequest, issue
from tests.support.factories import SAMPLES, TESTS
from tests.support.native_cases import (
    ATTACK_PATHS,
    Case,
    Verdict,
    cases,
    hostile_cases,
    layout_cases,
    opening_cases,
    python_verdict,
    verifier,
)
from tests.support.nginx_edge import Edge, nginx_edge
from tests.support.servers import LOOPBACK, free_port, require_tool, serve_app

VECTORS = json.loads((TESTS / "vectors" / "tokens.json").read_text())
KEYRING_DOC = VECTORS["keyring"]
KEYRING = KeyRing.from_json(json.dumps(KEYRING_DOC))
VERIFIER = verifier(KEYRING)
# nginx's ring with one secret the validator's lacks (see _forged).
ROTATED = {"keys": {**KEYRING_DOC["keys"], "k1": "Q" * 43}}

# Test only: judge a batch of requests (one a line: hex target, client, now) with the native
# verifier's own decision function, in this nginx, and answer one verdict a line.
DECIDE = """
        location = /_test/native-decide {
            client_max_body_size 64m;
            client_body_buffer_size 64m;
            content_by_lua_block {
                local native = require("playgate_native")
                local function unhex(h)
                    return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
                end
                local function hex(s)
                    return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
                end
                ngx.req.read_body()
                local body = ngx.req.get_body_data()
                local hits = native.memo_hits()
                local lines = {}
                local policy = { leeway = 5, max_ttl = 3600, max_session = 43200 }
                for line in body:gmatch("[^\\n]+") do
                    local target, client, now = line:match("^(%x*)\\t(%S*)\\t(%S+)$")
                    -- "b:" and hex: the address as $binary_remote_addr gives it
                    local packed = client:sub(1, 2) == "b:"
                        and native.packed_binary(unhex(client:sub(3)))
                    local v, r, t = native.decide(unhex(target), not packed and client or nil,
                        tonumber(now), policy, nil, nil, packed or nil)
                    if v == "allow" then r, t = "", r end
                    if v == "defer" then r = "" end -- why it defers is for the metrics only
                    -- and the C fast path's judgement of the same request
                    local fv, ft = native.fast_verdict(unhex(target),
                        not packed and client or nil, tonumber(now), policy, packed or nil)
                    lines[#lines + 1] = v .. "\\t" .. (r or "") .. "\\t" .. hex(t or "")
                        .. "\\t" .. (fv or "off") .. "\\t" .. hex(ft or "")
                end
                -- how many of the batch's tokens the memo authenticated (no MAC computed)
                ngx.header["X-Memo-Hits"] = native.memo_hits() - hits
                ngx.print(table.concat(lines, "\\n"))
            }
        }
        location = /_test/fast-counts {
            content_by_lua_block {
                local hits, skipped = require("playgate_native").fast_counts()
                ngx.print(hits, " ", skipped)
            }
        }
        location = /_test/native-open {
            client_max_body_size 64m;
            client_body_buffer_size 64m;
            content_by_lua_block {
                local native = require("playgate_native")
                local function unhex(h)
                    return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
                end
                ngx.req.read_body()
                local lines = {}
                for line in ngx.req.get_body_data():gmatch("[^\\n]+") do
                    local target, client, now, narrow = line:match("^(%x*)\\t(%S*)\\t(%S+)\\t(%d)$")
                    local policy = { leeway = 5, max_ttl = 3600, max_session = 43200,
                                     narrow = narrow == "1" }
                    local location = native.opened(unhex(target), client, tonumber(now), policy,
                        nil)
                    lines[#lines + 1] = location or "-"
                end
                ngx.print(table.concat(lines, "\\n"))
            }
        }
"""


@pytest.fixture(scope="module")
def media_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("media")
    for name in ("demo", "other"):
        shutil.copytree(SAMPLES / "videos" / "demo", root / "videos" / name)
    return root


@pytest.fixture(scope="module")
def store() -> MemoryStore:
    return MemoryStore()


@contextlib.contextmanager
def native_edge(media_root: Path, store: MemoryStore, prefix: Path, **edge: Any) -> Iterator[Edge]:
    """A native edge on the vectors' key ring, its validator on ``store``, with the test
    locations; once nginx decides by itself (``edge``: more of nginx_edge's settings)."""
    keyring_file = prefix / "keyring.json"
    keyring_file.write_text(json.dumps(KEYRING_DOC))
    guard = StateGuard(store, ValidatorSettings(keyring=KEYRING).state, shared=True)
    with nginx_edge(
        KEYRING,
        media_root,
        prefix,
        keyring_file=keyring_file,
        guard=guard,
        extra_locations=DECIDE,
        **edge,
    ) as running:
        wait_until_native(running)
        yield running


@pytest.fixture(scope="module")
def edge(
    media_root: Path, store: MemoryStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Edge]:
    with native_edge(media_root, store, tmp_path_factory.mktemp("nginx")) as running:
        yield running


def checks(edge: Edge) -> int:
    """How many requests the validator was asked to judge (feed polls are not checks)."""
    return sum(1 for path in edge.auth_calls if path == AUTH_ROUTE)


def shielded(edge: Edge) -> int:
    """How many requests the origin shield answered (manifests that open sessions or that
    query-token mode rewrites: the validator judges them, as before)."""
    return sum(1 for path in edge.auth_calls if path not in (AUTH_ROUTE, NATIVE_FEED_ROUTE))


def signed(edge: Edge, file: str = "hls/v0/seg_001.ts", **fields: Any) -> str:
    request = PlaybackRequest("demo", 600, file=file, **fields)
    return issue(request, KEYRING, time.time(), public_url=edge.url).url


def wait_until_native(edge: Edge) -> None:
    """Until nginx decides a plain request without the validator (its first feed poll)."""
    url = signed(edge)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        before = checks(edge)
        assert httpx.get(url, timeout=10).status_code == 200
        if checks(edge) == before:
            return
        time.sleep(0.1)
    pytest.fail("nginx never decided natively: " + edge.error_log.read_text()[-2000:])


def fast_counts(edge: Edge) -> tuple[int, int]:
    """The C fast path's memo hits and skipped revocation lookups in nginx's one worker."""
    hits, skipped = httpx.get(f"{edge.url}/_test/fast-counts", timeout=10).text.split()
    return int(hits), int(skipped)


def native_verdicts(edge: Edge, batch: list[Case]) -> list[Verdict]:
    return verdicts_and_memo_hits(edge, batch)[0]


# Allows by the C fast path (ngx_http_playgate_module.c) over every batch judged so far: each
# one checked against Python's verdict as it came (fast_allows_agree).
FAST_ALLOWS = collections.Counter[str]()


def fast_allows_agree(batch: list[Case], fast: list[tuple[str, str]]) -> None:
    """The C fast path only allows, and only what Python allows, naming the same token id;
    everything else it declines (the Lua verifier then decides as judged above)."""
    wrong = []
    for case, (verdict, token_id) in zip(batch, fast, strict=True):
        assert verdict in ("allow", "decline"), f"the fast path is not loaded: {verdict}"
        if verdict == "allow":
            FAST_ALLOWS["allow"] += 1
            python = python_verdict(VERIFIER, case._replace(client=_as_text(case.client)))
            if python != Verdict("allow", "", token_id):
                wrong.append((case, python))
    assert not wrong, wrong[:5]


def _as_text(client: str) -> str:
    """A case's client as Python reads it: "b:" and hex is the address as nginx's
    $binary_remote_addr gives it (an IPv4-mapped IPv6 address is the IPv4 one, as nginx
    decides)."""
    if not client.startswith("b:"):
        return client
    address = ipaddress.ip_address(bytes.fromhex(client[2:]))
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


def verdicts_and_memo_hits(edge: Edge, batch: list[Case]) -> tuple[list[Verdict], int]:
    """The native verdicts, and how many of the batch's tokens the memo authenticated; the C
    fast path's judgements of the same batch are checked against Python's on the way."""
    body = "\n".join(f"{c.target.hex()}\t{c.client}\t{c.now!r}" for c in batch)
    resp = httpx.post(f"{edge.url}/_test/native-decide", content=body, timeout=120)
    assert resp.status_code == 200, resp.text[:500]
    out, fast = [], []
    for line in resp.text.split("\n"):
        verdict, reason, token_id, fast_verdict, fast_token_id = line.split("\t")
        out.append(Verdict(verdict, reason, bytes.fromhex(token_id).decode("latin-1")))
        fast.append((fast_verdict, bytes.fromhex(fast_token_id).decode("latin-1")))
    assert len(out) == len(batch)
    fast_allows_agree(batch, fast)
    return out, int(resp.headers["x-memo-hits"])


def agreed_outcomes(edge: Edge, batch: list[Case]) -> collections.Counter[tuple[str, str]]:
    """Python's (verdict, reason) counts over ``batch`` (what the generator reached), once no
    native verdict differs from Python's (a native "defer" hands the request to Python, so it
    never disagrees; it is allowed only where Python defers too or where the native verifier
    does not know the token's format)."""
    found: list[tuple[Case, Verdict, Verdict]] = []
    outcomes: collections.Counter[tuple[str, str]] = collections.Counter()
    for case, native in zip(batch, native_verdicts(edge, batch), strict=True):
        python = python_verdict(VERIFIER, case)
        outcomes[python[:2]] += 1
        if native.verdict == "defer" and (python.verdict == "defer" or b"CAT=" in case.target):
            continue
        if native != python:
            found.append((case, native, python))
    assert not found, found[:5]
    return outcomes


def _vector_cases() -> list[tuple[str, Case]]:
    named = []
    for vector in VECTORS["valid"]:
        claims = vector["claims"]
        net = claims["client_network"]
        client = net.split("/")[0] if net else "127.0.0.1"
        target = f"/t/{vector['token']}{claims['scope']}seg.ts"
        named.append((vector["name"], Case(target.encode(), client, claims["not_before"] + 1)))
    for vector in VECTORS["sessions"]:
        claims = vector["claims"]
        client = claims["client_network"].split("/")[0] if claims["client_network"] else ""
        target = f"/s/{vector['token']}{claims['scope']}seg.ts"
        named.append((vector["name"], Case(target.encode(), client, claims["not_before"] + 1)))
    for vector in VECTORS["invalid"]:
        prefix = "/s/" if vector.get("kind") == "session" else "/t/"
        target = f"{prefix}{vector['token']}{vector['path']}"
        named.append(
            (vector["name"], Case(target.encode(), vector["client_ip"] or "", vector["now"]))
        )
    return named


def test_every_vector_is_judged_as_python_judges_it(edge: Edge) -> None:
    named = _vector_cases()
    batch = [case for _, case in named]
    verdicts = native_verdicts(edge, batch)
    for (name, case), native in zip(named, verdicts, strict=True):
        assert native == python_verdict(VERIFIER, case), name
    invalid = {v["name"]: v["reason"] for v in VECTORS["invalid"]}
    for (name, _), native in zip(named, verdicts, strict=True):
        if name in invalid:
            assert (native.verdict, native.reason) == ("deny", invalid[name]), name
        else:  # a valid vector with use or stream limits is the validator's to count
            assert native.verdict in ("allow", "defer"), name


def test_thousands_of_random_and_mutated_requests_agree_with_python(edge: Edge) -> None:
    batch = cases(KEYRING, 6000)
    allowed_before = FAST_ALLOWS["allow"]
    # The generator reaches every outcome, or the comparison proves little.
    outcomes = agreed_outcomes(edge, batch)
    reasons = {reason for (verdict, reason) in outcomes if verdict == "deny"}
    assert reasons >= {
        "missing",
        "malformed",
        "bad_signature",
        "unknown_key",
        "expired",
        "not_yet_valid",
        "lifetime_exceeded",
        "out_of_scope",
        "ip_mismatch",
        "bad_path",
    }
    assert outcomes[("allow", "")] > 200
    assert outcomes[("defer", "")] > 20
    # The C fast path allowed a good part of them (each allow agreed with Python's).
    assert FAST_ALLOWS["allow"] - allowed_before > 50


def raw_get(edge: Edge, target: bytes) -> tuple[int, dict[str, str]]:
    host, port = edge.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(head[0].split(" ", 2)[1]), headers


def test_real_requests_get_the_python_verdict_without_asking_python(edge: Edge) -> None:
    now = time.time()
    batch = [
        case._replace(client="127.0.0.1")
        for case in cases(KEYRING, 1200, seed=7, t0=int(now))
        # nginx itself refuses request lines with controls, spaces or '#' (400 at both).
        if not any(b <= 0x20 or b == 0x23 or b >= 0x7F for b in case.target)
    ][:600]
    judged = collections.Counter()
    for case in batch:
        before = python_verdict(VERIFIER, case._replace(now=time.time()))
        asked, shield = checks(edge), shielded(edge)
        status, headers = raw_get(edge, case.target)
        after = python_verdict(VERIFIER, case._replace(now=time.time()))
        if before != after or before.verdict == "defer" or shielded(edge) != shield:
            continue  # a lifetime boundary crossed while asking; or Python's to decide
        if status == 400:
            continue  # nginx refused the request line itself (%00...), in either mode
        judged[before.verdict] += 1
        # Decided in nginx, unless its view was not fresh at that instant (a loaded machine can
        # delay a feed poll): then the validator answered, which must give the same verdict.
        judged["in nginx"] += checks(edge) == asked
        if before.verdict == "deny":
            assert status == (401 if before.reason == "missing" else 403), case
            assert headers.get("x-playgate-reason") == before.reason, case
            assert headers.get("cache-control") == "no-store"
        else:
            assert status not in (401, 403, 500, 503), case
            assert "x-playgate-reason" not in headers
    assert judged["allow"] > 20
    assert judged["deny"] > 100
    assert judged["in nginx"] > (judged["allow"] + judged["deny"]) // 2


def _revoke(store: MemoryStore, kind: str, value: str, at: float) -> None:
    asyncio.run(store.revoke(Revocation(kind, value, at, at + 3600)))


@pytest.mark.parametrize("kind", ["token_id", "session_id", "user_id", "video_id"])
def test_a_revocation_reaches_nginx_within_a_second(
    edge: Edge, store: MemoryStore, kind: str
) -> None:
    url = signed(edge, session_id=f"sid-{kind}", user_id=f"user-{kind}")
    token_id = url.split("/t/", 1)[1].split("/", 1)[0]
    from edge_validator.core.token import open_token

    claims = open_token(token_id, KEYRING)
    value = {
        "token_id": claims.token_id,
        "session_id": claims.session_id,
        "user_id": claims.user_id,
        "video_id": "demo",
    }[kind]
    assert httpx.get(url, timeout=10).status_code == 200
    _revoke(store, kind, value, time.time())
    started = time.monotonic()
    while True:
        asked = checks(edge)
        resp = httpx.get(url, timeout=10)
        # Until nginx itself denies it (the validator would too, were it asked).
        in_nginx = checks(edge) == asked
        if (resp.status_code != 200 and in_nginx) or time.monotonic() - started > 10:
            break
        time.sleep(0.02)
    elapsed = time.monotonic() - started
    assert in_nginx
    assert resp.status_code == 403
    assert resp.headers["x-playgate-reason"] == "revoked"
    assert resp.headers["cache-control"] == "no-store"
    print(f"{kind} revocation reached nginx in {elapsed:.3f} s")
    if kind in ("user_id", "video_id"):
        # Issued after the revocation: plays (the revocation covers tokens issued before it).
        time.sleep(1.1)
        assert httpx.get(signed(edge, user_id=f"user-{kind}"), timeout=10).status_code == 200


def test_a_later_revocation_of_a_user_reaches_a_token_found_clean(
    edge: Edge, store: MemoryStore
) -> None:
    """A revocation stored over an earlier one of the same user (a later time, so it covers
    tokens the first did not) is counted as a new one: a token remembered clean is looked up
    again."""
    _revoke(store, "user_id", "again", time.time())
    time.sleep(1.1)
    url = signed(edge, user_id="again")  # issued after that revocation: plays
    hits, skipped = fast_counts(edge)
    for _ in range(3):  # remembered, then found clean
        assert httpx.get(url, timeout=10).status_code == 200
    # In C: remembered twice, its lookups skipped at least once (no revocation came between)
    assert fast_counts(edge)[0] - hits == 2
    assert fast_counts(edge)[1] > skipped
    _revoke(store, "user_id", "again", time.time())
    resp = _first_answer_other_than(url, 200, 5)
    assert resp.status_code == 403
    assert resp.headers["x-playgate-reason"] == "revoked"


def test_what_nginx_cannot_decide_still_reaches_the_validator(edge: Edge) -> None:
    for url in (signed(edge, max_uses=2), signed(edge, max_streams=1)):
        asked = checks(edge)
        assert [httpx.get(url, timeout=10).status_code for _ in range(3)][:2] == [200, 200]
        assert checks(edge) - asked == 3
    limited = signed(edge, max_uses=1)
    assert httpx.get(limited, timeout=10).status_code == 200
    resp = httpx.get(limited, timeout=10)
    assert resp.status_code == 403
    assert resp.headers["x-playgate-reason"] == "use_limit_reached"
    assert resp.headers["cache-control"] == "no-store"


def test_the_access_log_never_holds_a_token(edge: Edge) -> None:
    url = signed(edge)
    token = url.split("/t/", 1)[1].split("/", 1)[0]
    httpx.get(url, timeout=10)
    httpx.get(url.replace("/t/", "/t/x"), timeout=10)
    time.sleep(0.2)
    log = edge.access_log.read_text()
    assert token not in log
    assert "token_id=" in log
    assert "reason=malformed" in log


@contextlib.contextmanager
def edge_with_stoppable_validator(
    tmp_path: Path,
    media_root: Path,
    state: StateSettings,
    nginx_keyring: dict[str, Any] = KEYRING_DOC,
    validator_keyring: KeyRing = KEYRING,
    apps: list[Any] | None = None,
) -> Iterator[tuple[str, contextlib.ExitStack]]:
    """A native edge whose validator the test can stop (closing the returned stack); its
    state in memory, or in Redis when ``state`` says so; its app appended to ``apps``."""
    keyring_file = tmp_path / "keyring.json"
    keyring_file.write_text(json.dumps(nginx_keyring))
    settings = ValidatorSettings(
        keyring=validator_keyring,
        trusted_proxies=networks("127.0.0.1/32"),
        client_ip_header=REAL_IP,
        media_root=media_root,
        state=state,
    )
    guard = StateGuard(build_store(state), state, shared=True)
    validator = contextlib.ExitStack()
    app = create_app(settings, guard=guard)
    if apps is not None:
        apps.append(app)
    with validator:
        validator_url = validator.enter_context(serve_app(app))
        with serve_app(create_origin_app(media_root)) as origin_url:
            port = free_port()
            config = EdgeConfig(
                listen=f"{LOOPBACK}:{port}",
                validator_url=validator_url,
                origin_url=origin_url,
                prefix=tmp_path,
                workers="1",
                user=current_user_if_root(),
                keyring_file=keyring_file,
            )
            prepare_prefix(config)
            with running_nginx(require_tool("nginx"), config, port):
                yield f"http://{LOOPBACK}:{port}", validator


def _first_answer_other_than(url: str, status: int, seconds: float) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while True:
        resp = httpx.get(url, timeout=10)
        if resp.status_code != status or time.monotonic() > deadline:
            return resp
        time.sleep(0.05)


@pytest.mark.parametrize(
    "state",
    [
        StateSettings(failure_policy=FAIL_CLOSED),
        # "deny" past the staleness (main's default became "serve": native, forever).
        StateSettings(failure_policy=FAIL_OPEN, max_staleness=1.0, stale_fallback="deny"),
    ],
    ids=["fail_closed", "fail_open-past-staleness"],
)
def test_an_unreachable_validator_stops_native_allows_as_its_policy_says(
    tmp_path: Path, media_root: Path, state: StateSettings
) -> None:
    with edge_with_stoppable_validator(tmp_path, media_root, state) as (edge_url, validator):
        url = issue(
            PlaybackRequest("demo", 600, file="hls/v0/seg_001.ts"),
            KEYRING,
            time.time(),
            public_url=edge_url,
        ).url
        assert _first_answer_other_than(url, 503, 20).status_code == 200  # first poll done
        validator.close()
        resp = _first_answer_other_than(url, 200, 20)
    # Past the bound (a second for fail_closed, the staleness for fail_open), nginx asks the
    # validator, which cannot answer: unavailable, never allowed, never cached.
    assert resp.status_code == 503
    assert resp.headers["x-playgate-reason"] == "validator_unavailable"
    assert resp.headers["cache-control"] == "no-store"


def test_fail_open_keeps_deciding_natively_while_the_view_is_young(
    tmp_path: Path, media_root: Path
) -> None:
    state = StateSettings(failure_policy=FAIL_OPEN, max_staleness=3600.0)
    with edge_with_stoppable_validator(tmp_path, media_root, state) as (edge_url, validator):
        url = issue(
            PlaybackRequest("demo", 600, file="hls/v0/seg_001.ts"),
            KEYRING,
            time.time(),
            public_url=edge_url,
        ).url
        assert _first_answer_other_than(url, 503, 20).status_code == 200
        validator.close()
        time.sleep(2)  # well past the one-second freshness bound, well within the staleness
        assert httpx.get(url, timeout=10).status_code == 200
        tampered = httpx.get(url.replace("/t/", "/t/x"), timeout=10)
        assert tampered.status_code == 403  # still every check but revocation
        assert tampered.headers["x-playgate-reason"] == "malformed"


def _issue(edge_url: str, **fields: Any) -> str:
    request = PlaybackRequest("demo", 600, file="hls/v0/seg_001.ts", **fields)
    return issue(request, KEYRING, time.time(), public_url=edge_url).url


def test_a_revocation_published_in_redis_reaches_nginx_within_a_second(
    tmp_path: Path, media_root: Path, redis_url: str, key_prefix: str
) -> None:
    state = StateSettings(redis_url=redis_url, key_prefix=key_prefix)
    with edge_with_stoppable_validator(tmp_path, media_root, state) as (edge_url, _):
        url = _issue(edge_url, user_id="viewer-7")
        assert _first_answer_other_than(url, 503, 20).status_code == 200

        async def revoke() -> None:
            signer_side = RedisStore(state)  # another process's store: only Redis links them
            await signer_side.revoke(
                Revocation("user_id", "viewer-7", time.time(), time.time() + 600)
            )
            await signer_side.close()

        asyncio.run(revoke())
        started = time.monotonic()
        resp = _first_answer_other_than(url, 200, 10)
        print(f"Redis revocation reached nginx in {time.monotonic() - started:.3f} s")
    assert resp.status_code == 403
    assert resp.headers["x-playgate-reason"] == "revoked"


def test_nginx_decides_nothing_when_its_key_ring_differs_from_the_validators(
    tmp_path: Path, media_root: Path
) -> None:
    with edge_with_stoppable_validator(
        tmp_path, media_root, StateSettings(), nginx_keyring=ROTATED
    ) as (edge_url, _):
        url = _issue(edge_url)
        # MACed with the secret only nginx's ring holds: nginx alone would allow it.
        forged = url.replace(url.split("/t/")[1].split("/")[0], _forged())
        for _ in range(3):
            time.sleep(0.5)  # several feed polls
            # The validator judges (Python's reasons), never nginx with its other secret.
            assert httpx.get(url, timeout=10).status_code == 200
            resp = httpx.get(forged, timeout=10)
            assert resp.status_code == 403
            assert resp.headers["x-playgate-reason"] == "bad_signature"


def test_a_reload_with_another_key_ring_decides_nothing_on_the_old_loads_feed(
    tmp_path: Path, media_root: Path
) -> None:
    # The shared dicts outlive a reload: the feed state the old load's poller left there (its
    # ring matched the validator's) must not let the new load decide with its new ring.
    state = StateSettings(failure_policy=FAIL_OPEN, max_staleness=3600.0)
    with edge_with_stoppable_validator(tmp_path, media_root, state) as (edge_url, validator):
        url = _issue(edge_url)
        forged = url.replace(url.split("/t/")[1].split("/")[0], _forged())
        assert _first_answer_other_than(url, 503, 20).status_code == 200  # first poll done
        validator.close()  # the new load can never poll: only the old load's state is there
        (tmp_path / "keyring.json").write_text(json.dumps(ROTATED))
        os.kill(int((tmp_path / "nginx.pid").read_text()), signal.SIGHUP)
        # The old workers allow (old ring, young view) until the new ones take over.
        resp = _first_answer_other_than(url, 200, 20)
        # An old worker can still take a connection for a moment after the new ones start: it
        # denies the forged token with its old ring (403 bad_signature).
        forged_answers = [httpx.get(forged, timeout=10) for _ in range(5)]
    # The new load asks the validator, which cannot answer; the forged token never plays.
    assert resp.status_code == 503, resp.headers
    verdicts = {(r.status_code, r.headers.get(REASON_HEADER)) for r in forged_answers}
    assert verdicts <= {(503, "validator_unavailable"), (403, "bad_signature")}, verdicts


def test_a_key_the_validator_dropped_never_plays_in_nginx_when_the_validator_goes_away(
    tmp_path: Path, media_root: Path
) -> None:
    # Both rings hold "a0" (sorted first: nginx authenticates its polls with it); then the
    # validator drops it, and refuses nginx's polls (401) until it stops. nginx must not go
    # on deciding with the policy it had from when the rings agreed.
    extra = {"active": "a0", "keys": {"a0": "g" * 43}}
    both = {"active": "k1", "keys": {**KEYRING_DOC["keys"], **extra["keys"]}}
    state = StateSettings(failure_policy=FAIL_OPEN, max_staleness=3600.0)
    apps: list[Any] = []
    with edge_with_stoppable_validator(
        tmp_path,
        media_root,
        state,
        nginx_keyring=both,
        validator_keyring=KeyRing.from_json(json.dumps(both)),
        apps=apps,
    ) as (edge_url, validator):
        request = PlaybackRequest("demo", 600, file="hls/v0/seg_001.ts")
        dropped = KeyRing.from_json(json.dumps(extra))
        url = issue(request, dropped, time.time(), public_url=edge_url).url
        assert _first_answer_other_than(url, 503, 20).status_code == 200  # first poll done
        new_ring = tmp_path / "validator-keyring.json"
        new_ring.write_text(json.dumps(KEYRING_DOC))
        assert reload_keyring(apps[0], {"PLAYGATE_KEYRING_FILE": str(new_ring)})
        refused = _first_answer_other_than(url, 200, 20)
        validator.close()
        time.sleep(2)  # past the freshness bound, well within the staleness
        resp = httpx.get(url, timeout=10)
    assert refused.status_code == 403  # the validator: unknown_key
    assert refused.headers["x-playgate-reason"] == "unknown_key"
    assert resp.status_code == 503, resp.headers


def test_a_revocation_renewed_at_the_same_time_outlives_its_first_expiry(
    edge: Edge, store: MemoryStore
) -> None:
    url = signed(edge, user_id="renewed")
    at = time.time()

    async def revoke_twice() -> None:
        await store.revoke(Revocation("user_id", "renewed", at, at + 1))
        # The same revocation, kept longer: the validator's view keeps this one.
        await store.revoke(Revocation("user_id", "renewed", at, at + 600))

    asyncio.run(revoke_twice())
    time.sleep(2.5)  # past the first expiry; several feed polls
    asked = checks(edge)
    resp = httpx.get(url, timeout=10)
    assert (resp.status_code, checks(edge) == asked) == (403, True)
    assert resp.headers["x-playgate-reason"] == "revoked"


def _forged() -> str:
    """A token MACed with the secret only nginx's (wrong) ring holds."""
    ring = KeyRing.from_json(json.dumps({"active": "k1", "keys": {"k1": "Q" * 43}}))
    request = PlaybackRequest("demo", 600, file="hls/v0/seg_001.ts")
    url = issue(request, ring, time.time(), public_url="http://x").url
    return url.split("/t/")[1].split("/")[0]


def test_the_path_attack_table_is_refused_in_nginx_as_python_refuses_it(edge: Edge) -> None:
    token = signed(edge, "master.m3u8").split("/t/", 1)[1].split("/", 1)[0]
    denied = in_nginx = 0
    for path in ATTACK_PATHS:
        for target in (f"/t/{token}{path}", f"{path}?token={token}"):
            raw = target.encode("latin-1")
            hits, asked = list(edge.origin_hits), checks(edge)
            status, headers = raw_get(edge, raw)
            if status == 400:
                continue  # nginx refused the request line itself, in either mode
            python = python_verdict(VERIFIER, Case(raw, "127.0.0.1", time.time()))
            if python.verdict == "allow":  # the table's few unambiguous escapes (%20, %21)
                assert status not in (401, 403), target
                continue
            denied += 1
            in_nginx += checks(edge) == asked
            assert status == 403, target
            assert headers.get("x-playgate-reason") == python.reason, target
            assert edge.origin_hits == hits, target
    assert denied > 60
    assert in_nginx > denied // 2  # (a loaded machine can delay a feed poll: then Python judged)


def test_many_revocations_at_once_reach_nginx_in_parts(edge: Edge, store: MemoryStore) -> None:
    first, last = signed(edge, user_id="bulk-first"), signed(edge, user_id="bulk-last")

    async def revoke_many() -> None:
        now = time.time()
        await store.revoke(Revocation("user_id", "bulk-first", now, now + 600))
        for i in range(12_000):  # more than one part of the feed's answer
            await store.revoke(Revocation("token_id", f"bulk-{i}", now, now + 600))
        await store.revoke(Revocation("user_id", "bulk-last", now, now + 600))

    asyncio.run(revoke_many())
    for url in (first, last):
        resp = _first_answer_other_than(url, 200, 10)
        assert resp.status_code == 403
        assert resp.headers["x-playgate-reason"] == "revoked"


# --- Playback sessions opened in nginx --------------------------------------------------------

SESSIONS = KEYRING.with_context(SESSION_CONTEXT)
# What the shield's redirect says besides where it goes (shield.session_redirect).
REDIRECT_HEADERS = ("x-playgate-token-id", "cache-control", "referrer-policy", "content-length")


def _opening(edge: Edge, mode: str = "path", **fields: Any) -> str:
    request = PlaybackRequest("demo", 600, file="master.m3u8", session_seconds=3600, **fields)
    return issue(request, KEYRING, time.time(), public_url=edge.url, mode=mode).url


def _session_token(location: str) -> str:
    if location.startswith("/s/"):
        return location.split("/")[2]
    return location.rpartition("session=")[2]


def _redirects(edge: Edge, url: str) -> tuple[httpx.Response, httpx.Response]:
    """nginx's answer and the shield's (Python's) for one start-token manifest, in one second,
    nginx's decided in nginx (the shield not asked)."""
    target = url.removeprefix(edge.url)
    for _ in range(20):
        second, shield = int(time.time()), shielded(edge)
        native = httpx.get(url, timeout=10)
        in_nginx = shielded(edge) == shield
        python = httpx.get(edge.validator_url + target, headers={REAL_IP: "127.0.0.1"}, timeout=10)
        # Both expiries counted from the same second. The shield answers instead when nginx's
        # view was not fresh at that instant (a loaded machine can delay a feed poll).
        if int(time.time()) == second and in_nginx:
            return native, python
        time.sleep(0.2)
    pytest.fail("nginx never opened the session itself: " + edge.error_log.read_text()[-2000:])


@pytest.mark.parametrize("mode", ["path", "query"])
def test_nginx_opens_a_session_as_the_shield_does_and_it_plays(edge: Edge, mode: str) -> None:
    for fields in ({}, {"session_id": "sess-42"}, {"client_network": "127.0.0.0/8"}):
        url = _opening(edge, mode, **fields)
        native, python = _redirects(edge, url)
        assert native.status_code == python.status_code == 302
        for name in REDIRECT_HEADERS:
            assert native.headers.get(name) == python.headers.get(name), name
        assert "content-type" not in native.headers
        assert "content-type" not in python.headers
        ours, theirs = native.headers["location"], python.headers["location"]
        mine = open_token(_session_token(ours), SESSIONS)
        shields = open_token(_session_token(theirs), SESSIONS)
        if fields.get("session_id"):
            assert ours == theirs  # nothing random: byte for byte
        else:
            assert mine.session_id != shields.session_id
            assert len(mine.session_id or "") == 16  # secrets.token_urlsafe(12)
            assert mine._replace(session_id=None) == shields._replace(session_id=None)
            assert ours.replace(_session_token(ours), "") == theirs.replace(
                _session_token(theirs), ""
            )
        # The session URL plays, decided in nginx and in Python.
        asked = checks(edge)
        played = httpx.get(edge.url + ours, timeout=10)
        assert played.status_code == 200
        assert b"#EXTM3U" in played.content
        if mode == "path":
            assert checks(edge) == asked
        child = "hls/v0/index.m3u8"
        base = ours.split("?")[0].rsplit("/", 1)[0]
        if mode == "path":
            assert httpx.get(f"{edge.url}{base}/{child}", timeout=10).status_code == 200
        direct = httpx.get(edge.validator_url + ours, headers={REAL_IP: "127.0.0.1"}, timeout=10)
        assert direct.status_code == 200


def test_an_allow_in_nginx_reaches_the_origin_cache_and_log_as_the_maps_would_send_it(
    edge: Edge, media_root: Path
) -> None:
    """On an allow the native verifier sets $pg_origin_path and $pg_is_manifest itself (the
    template's maps of the raw URI then never run): the origin, the cache, Cache-Control and
    the access log get what those maps give, for manifest suffixes in any case, a name that
    only ends like one, segments, and the token in the path or the query."""
    demo = media_root / "videos" / "demo"
    copies = {
        "hls/v0/Upper.M3U8": "hls/v0/index.m3u8",
        "dash/Upper.mPd": "dash/manifest.mpd",
        "hls/v0/notm3u8": "hls/v0/index.m3u8",
        "hls/v1/allow_1.ts": "hls/v1/seg_001.ts",
        "hls/v1/allow_2.ts": "hls/v1/seg_002.ts",
        "hls/v1/allow_3.ts": "hls/v1/seg_000.ts",
    }
    for copy, source in copies.items():
        shutil.copy(demo / source, demo / copy)
    session = _session_token(httpx.get(_opening(edge), timeout=10).headers["location"])
    start = signed(edge, "hls/v1/allow_3.ts").removeprefix(edge.url)
    files = ("hls/v0/index.m3u8", "hls/v0/Upper.M3U8", "dash/Upper.mPd", "hls/v0/notm3u8")
    targets = {f"/s/{session}/videos/demo/{file}": f"/videos/demo/{file}" for file in files}
    targets[f"/s/{session}/videos/demo/hls/v1/allow_1.ts"] = "/videos/demo/hls/v1/allow_1.ts"
    targets[f"/videos/demo/hls/v1/allow_2.ts?x=1&session={session}&y"] = (
        "/videos/demo/hls/v1/allow_2.ts"
    )
    targets[start] = "/videos/demo/hls/v1/allow_3.ts"
    in_nginx = 0
    logged = edge.access_log.stat().st_size
    for target, path in targets.items():
        manifest = is_manifest(path)
        fetched = edge.origin_hits.count(path)
        for n in range(2):
            asked = checks(edge)
            resp = httpx.get(edge.url + target, timeout=10)
            in_nginx += checks(edge) == asked
            assert resp.status_code == 200, target
            file = path.removeprefix("/videos/demo/")
            assert resp.content == (demo / copies.get(file, file)).read_bytes()
            assert resp.headers["cache-control"] == (MANIFEST_CACHE if manifest else "private")
            cache = "BYPASS" if manifest else ("MISS", "HIT")[n]
            assert resp.headers["x-playgate-cache"] == cache, target
        assert edge.origin_hits.count(path) - fetched == (2 if manifest else 1), target
    # Decided in nginx, unless its view was not fresh at that instant (a loaded machine can
    # delay a feed poll): then the maps gave the same, as this asserts too.
    assert in_nginx > len(targets)
    time.sleep(0.2)  # nginx writes the log line after the response
    log = edge.access_log.read_text()[logged:]
    assert session not in log
    for path in targets.values():
        assert log.count(f'"GET {path}"') == 2, path


def test_a_start_token_with_limits_still_opens_its_session_in_python(edge: Edge) -> None:
    for fields in ({"max_uses": 3}, {"max_streams": 2, "user_id": "u-lim"}):
        url = _opening(edge, **fields)
        shield = shielded(edge)
        resp = httpx.get(url, timeout=10)
        assert resp.status_code == 302
        assert shielded(edge) == shield + 1
        assert httpx.get(edge.url + resp.headers["location"], timeout=10).status_code == 200


def test_a_revoked_start_token_opens_no_session_in_nginx(edge: Edge, store: MemoryStore) -> None:
    request = PlaybackRequest("demo", 600, file="master.m3u8", session_seconds=3600)
    issued = issue(request, KEYRING, time.time(), public_url=edge.url)
    _revoke(store, "token_id", issued.token_id, time.time())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        resp = httpx.get(issued.url, timeout=10)
        if resp.status_code == 403:
            break
        time.sleep(0.1)
    assert resp.status_code == 403
    assert resp.headers["x-playgate-reason"] == "revoked"


def _python_location(case: Case, session_id: str | None, narrow: bool) -> str | None:
    """Where the shield sends this request (gate.admit), or None when nginx must not open it."""
    client = ClientAddress.parse(case.client) if case.client else None
    try:
        grant = VERIFIER.verify_target(case.target.decode("latin-1"), case.client or None, case.now)
    except PlaybackTokenError:
        return None
    if not opens_session(grant) or grant.claims.max_uses or grant.claims.max_streams:
        return None
    claims = session_claims(
        grant, client, max_session=VERIFIER.max_session, narrow=narrow, session_id=session_id
    )
    return session_location(grant, seal_session(claims, VERIFIER.sessions))


def test_every_session_nginx_opens_is_the_one_python_opens(edge: Edge) -> None:
    batch = [
        (case, narrow)
        for i, case in enumerate(opening_cases(KEYRING, 2000))
        for narrow in ((True, False) if i % 4 == 0 else (i % 2 == 0,))
    ]
    body = "\n".join(f"{c.target.hex()}\t{c.client}\t{c.now!r}\t{int(n)}" for c, n in batch)
    resp = httpx.post(f"{edge.url}/_test/native-open", content=body, timeout=120)
    assert resp.status_code == 200, resp.text[:500]
    opened = resp.text.split("\n")
    assert len(opened) == len(batch)
    fresh_ids = set()
    for (case, narrow), location in zip(batch, opened, strict=True):
        if location == "-":
            # An address nginx cannot narrow a session to (never $remote_addr on a TCP listener):
            # the shield decides, as for everything nginx does not open itself.
            unknown = narrow and ClientAddress.parse(case.client) is None
            assert unknown or _python_location(case, None, narrow) is None, case
            continue
        session = open_token(_session_token(location), SESSIONS)
        target = case.target.decode("latin-1")
        start = VERIFIER.verify_target(target, case.client or None, case.now).claims
        if start.session_id is None:  # nginx's own random id: Python's, given that id
            assert session.session_id is not None
            assert len(session.session_id) == 16
            fresh_ids.add(session.session_id)
        assert location == _python_location(case, session.session_id, narrow), case
    assert len(fresh_ids) > 300  # never the same id twice
    assert sum(location != "-" for location in opened) > len(batch) // 2


def test_hostile_requests_agree_with_python(edge: Edge) -> None:
    # Crafted rather than random: integers past Lua's exact range, ASCII key ids of no key,
    # fields one byte short or long, 2048-character tokens, other base64 spellings, query
    # strings built to confuse the split (native_cases.hostile_cases).
    batch = hostile_cases(KEYRING, 8000)
    outcomes = agreed_outcomes(edge, batch)
    assert outcomes[("allow", "")] > 100, outcomes
    assert {"malformed", "unknown_key", "lifetime_exceeded", "out_of_scope"} <= {
        reason for verdict, reason in outcomes if verdict == "deny"
    }, outcomes


def test_consecutive_requests_never_carry_a_revocation_over_to_the_next_token(
    edge: Edge, store: MemoryStore
) -> None:
    # nginx reuses one claims table and one field table per worker (playgate_native.lua
    # open_token, revoked_fast): a session or user id left from a revoked token must not deny
    # the next token, nor a clean token let the next revoked one through. Keys that only
    # prefix-match a token's ids or video id revoke nothing.
    now = time.time()
    _revoke(store, "session_id", "sid-leak", now)
    _revoke(store, "user_id", "user-leak", now)
    _revoke(store, "video_id", "othe", now)  # a prefix of "other": not its video
    _revoke(store, "session_id", "sid-lea", now)  # a prefix of "sid-leak2": not its session
    time.sleep(1.1)  # issued after the revocations' time, for those that are not exact
    revoked_session = signed(edge, session_id="sid-leak")
    revoked_user_req = PlaybackRequest("demo", 600, file="hls/v0/seg_001.ts", user_id="user-leak")
    # A user revocation covers tokens issued up to its time: this one is issued before it.
    revoked_user = issue(revoked_user_req, KEYRING, now - 5, public_url=edge.url).url
    plain = signed(edge)
    # Issued after its user's revocation: the "u:" key is there, so nginx asks revoked() with
    # this token's claims, which must hold no session id left from the token before it.
    late_user = signed(edge, user_id="user-leak")
    near_session = signed(edge, session_id="sid-leak2", user_id="user-leak2")
    other = issue(
        PlaybackRequest("other", 600, file="hls/v0/seg_001.ts"),
        KEYRING,
        time.time(),
        public_url=edge.url,
    ).url
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # until the feed reached nginx
        if httpx.get(revoked_session, timeout=10).status_code == 403:
            break
        time.sleep(0.05)
    sequence = [revoked_session, plain, revoked_user, near_session, other, revoked_session]
    sequence += [late_user, near_session, revoked_user, plain, other, revoked_user]
    sequence += [revoked_session, late_user, revoked_session]
    expected = {revoked_session: 403, revoked_user: 403, plain: 200, near_session: 200}
    expected[other] = expected[late_user] = 200
    for _ in range(5):
        for url in sequence:
            asked = checks(edge)
            resp = httpx.get(url, timeout=10)
            assert checks(edge) == asked, url  # decided in nginx
            assert resp.status_code == expected[url], (url, resp.status_code, resp.headers)
            if resp.status_code == 403:
                assert resp.headers["x-playgate-reason"] == "revoked"
                assert resp.headers["cache-control"] == "no-store"


def test_field_layout_and_padding_games_agree_with_python(edge: Edge) -> None:
    # The hot paths read optional-claim lengths with the limits in one unpack (token.py), a
    # scope's first byte ahead of its length check, and leave '=' to nginx's decoder plus a
    # byte count (playgate_native.lua b64url_into): native_cases.layout_cases aims at those.
    batch = layout_cases(KEYRING, 6000)
    outcomes = agreed_outcomes(edge, batch)
    assert outcomes[("allow", "")] > 10, outcomes
    assert outcomes[("deny", "malformed")] > 1000, outcomes


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_a_remembered_token_vouches_for_no_other_bytes(edge: Edge) -> None:
    """The memo of authentic tokens (playgate_native.lua memo_open) skips the MAC only for a
    token equal in every byte and in kind to one whose MAC matched. Once a token is
    remembered, each of its bytes changed in turn (same slot where the last MAC bytes stay),
    its body under its own MAC, and its bytes sent as the other kind are all judged as Python
    judges them: refused, never allowed."""
    path = httpx.URL(signed(edge)).path
    token = path.split("/")[2]
    rest = path[len("/t/") + len(token) :]
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    now = time.time()

    def case(prefix: str, data: bytes) -> Case:
        return Case(f"{prefix}{_b64(data)}{rest}".encode(), "127.0.0.1", now)

    valid = case("/t/", raw)
    batch = [valid]
    for i in range(len(raw)):
        batch.append(case("/t/", raw[:i] + bytes([raw[i] ^ 0x01]) + raw[i + 1 :]))
        batch.append(valid)  # remembered again between mutants: each meets a warm slot
    # the other kind; shorter and longer; a byte more or less before the MAC (same slot)
    batch += [case("/s/", raw), case("/t/", raw[:-1]), case("/t/", raw + b"\0")]
    batch += [case("/t/", raw[:-32] + b"\0" + raw[-32:]), case("/t/", raw[:-33] + raw[-32:])]
    batch.append(valid)
    verdicts, hits = verdicts_and_memo_hits(edge, batch)
    for c, native in zip(batch, verdicts, strict=True):
        assert native == python_verdict(VERIFIER, c), c.target
    allowed = [c for c, v in zip(batch, verdicts, strict=True) if v.verdict == "allow"]
    assert allowed == [valid] * (len(raw) + 2)
    # Every repeat of the valid token was authenticated from the memo, no mutant was.
    assert hits == len(raw) + 1


@pytest.fixture(scope="module")
def one_set_store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture(scope="module")
def one_set_edge(
    media_root: Path, one_set_store: MemoryStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Edge]:
    """A native edge whose memo is one set of two slots: every token lands on it."""
    prefix = tmp_path_factory.mktemp("nginx-one-slot")
    with native_edge(media_root, one_set_store, prefix, memo_slots=2) as running:
        yield running


def test_a_revoked_token_never_inherits_the_mark_of_its_slot(
    one_set_edge: Edge, one_set_store: MemoryStore
) -> None:
    """A slot found clean at the feed's count of revocations is marked with it: a token taking
    that slot over is looked up again, though no revocation came since."""
    edge = one_set_edge
    revoked = signed(edge, file="hls/v0/seg_003.ts", user_id="gone")
    _revoke(one_set_store, "user_id", "gone", time.time())
    deadline = time.monotonic() + 10
    while True:  # until nginx itself denies it: the revocation is in its dict, and counted
        asked = checks(edge)
        if httpx.get(revoked, timeout=10).status_code == 403 and checks(edge) == asked:
            break
        assert time.monotonic() < deadline, "the revocation never reached nginx"
        time.sleep(0.05)
    for file in ("hls/v0/seg_001.ts", "hls/v0/seg_002.ts"):
        url = signed(edge, file=file)
        for _ in range(2):  # both slots of the one set: remembered, then found clean
            assert httpx.get(url, timeout=10).status_code == 200
    asked = checks(edge)
    resp = httpx.get(revoked, timeout=10)
    assert (resp.status_code, checks(edge) == asked) == (403, True)
    assert resp.headers["x-playgate-reason"] == "revoked"


def test_a_token_on_the_slot_of_another_is_checked_in_full(one_set_edge: Edge) -> None:
    """With one set, each prefix of the remembered token (its bytes cut short, so its "MAC" is
    bytes of the remembered one) and each other token meets the remembered token's slots: only
    the remembered tokens themselves are authenticated from them, and a new token takes the
    slot used least recently."""
    edge = one_set_edge
    now = time.time()

    def raw_of(url: str) -> tuple[bytes, str]:
        path = httpx.URL(url).path
        token = path.split("/")[2]
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)), path[3 + len(token) :]

    first, rest = raw_of(signed(edge))
    second, _ = raw_of(signed(edge, file="hls/v0/seg_002.ts"))
    third, _ = raw_of(signed(edge, file="hls/v0/seg_003.ts"))

    def case(data: bytes) -> Case:
        return Case(f"/t/{_b64(data)}{rest}".encode(), "127.0.0.1", now)

    batch = [case(first), case(first)]  # remembered, then authenticated from the memo
    batch += [case(first[:cut]) for cut in range(34, len(first))]
    # second takes the other slot, first is used again, third replaces second (used least
    # recently), second then replaces first, first replaces third
    batch += [case(first), case(second), case(second), case(first)]
    batch += [case(third), case(second), case(first)]
    fast_hits = fast_counts(edge)[0]
    verdicts, hits = verdicts_and_memo_hits(edge, batch)
    for c, native in zip(batch, verdicts, strict=True):
        assert native == python_verdict(VERIFIER, c), c.target
    assert [v.verdict for v in verdicts].count("allow") == 9
    assert hits == 4  # first twice, second once, first once more; none after third came
    # The C fast path's memo (its own, as large) judged the same batch the same way.
    assert fast_counts(edge)[0] - fast_hits == 4


def test_the_binary_address_nginx_reads_is_judged_as_its_text(edge: Edge) -> None:
    """Live requests give the verifier $binary_remote_addr (packed_binary), the tests and the
    session opening the address as text (packed_ip): both agree, IPv4-mapped IPv6 included."""
    clients = ["127.0.0.1", "203.0.113.7", "203.0.113.8", "2001:db8::1", "2001:db8:1::1",
               "::ffff:203.0.113.7", "::ffff:203.0.113.9", "::1", "0.0.0.0"]  # fmt: skip
    networks = ["203.0.113.0/30", "203.0.113.7/32", "2001:db8::/48", "127.0.0.0/8"]
    batch = []
    now = time.time()
    for network in networks:
        url = httpx.URL(signed(edge, client_network=network))
        target = url.raw_path
        for client in clients:
            text = Case(target, client, now)
            packed = ipaddress.ip_address(client).packed.hex()
            batch += [text, Case(target, "b:" + packed, now)]
    verdicts = native_verdicts(edge, batch)
    for i in range(0, len(batch), 2):
        assert verdicts[i] == verdicts[i + 1], (batch[i], verdicts[i], verdicts[i + 1])
        assert verdicts[i] == python_verdict(VERIFIER, batch[i]), batch[i]
    assert {v.verdict for v in verdicts} == {"allow", "deny"}


def test_a_second_sight_is_judged_as_the_first(edge: Edge) -> None:
    """A token met again is authenticated from the memo with the claims parsed at its first
    sight (playgate_native.lua open_token): every verdict, reason and token id of a second
    pass over thousands of random, mutated and layout-game requests is still Python's."""
    batch = cases(KEYRING, 3000) + layout_cases(KEYRING, 2000)
    batch += [case for _, case in _vector_cases()]
    verdicts, hits = verdicts_and_memo_hits(edge, batch + batch)
    found = []
    for case, native in zip(batch + batch, verdicts, strict=True):
        python = python_verdict(VERIFIER, case)
        deferred = native.verdict == "defer" and (
            python.verdict == "defer" or b"CAT=" in case.target
        )  # as agreed_outcomes allows
        if native != python and not deferred:
            found.append((case, native, python))
    assert not found, found[:5]
    assert hits > 1000, hits  # the second pass met most authentic tokens in the memo
