"""The validator side: which foreign formats an edge accepts, recognised by their shape.

``ForeignVerifier.authorize`` looks at a request target (and its cookies) for the marks of an
accepted format: a ``/sl/`` nginx secure_link path, a Media CDN ``edge-cache-token``, a JWT in
PlayGate's token position, CloudFront's ``Signature`` and ``Key-Pair-Id``, Akamai's ``hdnts``.
None found: it returns None and PlayGate's own token is verified as always. Found: the format
authenticates it, ``policy.judge`` applies PlayGate's rules, and the result is a ``Grant`` like
any other, so the same state checks (revocation by token id, video, session) run after it.

Asymmetric signatures (RSA, ECDSA, Ed25519) cost tens of microseconds: authenticated tokens are
remembered, keyed by exactly what was verified, like the ``Verifier``'s memo of PlayGate tokens.
Expiry, scope and address are still judged on every request.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Mapping
from typing import NamedTuple

from ..core.addresses import ClientAddress
from ..core.decision import (
    DEFAULT_LEEWAY,
    DEFAULT_MAX_SESSION,
    DEFAULT_MAX_TTL,
    MEMO_SIZE,
    Grant,
)
from ..core.errors import ConfigurationError, UnknownKey
from ..core.protocol import TOKEN_PARAM, TOKEN_PREFIX
from . import akamai, cloudfront, jwt_playback, mediacdn, secure_link
from .cloudfront import CloudFrontPublicKey
from .jwks import JwksCache
from .keys import FORMATS, FormatKeys, MediaKey
from .policy import Access, foreign_grant, query_params, query_without

Client = ClientAddress | str | None


class Opened(NamedTuple):
    """What a format's shape says about a request, before anything is verified."""

    format: str
    origin_path: str  # raw, the format's token removed
    origin_query: str  # the format's parameters removed
    material: str  # the signature-bearing text: memo key part and derived token id source


class ForeignVerifier:
    """Verifies the foreign formats one validator accepts, with their keys (public halves)."""

    def __init__(
        self,
        keys: FormatKeys,
        accept: tuple[str, ...],
        *,
        max_ttl: int = DEFAULT_MAX_TTL,
        leeway: int = DEFAULT_LEEWAY,
        memo_size: int = MEMO_SIZE,
        jwks: JwksCache | None = None,
        max_session: int = DEFAULT_MAX_SESSION,
    ) -> None:
        unknown = set(accept) - set(FORMATS)
        if unknown:
            raise ConfigurationError(f"unknown formats: {', '.join(sorted(unknown))}")
        keys = keys.public_only()
        # JWT keys may come from the signer's JWKS instead of the keys document.
        missing = [n for n in accept if not getattr(keys, n) and not (n == "jwt" and jwks)]
        if missing:
            raise ConfigurationError(f"no keys for accepted formats: {', '.join(missing)}")
        if {"cloudfront", "mediacdn"} & set(accept) and keys.public_url is None:
            raise ConfigurationError("CloudFront and Media CDN need the format keys' public_url")
        self.keys = keys
        self.accept = frozenset(accept)
        self.max_ttl = max_ttl
        # Media CDN long tokens (dual-token flow) are sessions: judged against the session cap.
        self.max_session = max_session
        self.mediacdn_long = frozenset(keys.mediacdn_long)
        self._mediacdn_keys: dict[str, MediaKey] = {**keys.mediacdn, **keys.mediacdn_long}
        self.leeway = leeway
        self.memo_size = memo_size
        self._memo: OrderedDict[Hashable, Access] = OrderedDict()
        self.jwks = jwks
        self._cloudfront = {
            k: v for k, v in keys.cloudfront.items() if isinstance(v, CloudFrontPublicKey)
        }

    def __repr__(self) -> str:
        return f"ForeignVerifier(accept={sorted(self.accept)})"

    async def authorize_async(
        self, target: str, cookies: Mapping[str, str], client: Client, now: float
    ) -> Grant | None:
        """``authorize``, fetching the signer's JWKS first when it is due: when the copy is old,
        or once more when a JWT names a key id not seen yet (rate-limited by the cache)."""
        jwks = self.jwks
        if jwks is not None and jwks.due(now, unknown_kid=False):
            await self._refresh(jwks, now)
        try:
            return self.authorize(target, cookies, client, now)
        except UnknownKey:
            if jwks is None or not jwks.due(now, unknown_kid=True) or not self._is_jwt(target):
                raise
        await self._refresh(jwks, now)
        return self.authorize(target, cookies, client, now)

    async def _refresh(self, jwks: JwksCache, now: float) -> None:
        if await jwks.refresh(now):
            self._memo.clear()  # nothing verified with a key that may be gone is reused

    def _is_jwt(self, target: str) -> bool:
        path, _, query = target.partition("?")
        opened = self.recognise(path, query, {})
        return opened is not None and opened.format == "jwt"

    def authorize(
        self, target: str, cookies: Mapping[str, str], client: Client, now: float
    ) -> Grant | None:
        """A grant for a request in an accepted foreign format; None when it carries none."""
        if "#" in target:
            return None  # PlayGate's own parser refuses it, with its reason
        path, _, query = target.partition("?")
        opened = self.recognise(path, query, cookies)
        if opened is None:
            return None
        access = self._authenticate(opened, path, query, cookies, client)
        long = access.format == "mediacdn" and access.key_id in self.mediacdn_long
        max_ttl = self.max_session if long else self.max_ttl
        opened_at = (opened.format, opened.material, opened.origin_path, opened.origin_query)
        return foreign_grant(access, opened_at, client, now, leeway=self.leeway, max_ttl=max_ttl)

    def opened(self, target: str, cookies: Mapping[str, str]) -> Opened | None:
        """What ``authorize`` recognised in a request target (the format and its token)."""
        path, _, query = target.partition("?")
        return self.recognise(path, query, cookies)

    def recognise(self, path: str, query: str, cookies: Mapping[str, str]) -> Opened | None:
        accept = self.accept
        params = query_params(query)
        if "secure_link" in accept and path.startswith(secure_link.PREFIX):
            md5, _, origin = secure_link.split(path)
            return Opened("secure_link", origin, query, md5)
        if "mediacdn" in accept:
            found = self._mediacdn(path, query, params, cookies)
            if found is not None:
                return found
        if "jwt" in accept:
            found = _jwt(path, query, params)
            if found is not None:
                return found
        if "cloudfront" in accept and (
            ("Signature" in params and "Key-Pair-Id" in params)
            or cloudfront.COOKIE_PREFIX + "Signature" in cookies
        ):
            in_url = "Signature" in params
            material = params["Signature"] if in_url else cookies["CloudFront-Signature"]
            origin_query = cloudfront.split_query(query)[1] if in_url else query
            return Opened("cloudfront", path, origin_query, material)
        if "akamai" in accept:
            token = params.get(akamai.TOKEN_NAME) or cookies.get(akamai.TOKEN_NAME)
            if token:
                return Opened("akamai", path, query_without(query, akamai.TOKEN_NAME), token)
        return None

    def _mediacdn(
        self, path: str, query: str, params: dict[str, str], cookies: Mapping[str, str]
    ) -> Opened | None:
        parts = mediacdn.split_path(path)
        if parts is not None:
            prefix, token, rest = parts
            return Opened("mediacdn", prefix[:-1] + rest, query, token)
        short = params.get(mediacdn.SHORT_TOKEN_PARAM)
        if short:
            return Opened("mediacdn", path, query_without(query, mediacdn.SHORT_TOKEN_PARAM), short)
        cookie = cookies.get(mediacdn.COOKIE)
        if cookie:
            return Opened("mediacdn", path, query, cookie)
        return None

    def _authenticate(
        self, opened: Opened, path: str, query: str, cookies: Mapping[str, str], client: Client
    ) -> Access:
        name = opened.format
        keys = self.keys
        if name == "secure_link":  # MD5: cheaper than a memo lookup's bookkeeping
            text = client.text if isinstance(client, ClientAddress) else client
            return secure_link.verify(path, text, keys.secure_link)
        if name == "akamai":  # HMAC-SHA256: likewise
            return akamai.verify(opened.material, opened.origin_path, keys.akamai)
        memo_key = _memo_key(opened, path, query, cookies)
        known = self._memo.get(memo_key)
        if known is not None:
            return known
        access = self._verify_asymmetric(opened, path, query, cookies)
        if self.memo_size:
            if len(self._memo) >= self.memo_size:
                self._memo.popitem(last=False)
            self._memo[memo_key] = access
        return access

    def _verify_asymmetric(
        self, opened: Opened, path: str, query: str, cookies: Mapping[str, str]
    ) -> Access:
        keys = self.keys
        public_url = keys.public_url or ""
        if opened.format == "jwt":
            jwt_keys = keys.jwt if self.jwks is None else {**keys.jwt, **self.jwks.keys}
            return jwt_playback.verify(opened.material, jwt_keys)
        if opened.format == "cloudfront":
            return cloudfront.verify(path, query, cookies, self._cloudfront, public_url)
        return mediacdn.verify(path, query, cookies, self._mediacdn_keys, public_url)[0]


def _memo_key(opened: Opened, path: str, query: str, cookies: Mapping[str, str]) -> Hashable:
    """Everything an asymmetric verification read, so a remembered access is only ever reused
    for the very same signed input. A canned CloudFront policy and a Media CDN FullPath token
    cover one URL: the path is part of their key; a scope token's key holds no file name, so
    the segments of a video share one verification."""
    if opened.format == "jwt":
        return ("jwt", opened.material)
    if opened.format == "cloudfront":
        params, rest = cloudfront.split_query(query)
        if not params:
            params = {n: v for n, v in cookies.items() if n.startswith(cloudfront.COOKIE_PREFIX)}
        canned = "Expires" in params or "CloudFront-Expires" in params
        return ("cloudfront", tuple(sorted(params.items())), (path, rest) if canned else None)
    marker = "/" + mediacdn.TOKEN_SEGMENT
    token_prefix = path.partition(marker)[0] if marker in path else None
    full_path = path if opened.material.startswith("FullPath") else None
    return ("mediacdn", opened.material, token_prefix, full_path)


def _jwt(path: str, query: str, params: dict[str, str]) -> Opened | None:
    if path.startswith(TOKEN_PREFIX):
        token, slash, rest = path[len(TOKEN_PREFIX) :].partition("/")
        if slash and jwt_playback.looks_like_jwt(token):
            return Opened("jwt", "/" + rest, query, token)
        return None
    in_query = params.get(TOKEN_PARAM)
    if in_query and jwt_playback.looks_like_jwt(in_query):
        return Opened("jwt", path, query_without(query, TOKEN_PARAM), in_query)
    return None
