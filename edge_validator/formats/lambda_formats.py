"""The foreign formats at Lambda@Edge: the standard library's, verified; the others, refused.

A viewer-request bundle holds the standard library only (1 MB limit, no ``cryptography``). The
shared-secret formats need nothing more, so the function verifies them, with the same
``policy.judge`` rules and the same ``Grant`` as the shield (``foreign_grant``):

- nginx ``secure_link`` (``/sl/<md5>/<expires>/videos/<id>/...``), MD5;
- Akamai EdgeAuth 2.0 (``hdnts`` in the query or a cookie), HMAC-SHA256.

The public-key formats are recognised by their marks and refused with ``unsupported_format``
and a reason, never judged as PlayGate tokens (which would answer a misleading ``missing``):

- CloudFront signed URLs and cookies: CloudFront verifies them itself, before the function
  runs (trusted key groups on the cache behaviour); RSA and ECDSA need ``cryptography``.
- Google Media CDN (Ed25519, and its HMAC short tokens, which share one parser with the Ed25519
  formats): the origin shield verifies them.
- JWT (RS256, ES256, EdDSA, through pyjwt): the origin shield verifies them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.addresses import ClientAddress
from ..core.decision import DEFAULT_LEEWAY, DEFAULT_MAX_TTL, Grant
from ..core.errors import ConfigurationError, UnsupportedFormat
from ..core.protocol import TOKEN_PARAM, TOKEN_PREFIX
from . import akamai, secure_link
from .akamai import AkamaiKey
from .policy import Access, foreign_grant, query_params, query_without
from .secure_link import SecureLinkKey

VERIFIED = ("secure_link", "akamai")
REFUSED = {
    "cloudfront": "CloudFront tokens are verified by CloudFront itself (trusted key groups on "
    "the cache behaviour); the Lambda@Edge bundle has no RSA or ECDSA",
    "mediacdn": "Media CDN tokens are verified by the origin shield; the Lambda@Edge bundle "
    "has no Ed25519",
    "jwt": "JWT playback tokens are verified by the origin shield; the Lambda@Edge bundle has "
    "no RSA, ECDSA or Ed25519",
}
_MEDIACDN_PATH = "/edge-cache-token="


class LambdaFormats:
    """The shared-secret formats' keys baked into the bundle, and the judge's policy."""

    def __init__(
        self,
        secure_link_keys: tuple[SecureLinkKey, ...] = (),
        akamai_keys: tuple[AkamaiKey, ...] = (),
        *,
        max_ttl: int = DEFAULT_MAX_TTL,
        leeway: int = DEFAULT_LEEWAY,
    ) -> None:
        self.secure_link = secure_link_keys
        self.akamai = akamai_keys
        self.max_ttl = max_ttl
        self.leeway = leeway

    def __repr__(self) -> str:
        return f"LambdaFormats(secure_link={len(self.secure_link)}, akamai={len(self.akamai)})"

    @classmethod
    def from_config(cls, doc: Mapping[str, Any], *, max_ttl: int, leeway: int) -> LambdaFormats:
        """``{"secure_link": [{"id", "secret", "bind_client"}], "akamai": [{"id", "key_hex"}]}``,
        the entries of the format keys document that build-lambda bakes."""
        try:
            return cls(
                tuple(
                    SecureLinkKey(e["id"], e["secret"], bool(e.get("bind_client", False)))
                    for e in doc.get("secure_link", [])
                ),
                tuple(AkamaiKey.from_hex(e["id"], e["key_hex"]) for e in doc.get("akamai", [])),
                max_ttl=max_ttl,
                leeway=leeway,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"baked formats: {type(exc).__name__} in an entry") from None

    def authorize(
        self, uri: str, query: str, cookie_header: str | None, client: str | None, now: float
    ) -> Grant | None:
        """A grant for a secure_link or Akamai token; None when the request carries no foreign
        format's mark (a PlayGate token, judged as always); ``UnsupportedFormat`` for the
        others, or for a format whose keys the bundle does not hold.

        The handler asks only about requests PlayGate's own verifier refused (a valid PlayGate
        token never pays for it); substring tests on the raw strings decide whether anything is
        parsed.
        """
        cookie_header = cookie_header or ""
        refused = _refused(uri, query, cookie_header)
        if refused is not None:
            raise UnsupportedFormat(REFUSED[refused])
        if uri.startswith(secure_link.PREFIX):
            return self._secure_link(uri, query, client, now)
        mark = akamai.TOKEN_NAME + "="
        if mark not in query and mark not in cookie_header:
            return None
        token = query_params(query).get(akamai.TOKEN_NAME) or _cookies(cookie_header).get(
            akamai.TOKEN_NAME
        )
        if not token:
            return None
        return self._akamai(token, uri, query_without(query, akamai.TOKEN_NAME), client, now)

    def _secure_link(self, uri: str, query: str, client: str | None, now: float) -> Grant:
        if not self.secure_link:
            raise UnsupportedFormat("this bundle holds no secure_link secret")
        md5, _, origin = secure_link.split(uri)
        access = secure_link.verify(uri, client, self.secure_link)
        return self._grant(access, ("secure_link", md5, origin, query), client, now)

    def _akamai(self, token: str, uri: str, query: str, client: str | None, now: float) -> Grant:
        if not self.akamai:
            raise UnsupportedFormat("this bundle holds no Akamai key")
        access = akamai.verify(token, uri, self.akamai)
        return self._grant(access, ("akamai", token, uri, query), client, now)

    def _grant(
        self, access: Access, opened: tuple[str, str, str, str], client: str | None, now: float
    ) -> Grant:
        address = ClientAddress.parse(client) if client else None
        return foreign_grant(access, opened, address, now, leeway=self.leeway, max_ttl=self.max_ttl)


def _refused(uri: str, query: str, cookie_header: str) -> str | None:
    """The public-key format a request carries, by its marks; None for none."""
    if _MEDIACDN_PATH in uri:
        return "mediacdn"
    if query and ("edge-cache-token=" in query or "Key-Pair-Id=" in query):
        params = query_params(query)
        if "edge-cache-token" in params:
            return "mediacdn"
        if "Key-Pair-Id" in params:
            return "cloudfront"
    if cookie_header and ("Edge-Cache-Cookie=" in cookie_header or "CloudFront-" in cookie_header):
        cookies = _cookies(cookie_header)
        if "Edge-Cache-Cookie" in cookies:
            return "mediacdn"
        if any(name.startswith("CloudFront-") for name in cookies):
            return "cloudfront"
    if uri.startswith(TOKEN_PREFIX):
        token = uri[len(TOKEN_PREFIX) :].partition("/")[0]
    elif query and TOKEN_PARAM + "=" in query:
        token = query_params(query).get(TOKEN_PARAM, "")
    else:
        return None
    # PlayGate tokens are base64url: two dots mean a JWT (header.payload.signature).
    return "jwt" if token.count(".") == 2 else None


def _cookies(header: str) -> dict[str, str]:
    """``Cookie: a=1; b=2`` as CloudFront passes it; the first value of a repeated name."""
    found: dict[str, str] = {}
    for part in header.split(";"):
        name, eq, value = part.strip().partition("=")
        if eq and name:
            found.setdefault(name, value)
    return found
