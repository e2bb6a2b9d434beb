"""The signer side: one policy emitted in the format a CDN verifies (``"format"`` on a request).

Every emitter signs with the first private key listed for its format. The result says where the
token travels (the URL, and for CloudFront also the cookies its segments need) and which token
id names it: the policy's own where the format carries one (Akamai ``id``, JWT ``jti``), else
the id a validator derives from the signature, so the revocation API can revoke it either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, TypeVar

from cryptography.hazmat.primitives.asymmetric import ed25519

from ..core.errors import ConfigurationError
from . import akamai, cloudfront, jwt_playback, mediacdn, secure_link
from .cloudfront import CloudFrontSigningKey
from .keys import FORMATS, FormatKeys
from .mediacdn import MediaCdnKey
from .policy import Policy, derived_token_id

# What the signer emits: every format, and Media CDN's dual-token short token (its keys are the
# mediacdn keys; a validator accepting "mediacdn" verifies it and exchanges it for a long token).
MEDIACDN_SHORT = "mediacdn_short"
EMIT_FORMATS = (*FORMATS, MEDIACDN_SHORT)


def keys_of(format_name: str) -> str:
    """The format whose keys sign ``format_name``."""
    return "mediacdn" if format_name == MEDIACDN_SHORT else format_name


class Emitted(NamedTuple):
    url: str
    token: str
    token_id: str
    cookies: dict[str, str]


def emit(format_name: str, policy: Policy, keys: FormatKeys, public_url: str) -> Emitted:
    """``policy`` as a ``format_name`` URL under ``public_url`` (the edge viewers fetch from)."""
    base = keys.public_url or public_url
    if format_name == "secure_link":
        path = secure_link.emit(policy, _first(keys.secure_link, format_name))
        md5 = path.split("/")[2]
        return Emitted(public_url + path, md5, derived_token_id(format_name, md5), {})
    if format_name == "akamai":
        token = akamai.emit(policy, _first(keys.akamai, format_name))
        url = f"{public_url}{policy.entry_path}?{akamai.TOKEN_NAME}={token}"
        return Emitted(url, token, policy.token_id, {})
    if format_name == "cloudfront":
        signing = [k for k in keys.cloudfront.values() if isinstance(k, CloudFrontSigningKey)]
        cf_key = _first(signing, format_name)
        # One signature for both (ECDSA signatures differ each time): one token id.
        params = cloudfront.signed_params(policy, cf_key, base)
        url = f"{base}{policy.entry_path}?" + "&".join(f"{n}={v}" for n, v in params.items())
        cookies = {cloudfront.COOKIE_PREFIX + n: v for n, v in params.items()}
        signature = params["Signature"]
        return Emitted(url, signature, derived_token_id(format_name, signature), cookies)
    if format_name == "mediacdn":
        ed = [k for k in keys.mediacdn.values() if isinstance(k, MediaCdnKey)]
        url = mediacdn.emit(policy, _first([k for k in ed if _private(k)], format_name), base)
        token = url.split("/" + mediacdn.TOKEN_SEGMENT, 1)[1].split("/", 1)[0]
        return Emitted(url, token, derived_token_id(format_name, token), {})
    if format_name == MEDIACDN_SHORT:
        return _mediacdn_short(policy, keys, base)
    if format_name == "jwt":
        key = _first([k for k in keys.jwt.values() if k.is_private], format_name)
        path = jwt_playback.emit_path(policy, key)
        token = path.split("/")[2]
        return Emitted(public_url + path, token, policy.token_id, {})
    raise ConfigurationError(f"unknown format {format_name!r}")


K = TypeVar("K")


def _mediacdn_short(policy: Policy, keys: FormatKeys, base: str) -> Emitted:
    """A dual-token short token over the video's URL prefix, for the entry file: ``Starts`` and
    ``Expires`` the start window, ``Data`` the token id, ``SessionID`` and ``IPRanges`` copied
    as Media CDN copies them into its long token (PlayGate's shield exchanges a bound one for
    nothing: docs/formats.md)."""
    ed = [k for k in keys.mediacdn.values() if isinstance(k, MediaCdnKey) and _private(k)]
    token = mediacdn.sign_token(
        _first(ed, "mediacdn"),
        policy.expires_at,
        url_prefix=base + policy.scope,
        starts=policy.not_before,
        session_id=policy.session_id,
        data=policy.token_id,
        ip_ranges=policy.client_network,
    )
    url = f"{base}{policy.entry_path}?{mediacdn.SHORT_TOKEN_PARAM}={token}"
    return Emitted(url, token, policy.token_id, {})


def _private(key: MediaCdnKey) -> bool:
    return isinstance(key.key, ed25519.Ed25519PrivateKey)


def _first(keys: Sequence[K], format_name: str) -> K:
    if not keys:
        raise ConfigurationError(f"no signing key for the {format_name} format")
    return keys[0]
