"""The Lambda@Edge viewer-request handler, driven by CloudFront event documents."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from edge_validator.core.decision import Verifier
from edge_validator.core.keyring import KeyRing
from edge_validator.lambda_edge import make_handler
from tests.support import factories
from tests.support.factories import TESTS

EVENTS = TESTS / "events"
NOW = 1_900_000_000.0


def mint(keyring: KeyRing, *, ttl: int = 300, **extra: Any) -> str:
    return factories.token(keyring, now=NOW - 10, ttl=ttl + 10, token_id="tid-lambda", **extra)


def load_event(name: str, token: str) -> dict[str, Any]:
    text = (EVENTS / name).read_text().replace("__TOKEN__", token)
    event: dict[str, Any] = json.loads(text)
    return event


def request_of(event: dict[str, Any]) -> dict[str, Any]:
    request: dict[str, Any] = event["Records"][0]["cf"]["request"]
    return request


def run(keyring: KeyRing, event: dict[str, Any], now: float = NOW) -> dict[str, Any]:
    verifier = factories.verifier(keyring)
    return make_handler(lambda: verifier, lambda: now)(event, None)


def assert_denied(result: dict[str, Any], status: str, reason: str) -> None:
    assert result["status"] == status
    headers = result["headers"]
    assert all(key == key.lower() for key in headers)
    assert headers["cache-control"] == [{"key": "Cache-Control", "value": "no-store"}]
    assert headers["x-playgate-reason"] == [{"key": "X-PlayGate-Reason", "value": reason}]
    assert json.loads(result["body"])["error"] == reason
    assert "uri" not in result


def test_path_token_is_stripped_and_request_forwarded(keyring: KeyRing) -> None:
    token = mint(keyring)
    event = load_event("viewer-request-path-token.json", token)
    original = copy.deepcopy(event)
    result = run(keyring, event)
    assert result["uri"] == "/videos/demo/master.m3u8"
    assert result["querystring"] == ""
    assert result["headers"] == request_of(original)["headers"]
    assert result["clientIp"] == "203.0.113.178"
    assert token not in json.dumps(result)
    assert event == original  # the event itself is left alone


def test_other_query_parameters_are_kept(keyring: KeyRing) -> None:
    token = mint(keyring)
    result = run(keyring, load_event("viewer-request-querystring.json", token))
    assert result["uri"] == "/videos/demo/hls/v0/index.m3u8"
    assert result["querystring"] == "_HLS_msn=3&lang=en"


def test_query_token_is_removed_from_the_querystring(keyring: KeyRing) -> None:
    token = mint(keyring)
    result = run(keyring, load_event("viewer-request-query-token.json", token))
    assert result["uri"] == "/videos/demo/hls/v0/seg_000.ts"
    assert result["querystring"] == "lang=en&cmcd=br%3D800"
    assert token not in json.dumps(result)


def test_ipv6_client_inside_the_bound_network(keyring: KeyRing) -> None:
    token = mint(keyring, client_network="2001:db8:85a3::/48")
    result = run(keyring, load_event("viewer-request-ipv6.json", token))
    assert result["uri"] == "/videos/demo/dash/manifest.mpd"


def test_ipv6_client_outside_the_bound_network(keyring: KeyRing) -> None:
    token = mint(keyring, client_network="2001:db8:9999::/48")
    result = run(keyring, load_event("viewer-request-ipv6.json", token))
    assert_denied(result, "403", "ip_mismatch")


def test_ipv4_bound_token_never_matches_an_ipv6_client(keyring: KeyRing) -> None:
    token = mint(keyring, client_network="203.0.113.0/24")
    assert_denied(run(keyring, load_event("viewer-request-ipv6.json", token)), "403", "ip_mismatch")


def test_missing_token_is_401(keyring: KeyRing) -> None:
    event = load_event("viewer-request-path-token.json", "x")
    request_of(event)["uri"] = "/videos/demo/master.m3u8"
    assert_denied(run(keyring, event), "401", "missing")


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda r, t: r.update(uri=f"/t/{t}/videos/other/master.m3u8"), "out_of_scope"),
        (lambda r, t: r.update(uri=f"/t/{t}/videos/demo/../other/x.ts"), "bad_path"),
        (lambda r, t: r.update(uri=f"/t/{t}/videos/demo/%2e%2e/x.ts"), "bad_path"),
        (lambda r, t: r.update(uri=f"/t/{t[:-4]}AAAA/videos/demo/master.m3u8"), "bad_signature"),
        (lambda r, t: r.update(querystring=f"token={t}"), "malformed"),
        (lambda r, t: r.update(querystring="Token=abc"), "malformed"),
    ],
)
def test_bad_requests_are_denied(keyring: KeyRing, mutate: Any, reason: str) -> None:
    token = mint(keyring)
    event = load_event("viewer-request-path-token.json", token)
    mutate(request_of(event), token)
    assert_denied(run(keyring, event), "403", reason)


def test_expired_and_not_yet_valid(keyring: KeyRing) -> None:
    event = load_event("viewer-request-path-token.json", mint(keyring, ttl=60))
    assert_denied(run(keyring, event, now=NOW + 600), "403", "expired")
    assert_denied(run(keyring, event, now=NOW - 600), "403", "not_yet_valid")


def test_unknown_key(keyring: KeyRing) -> None:
    other = KeyRing({"k9": b"Z" * 32}, "k9")
    event = load_event(
        "viewer-request-path-token.json", factories.token(other, now=NOW, key_id="k9")
    )
    assert_denied(run(keyring, event), "403", "unknown_key")


def test_tokens_needing_shared_state_are_refused(keyring: KeyRing) -> None:
    event = load_event("viewer-request-path-token.json", mint(keyring, max_uses=3))
    assert_denied(run(keyring, event), "403", "state_unavailable")


def test_only_get_and_head(keyring: KeyRing) -> None:
    event = load_event("viewer-request-path-token.json", mint(keyring))
    request_of(event)["method"] = "POST"
    result = run(keyring, event)
    assert_denied(result, "405", "method_not_allowed")
    assert result["headers"]["allow"][0]["value"] == "GET, HEAD"
    request_of(event)["method"] = "HEAD"
    assert run(keyring, event)["uri"] == "/videos/demo/master.m3u8"


def test_a_broken_event_or_key_ring_denies(keyring: KeyRing) -> None:
    assert_denied(run(keyring, {"Records": []}), "403", "internal_error")

    def no_keyring() -> Verifier:
        raise OSError("bundle has no key ring")

    event = load_event("viewer-request-path-token.json", mint(keyring))
    result = make_handler(no_keyring, lambda: NOW)(event, None)
    assert_denied(result, "403", "internal_error")


def test_denied_body_never_echoes_the_token(keyring: KeyRing) -> None:
    token = mint(keyring)
    event = load_event("viewer-request-path-token.json", token)
    request_of(event)["uri"] = f"/t/{token}/videos/other/x.ts"
    assert token not in json.dumps(run(keyring, event))


def test_the_baked_policy_applies_the_longest_lifetime() -> None:
    """Lambda@Edge applies PLAYGATE_MAX_TTL too: it is baked into the bundle's configuration."""
    import json as _json

    from edge_validator.core.keyring import encode_secret
    from edge_validator.lambda_edge import verifier_from_config

    ring = factories.keyring()
    config = {"keys": {"k1": encode_secret(factories.SECRET_A)}, "max_ttl": 600, "leeway": 0}
    verifier = verifier_from_config(_json.dumps(config))
    long_lived = mint(ring, ttl=3000)
    event = load_event("viewer-request-path-token.json", long_lived)
    result = make_handler(lambda: verifier, lambda: NOW)(event, None)
    assert_denied(result, "403", "lifetime_exceeded")
    short = load_event("viewer-request-path-token.json", mint(ring, ttl=300))
    assert (
        make_handler(lambda: verifier, lambda: NOW)(short, None)["uri"]
        == "/videos/demo/master.m3u8"
    )


# --- playback sessions ------------------------------------------------------------------------


def test_a_start_token_manifest_is_answered_with_a_session_redirect(keyring: KeyRing) -> None:
    token = mint(keyring, session_seconds=3600)
    result = run(keyring, load_event("viewer-request-path-token.json", token))
    assert result["status"] == "302"
    headers = result["headers"]
    assert all(key == key.lower() for key in headers)
    assert headers["cache-control"] == [{"key": "Cache-Control", "value": "no-store"}]
    location = headers["location"][0]["value"]
    assert location.startswith("/s/")
    assert location.endswith("/videos/demo/master.m3u8")
    assert token not in json.dumps(result)
    assert "uri" not in result  # a generated response, never forwarded

    # The player follows it: the session request goes on to the origin without the token.
    follow = load_event("viewer-request-path-token.json", "x")
    request_of(follow)["uri"] = location
    forwarded = run(keyring, follow, NOW + 600)  # long after the start window
    assert forwarded["uri"] == "/videos/demo/master.m3u8"
    segment = load_event("viewer-request-path-token.json", "x")
    request_of(segment)["uri"] = location.replace("master.m3u8", "seg_001.ts")
    assert run(keyring, segment, NOW + 600)["uri"] == "/videos/demo/seg_001.ts"


def test_the_session_is_bound_to_the_viewer_network(keyring: KeyRing) -> None:
    token = mint(keyring, session_seconds=3600)
    location = run(keyring, load_event("viewer-request-path-token.json", token))["headers"][
        "location"
    ][0]["value"]
    elsewhere = load_event("viewer-request-path-token.json", "x")
    request_of(elsewhere)["uri"] = location
    request_of(elsewhere)["clientIp"] = "198.51.100.9"  # the event's viewer is 203.0.113.178
    assert_denied(run(keyring, elsewhere, NOW + 60), "403", "ip_mismatch")
    nearby = load_event("viewer-request-path-token.json", "x")
    request_of(nearby)["uri"] = location
    request_of(nearby)["clientIp"] = "203.0.113.7"  # same /24
    assert "uri" in run(keyring, nearby, NOW + 60)


def test_a_start_token_after_its_window_opens_no_session(keyring: KeyRing) -> None:
    token = mint(keyring, session_seconds=3600)
    late = run(keyring, load_event("viewer-request-path-token.json", token), NOW + 400)
    assert_denied(late, "403", "expired")


def test_a_start_token_is_no_session_token(keyring: KeyRing) -> None:
    token = mint(keyring, session_seconds=3600)
    event = load_event("viewer-request-path-token.json", token)
    request_of(event)["uri"] = request_of(event)["uri"].replace("/t/", "/s/")
    assert_denied(run(keyring, event), "403", "bad_signature")


def test_query_token_sessions_are_refused_clearly(keyring: KeyRing) -> None:
    token = mint(keyring, session_seconds=3600)
    event = load_event("viewer-request-query-token.json", token)
    request_of(event)["uri"] = "/videos/demo/hls/master.m3u8"
    assert_denied(run(keyring, event), "403", "session_redirect_required")
