"""Media CDN's dual-token flow: a short token is exchanged for a long token in Media CDN's own
signed-request formats, which a Media CDN holding the long key's public half would validate and
which PlayGate verifies until the session cap."""

from __future__ import annotations

import base64
import json
from urllib.parse import unquote

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from edge_validator.core.decision import Grant
from edge_validator.core.errors import (
    ConfigurationError,
    Expired,
    LifetimeExceeded,
    SessionRedirectRequired,
    UnknownKey,
)
from edge_validator.formats import mediacdn
from edge_validator.formats.accept import ForeignVerifier
from edge_validator.formats.emit import emit
from edge_validator.formats.keys import FormatKeys
from edge_validator.formats.mediacdn import MediaCdnHmacKey, MediaCdnKey
from edge_validator.formats.mediacdn_dual import DualToken, Exchange
from edge_validator.formats.policy import derived_token_id
from tests.support.formats import NOW, format_keys_json, policy, vectors

HOST = "https://media.example.com"
SCOPE = "/videos/demo/"
DUAL = vectors("mediacdn")["dual_token"]
# The short-token keys: Google's dual-token sample keys (Ed25519 seed and HMAC secret).
SHORT_ED = MediaCdnKey.from_seed("short-ed", DUAL["ed25519_seed"])
SHORT_MAC = MediaCdnHmacKey("short-mac", base64.urlsafe_b64decode(DUAL["hmac_secret"]))
LONG_SEED = base64.urlsafe_b64encode(bytes(range(100, 132))).decode()
LONG = MediaCdnKey.from_seed("long-1", LONG_SEED)
MAX_SESSION = 4 * 3600
KEYS = FormatKeys(
    HOST, mediacdn={"short-ed": SHORT_ED, "short-mac": SHORT_MAC}, mediacdn_long={"long-1": LONG}
)


def verifier() -> ForeignVerifier:
    return ForeignVerifier(KEYS, ("mediacdn",), max_ttl=600, max_session=MAX_SESSION)


def dual() -> DualToken:
    return DualToken(KEYS.mediacdn_long, HOST, max_session=MAX_SESSION)


def short_token(key: MediaCdnKey | MediaCdnHmacKey = SHORT_ED, **fields: object) -> str:
    fields.setdefault("url_prefix", HOST + SCOPE)
    return mediacdn.sign_token(key, NOW + 60, **fields)  # type: ignore[arg-type]


def exchange(target: str, *, redirect: bool = True, now: float = NOW) -> tuple[Grant, Exchange]:
    grant = verifier().authorize(target, {}, None, now)
    assert grant is not None
    found = dual().exchange(target, grant, verifier().opened(target, {}), redirect=redirect)
    assert found is not None
    return grant, found


@pytest.mark.parametrize("key", [SHORT_ED, SHORT_MAC], ids=["ed25519", "hmac-sha256"])
def test_a_manifest_with_a_short_token_is_redirected_to_a_path_component_long_token(
    key: MediaCdnKey | MediaCdnHmacKey,
) -> None:
    target = f"{SCOPE}master.m3u8?lang=en&edge-cache-token={short_token(key, data='tid-1')}"
    _, found = exchange(target)
    location = found.location
    assert location is not None
    prefix = f"{SCOPE}edge-cache-token=Expires={NOW + MAX_SESSION}&KeyName=long-1&Signature="
    assert location.startswith(prefix)
    assert location.endswith("/master.m3u8?lang=en")  # the short token never travels on
    # The redirect sets the long token as a cookie too (players that resolve against the
    # first URL: ffmpeg's DASH demuxer).
    assert found.set_cookie is not None
    assert found.set_cookie.startswith("Edge-Cache-Cookie=URLPrefix=")
    # Relative URIs resolve under the long token, and PlayGate verifies it there until its end.
    segment = location.rsplit("/", 1)[0] + "/hls/v0/seg_001.ts"
    later = verifier().authorize(segment, {}, None, NOW + MAX_SESSION - 5)
    assert later is not None
    assert later.path == f"{SCOPE}hls/v0/seg_001.ts"
    assert later.token_id == found.token_id
    with pytest.raises(Expired):
        verifier().authorize(segment, {}, None, NOW + MAX_SESSION + 60)


def test_the_long_path_token_is_what_media_cdn_validates() -> None:
    """Checked as Google's samples sign a path component (independently of PlayGate's parser):
    Ed25519 over ``<url prefix>edge-cache-token=Expires=<t>&KeyName=<k>``, base64url."""
    _, found = exchange(f"{SCOPE}master.m3u8?edge-cache-token={short_token()}")
    location = found.location
    assert location is not None
    token = location.removeprefix(SCOPE).partition("/")[0]
    signed, _, signature = token.partition("&Signature=")
    public = ed25519.Ed25519PublicKey.from_public_bytes(
        LONG.public().key.public_bytes_raw()  # type: ignore[union-attr]
    )
    public.verify(base64.urlsafe_b64decode(signature), f"{HOST}{SCOPE}{signed}".encode())
    assert signed == f"edge-cache-token=Expires={NOW + MAX_SESSION}&KeyName=long-1"


def test_another_file_is_served_with_the_long_token_as_edge_cache_cookie() -> None:
    _, found = exchange(f"{SCOPE}film.mp4?edge-cache-token={short_token()}")
    assert found.location is None
    header = found.set_cookie
    assert header is not None
    value, _, attributes = header.partition("; ")
    name, _, cookie = value.partition("=")
    assert name == "Edge-Cache-Cookie"
    prefix = base64.urlsafe_b64encode(f"{HOST}{SCOPE}".encode()).decode()
    assert cookie.startswith(f"URLPrefix={prefix}:Expires={NOW + MAX_SESSION}:KeyName=long-1:")
    assert attributes == f"Path={SCOPE}; Max-Age={MAX_SESSION}; HttpOnly; Secure; SameSite=None"
    later = verifier().authorize(f"{SCOPE}film.mp4", {name: cookie}, None, NOW + 3600)
    assert later is not None
    assert later.token_id == derived_token_id("mediacdn", cookie)
    assert later.token_id == found.token_id


def test_the_long_token_covers_the_short_tokens_scope_only() -> None:
    _, found = exchange(f"{SCOPE}master.m3u8?edge-cache-token={short_token()}")
    location = found.location
    assert location is not None
    other = location.replace(SCOPE, "/videos/other/", 1)
    with pytest.raises(Exception, match="signature"):
        verifier().authorize(other, {}, None, NOW)


def test_a_full_path_short_token_is_exchanged_for_its_video() -> None:
    token = short_token(url_prefix=None, full_path=f"{SCOPE}master.m3u8")
    _, found = exchange(f"{SCOPE}master.m3u8?edge-cache-token={token}")
    assert found.location is not None
    assert unquote(found.location).startswith(f"{SCOPE}edge-cache-token=")


def test_a_short_token_bound_to_a_network_is_not_exchanged() -> None:
    """No long format carries IPRanges: the short token plays within its own life, still bound,
    rather than being traded for a long token that plays from anywhere."""
    target = f"{SCOPE}master.m3u8?edge-cache-token={short_token(ip_ranges='192.0.2.0/24')}"
    grant = verifier().authorize(target, {}, "192.0.2.7", NOW)
    assert grant is not None
    assert dual().exchange(target, grant, verifier().opened(target, {}), redirect=True) is None


def not_exchanged(target: str) -> bool:
    grant = verifier().authorize(target, {}, None, NOW)
    assert grant is not None
    return dual().exchange(target, grant, verifier().opened(target, {}), redirect=True) is None


def test_only_short_tokens_are_exchanged() -> None:
    _, found = exchange(f"{SCOPE}master.m3u8?edge-cache-token={short_token()}")
    assert found.location is not None
    # A long token is not renewed: it ends at the session cap.
    assert not_exchanged(found.location)
    # A tilde token signed with a long-token key (only validators hold one) is not exchanged.
    assert not_exchanged(f"{SCOPE}master.m3u8?edge-cache-token={short_token(LONG)}")


def test_where_no_redirect_can_be_answered_a_manifest_is_refused_clearly() -> None:
    with pytest.raises(SessionRedirectRequired):
        exchange(f"{SCOPE}master.m3u8?edge-cache-token={short_token()}", redirect=False)


def test_long_tokens_are_judged_against_the_session_cap_short_ones_against_max_ttl() -> None:
    too_long = mediacdn.sign_path_component(HOST + SCOPE, "a.ts", LONG, NOW + MAX_SESSION + 600)
    with pytest.raises(LifetimeExceeded):
        verifier().authorize(too_long.removeprefix(HOST), {}, None, NOW)
    # The same lifetime from a short-token key: max_ttl (600 s) applies.
    short_key_long_life = mediacdn.sign_path_component(HOST + SCOPE, "a.ts", SHORT_ED, NOW + 3600)
    with pytest.raises(LifetimeExceeded):
        verifier().authorize(short_key_long_life.removeprefix(HOST), {}, None, NOW)


def test_a_long_token_of_an_unknown_key_is_refused() -> None:
    other = MediaCdnKey.from_seed("long-2", base64.urlsafe_b64encode(b"x" * 32).decode())
    url = mediacdn.sign_path_component(HOST + SCOPE, "a.ts", other, NOW + 60)
    with pytest.raises(UnknownKey):
        verifier().authorize(url.removeprefix(HOST), {}, None, NOW)


def test_long_keys_are_configured_apart_and_must_sign() -> None:
    doc = {
        "public_url": HOST,
        "mediacdn": [{"id": "k", "ed25519_seed": DUAL["ed25519_seed"]}],
        "mediacdn_long": [{"id": "long-1", "ed25519_seed": LONG_SEED}],
    }
    keys = FormatKeys.from_json(json.dumps(doc))
    assert set(keys.mediacdn_long) == {"long-1"}
    # A validator's ForeignVerifier keeps only the public half.
    assert "long-1" in ForeignVerifier(keys, ("mediacdn",)).mediacdn_long
    with pytest.raises(ConfigurationError, match="share a key id"):
        FormatKeys.from_json(json.dumps({**doc, "mediacdn_long": doc["mediacdn"]}))
    with pytest.raises(ConfigurationError, match="private key"):
        DualToken(keys.public_only().mediacdn_long, HOST, max_session=60)
    assert "seed" not in repr(DualToken(keys.mediacdn_long, HOST, max_session=60))


@pytest.mark.parametrize(
    "case",
    [c for c in DUAL["tokens"] if "full_path" not in c],
    ids=lambda c: c["id"],
)
def test_googles_published_short_tokens_are_exchanged(case: dict[str, str]) -> None:
    """Google's dual-token samples (python-docs-samples media_cdn/dualtoken_test.py), as an
    app server would hand them out for the host they name, answered with a long token."""
    host = "http://10.20.30.40"
    keys = FormatKeys(
        host,
        mediacdn={"short-ed": SHORT_ED, "short-mac": SHORT_MAC},
        mediacdn_long={"long-1": LONG},
    )
    now = DUAL["expires"] - 30
    target = f"/master.m3u8?edge-cache-token={case['token']}"
    foreign = ForeignVerifier(keys, ("mediacdn",), max_ttl=600)
    grant = foreign.authorize(target, {}, None, now)
    assert grant is not None
    found = DualToken(keys.mediacdn_long, host, max_session=MAX_SESSION).exchange(
        target, grant, foreign.opened(target, {}), redirect=True
    )
    assert found is not None
    assert found.location is not None
    assert found.location.startswith(f"/edge-cache-token=Expires={now + MAX_SESSION}&KeyName=")
    assert found.location.endswith("/master.m3u8")


def test_the_signer_emits_short_tokens_the_edge_exchanges() -> None:
    """``"format": "mediacdn_short"``: the start window as Starts/Expires, the token id as Data,
    the session id and binding copied, signed with the first private mediacdn key."""
    signer_keys = FormatKeys(HOST, mediacdn={"short-ed": SHORT_ED})
    pol = policy(session_id="s-1", ttl=60)
    issued = emit("mediacdn_short", pol, signer_keys, HOST)
    assert issued.url.startswith(f"{HOST}{SCOPE}master.m3u8?edge-cache-token=URLPrefix=")
    assert issued.token_id == "tid-test"
    target = issued.url.removeprefix(HOST)
    grant = verifier().authorize(target, {}, None, NOW)
    assert grant is not None
    assert (grant.token_id, grant.claims.session_id) == ("tid-test", "s-1")
    assert grant.claims.not_before == NOW
    found = dual().exchange(target, grant, verifier().opened(target, {}), redirect=True)
    assert found is not None
    bound = emit("mediacdn_short", policy(client_network="192.0.2.0/24"), signer_keys, HOST)
    bound_grant = verifier().authorize(bound.url.removeprefix(HOST), {}, "192.0.2.9", NOW)
    assert bound_grant is not None
    assert bound_grant.claims.client_network == "192.0.2.0/24"


def test_only_a_grant_for_the_short_token_itself_is_exchanged() -> None:
    """A URL in another format that also carries an ``edge-cache-token`` parameter is judged
    as that format, and never turned into a Media CDN long token (regression)."""
    signer_keys = FormatKeys.from_json(format_keys_json(HOST))
    keys = FormatKeys(
        HOST,
        secure_link=signer_keys.secure_link,
        mediacdn={"short-ed": SHORT_ED},
        mediacdn_long={"long-1": LONG},
    )
    foreign = ForeignVerifier(keys, ("secure_link", "mediacdn"), max_ttl=600)
    url = emit("secure_link", policy(), keys, HOST).url
    target = f"{url.removeprefix(HOST)}?edge-cache-token={short_token()}"
    grant = foreign.authorize(target, {}, None, NOW)
    assert grant is not None
    opened = foreign.opened(target, {})
    assert opened is not None
    assert opened.format == "secure_link"
    assert dual().exchange(target, grant, opened, redirect=True) is None
    # Nor the cookie or a path token: only the query's short token.
    _, found = exchange(f"{SCOPE}master.m3u8?edge-cache-token={short_token()}")
    assert found.set_cookie is not None
    cookie = found.set_cookie.partition("=")[2].partition(";")[0]
    cookies = {"Edge-Cache-Cookie": cookie}
    plain = f"{SCOPE}film.mp4"
    grant = verifier().authorize(plain, cookies, None, NOW)
    assert grant is not None
    assert dual().exchange(plain, grant, verifier().opened(plain, cookies), redirect=True) is None
