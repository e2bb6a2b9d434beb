"""nginx secure_link_md5: nginx's documented example, and PlayGate's segment-safe layout."""

from __future__ import annotations

import pytest

from edge_validator.core.errors import (
    BadPath,
    BadSignature,
    ConfigurationError,
    Expired,
    IpMismatch,
    LifetimeExceeded,
    MalformedToken,
    MissingToken,
    OutOfScope,
)
from edge_validator.formats import secure_link
from edge_validator.formats.policy import judge
from edge_validator.formats.secure_link import SecureLinkKey
from tests.support.formats import NOW, SECURE_LINK_SECRET, policy, secure_link_key, vectors


@pytest.mark.parametrize("case", vectors("secure_link")["cases"], ids=lambda c: c["id"])
def test_matches_the_nginx_documentation_example(case: dict[str, str]) -> None:
    url = secure_link.file_url(case["uri"], case["expires"], case["secret"], case["remote_addr"])
    assert url == case["url"]


def test_emitted_scope_url_verifies_for_every_file_of_the_video() -> None:
    key = secure_link_key()
    url = secure_link.emit(policy(), key)
    md5, expires, _ = secure_link.split(url)
    assert url == f"/sl/{md5}/{expires}/videos/demo/master.m3u8"
    for file in ("master.m3u8", "hls/v0/seg_001.ts"):
        access = secure_link.verify(f"/sl/{md5}/{expires}/videos/demo/{file}", None, (key,))
        assert judge(access, f"/videos/demo/{file}", None, NOW) == f"/videos/demo/{file}"
        assert access.scope == "/videos/demo/"
        assert access.token_id is None


def test_another_video_is_a_signature_mismatch_because_the_scope_is_hashed() -> None:
    url = secure_link.emit(policy(), secure_link_key())
    forged = url.replace("/videos/demo/", "/videos/demo2/")
    with pytest.raises(BadSignature):
        secure_link.verify(forged, None, (secure_link_key(),))


def test_a_path_outside_any_video_is_out_of_scope() -> None:
    md5, expires, _ = secure_link.split(secure_link.emit(policy(), secure_link_key()))
    with pytest.raises(OutOfScope):
        secure_link.verify(f"/sl/{md5}/{expires}/etc/passwd", None, (secure_link_key(),))


@pytest.mark.parametrize(
    "rest", ["/videos/demo/../other/x.ts", "/videos/demo/%2e%2e/x", "/videos//demo/x"]
)
def test_ambiguous_paths_are_refused(rest: str) -> None:
    md5, expires, _ = secure_link.split(secure_link.emit(policy(), secure_link_key()))
    with pytest.raises(BadPath):
        secure_link.verify(f"/sl/{md5}/{expires}{rest}", None, (secure_link_key(),))


@pytest.mark.parametrize(
    "path",
    [
        "/videos/demo/x",
        "/sl/",
        "/sl/abc/123/videos/demo/x",
        "/sl/" + "A" * 22 + "/0123/videos/demo/x",
    ],
)
def test_malformed_or_missing(path: str) -> None:
    with pytest.raises((MalformedToken, MissingToken)):
        secure_link.verify(path, None, (secure_link_key(),))


def test_expired_and_too_long_lived_are_judged_like_playgate_tokens() -> None:
    key = secure_link_key()
    url = secure_link.emit(policy(ttl=300), key)
    access = secure_link.verify(url, None, (key,))
    with pytest.raises(Expired):
        judge(access, "/videos/demo/master.m3u8", None, NOW + 400)
    long_lived = secure_link.verify(secure_link.emit(policy(ttl=7200), key), None, (key,))
    with pytest.raises(LifetimeExceeded):
        judge(long_lived, "/videos/demo/master.m3u8", None, NOW, max_ttl=3600)


def test_client_binding_hashes_the_address() -> None:
    key = secure_link_key(bind_client=True)
    url = secure_link.emit(policy(client_network="192.0.2.7/32"), key)
    access = secure_link.verify(url, "192.0.2.7", (key,))
    assert judge(access, "/videos/demo/master.m3u8", "192.0.2.7", NOW)
    with pytest.raises(BadSignature):
        secure_link.verify(url, "192.0.2.8", (key,))
    with pytest.raises(IpMismatch):
        judge(access, "/videos/demo/master.m3u8", "192.0.2.8", NOW)


def test_a_network_wider_than_one_address_cannot_be_expressed() -> None:
    with pytest.raises(ValueError, match="one address"):
        secure_link.emit(policy(client_network="192.0.2.0/24"), secure_link_key(bind_client=True))


def test_rotation_tries_every_secret_and_keys_never_print_their_secret() -> None:
    old = SecureLinkKey("old", "o" * 32)
    url = secure_link.emit(policy(), old)
    assert secure_link.verify(url, None, (secure_link_key(), old)).key_id == "old"
    assert SECURE_LINK_SECRET not in repr(secure_link_key())


@pytest.mark.parametrize("secret", ["short", 'x" ; return 200; #' + "x" * 32, "s" * 31])
def test_secrets_that_are_short_or_would_break_the_nginx_directive_refuse_to_load(
    secret: str,
) -> None:
    with pytest.raises(ConfigurationError):
        SecureLinkKey("k", secret)
