"""Media CDN's dual-token flow at a PlayGate edge: a short token is exchanged for a long one.

Media CDN gives a viewer a short token (``?edge-cache-token=``, about a minute) that starts
playback; the edge answers it with a long token for the rest of the programme. PlayGate's
playback sessions are the same idea, so the exchange sits where a PlayGate start token opens a
session (``Gate``), and answers the way Media CDN does:

- a manifest (``.m3u8``, ``.mpd``) fetched with a short token: ``302`` to the same path under
  a **path-component** long token, ``<scope>edge-cache-token=Expires=..&KeyName=..&Signature=../
  <rest>``. Players resolve relative URIs against the URL a redirect ends at, so every variant
  playlist and segment carries it (Media CDN's cookieless HLS rewrites the manifest instead;
  the redirect needs no rewriting and works for DASH too);
- any other file: served, with the long token as Media CDN's signed cookie
  (``Set-Cookie: Edge-Cache-Cookie=URLPrefix=..:Expires=..:KeyName=..:Signature=..``). The
  redirect sets the same cookie, for players that resolve a manifest's URIs against the URL
  they were first given rather than the one a redirect ended at (ffmpeg's DASH demuxer; Media
  CDN itself offers DASH with cookies only).

Both are Media CDN's own signed-request formats over the URL prefix ``<public_url><scope>``,
signed with Ed25519 by a key of their own (``mediacdn_long`` in the format keys, Google's
advice: one keyset for short tokens, another for long ones), so a real Media CDN given that
key's public half validates them; ``ForeignVerifier`` verifies them, judged against the session
cap (``PLAYGATE_MAX_SESSION``) instead of ``PLAYGATE_MAX_TTL``. The long token lives
``max_session`` seconds from the exchange (Media CDN's ``tokenTtl``).

What the long token cannot carry: these formats have no field for ``IPRanges``, ``SessionID``
or ``Data``. A short token bound to a network is therefore not exchanged (it plays within its
own life, still bound), rather than traded for an unbound long token. The long token's id is
derived from its signature, like every path token's; the exchange logs it with the short
token's id, and every response it is granted names it in ``X-PlayGate-Token-Id``, so it is
revocable by that id, or by video.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from ..core.decision import Grant
from ..core.errors import ConfigurationError, SessionRedirectRequired
from ..core.protocol import is_manifest
from . import mediacdn
from .accept import Opened
from .mediacdn import MediaCdnKey
from .policy import derived_token_id, query_params

# What a browser needs to send the cookie back only for the video, over HTTPS, from players on
# other origins too (a cross-site XHR sends only SameSite=None cookies).
_COOKIE_ATTRIBUTES_HTTPS = "HttpOnly; Secure; SameSite=None"


class Exchange(NamedTuple):
    """The long token a short token was exchanged for, and how it travels back."""

    token_id: str  # the long token's (derived) id: the path token's for a manifest
    expires_at: int
    location: str | None = None  # a manifest: redirect here (path-component long token)
    set_cookie: str | None = None  # the long token as Media CDN's cookie, on every exchange
    cookie_token_id: str | None = None  # the cookie's (derived) id


class DualToken:
    """Exchanges Media CDN short tokens for long tokens signed with ``key``."""

    def __init__(
        self, keys: Mapping[str, MediaCdnKey], public_url: str, *, max_session: int
    ) -> None:
        private = [k for k in keys.values() if _is_private(k)]
        if not private:
            raise ConfigurationError("mediacdn_long needs a private key (ed25519_seed)")
        self.key = private[0]
        # A short token is never signed with a long-token key: one that is is not exchanged.
        self.long_key_names = frozenset(keys)
        self.public_url = public_url
        self.max_session = max_session

    def __repr__(self) -> str:
        return f"DualToken(key={self.key.key_name!r}, max_session={self.max_session})"

    def exchange(
        self,
        target: str,
        grant: Grant,
        opened: Opened | None,
        *,
        redirect: bool,
    ) -> Exchange | None:
        """The long token for a request a Media CDN short token was granted, else None.

        ``opened``: what ``ForeignVerifier.recognise`` made of the request, so that only a grant
        for a short token is exchanged (never one for another format that happens to carry an
        ``edge-cache-token`` parameter too). ``redirect``: whether the adapter can answer a 302
        (``/auth`` cannot: a manifest there is refused with ``session_redirect_required``, as a
        PlayGate start token is).
        """
        claims = grant.claims
        if not _is_short_token(target, opened) or claims.key_id in self.long_key_names:
            return None
        if claims.client_network is not None:
            return None  # no long format carries IPRanges: it plays within its own life
        scope = claims.scope
        raw_path = grant.target.path
        if not scope.endswith("/") or not raw_path.startswith(scope):
            return None  # an exact token outside a video scope: it plays within its own life
        expires = int(grant.now) + self.max_session
        cookie, cookie_id = self._cookie(scope, expires)
        if not is_manifest(grant.path):
            return Exchange(cookie_id, expires, None, cookie, cookie_id)
        if not redirect:
            raise SessionRedirectRequired(
                "a Media CDN short token is exchanged by a redirect", token_id=grant.token_id
            )
        location, path_id = self._path_token(grant, scope, raw_path, expires)
        return Exchange(path_id, expires, location, cookie, cookie_id)

    def _path_token(self, grant: Grant, scope: str, raw_path: str, expires: int) -> tuple[str, str]:
        url = mediacdn.sign_path_component(
            self.public_url + scope, raw_path[len(scope) :], self.key, expires
        )
        location = url[len(self.public_url) :]
        token = location[len(scope) + len(mediacdn.TOKEN_SEGMENT) :].partition("/")[0]
        query = grant.target.query
        if query:
            location = f"{location}?{query}"
        return location, derived_token_id(mediacdn.FORMAT, token)

    def _cookie(self, scope: str, expires: int) -> tuple[str, str]:
        """The ``Set-Cookie`` value and the cookie token's id."""
        value = mediacdn.sign_cookie(self.public_url + scope, self.key, expires)
        attributes = f"Path={scope}; Max-Age={self.max_session}"
        if self.public_url.startswith("https://"):
            attributes = f"{attributes}; {_COOKIE_ATTRIBUTES_HTTPS}"
        else:
            attributes = f"{attributes}; HttpOnly; SameSite=Lax"
        header = f"{mediacdn.COOKIE}={value}; {attributes}"
        return header, derived_token_id(mediacdn.FORMAT, value)


def _is_short_token(target: str, opened: Opened | None) -> bool:
    """The grant is a Media CDN short token's: recognised as Media CDN, and the token verified
    is the ``edge-cache-token`` query parameter (not a path token, not the cookie)."""
    if opened is None or opened.format != mediacdn.FORMAT:
        return False
    path, _, query = target.partition("?")
    if mediacdn.split_path(path) is not None:
        return False
    return query_params(query).get(mediacdn.SHORT_TOKEN_PARAM) == opened.material


def _is_private(key: MediaCdnKey) -> bool:
    try:
        key.sign("")
    except ValueError:
        return False
    return True
