"""Cross-origin reads for web players: which page origins may read media and denial reasons.

One policy drives every mode: the ASGI validator (``asgi/cors.py``), Lambda@Edge and the
rendered nginx template. The token, never a cookie, is the credential, so credentials are never
allowed and ``*`` is a safe choice; a list of origins narrows which pages may embed the player.
Standard library only: this module ships in the Lambda@Edge bundle.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import ConfigurationError, CorsRefused
from .protocol import CAT_HEADER, REASON_HEADER, RENEWAL_HEADER

ANY_ORIGIN = "*"
METHODS = ("GET", "HEAD")
# Players send Range for byte-range media (fMP4, EXT-X-BYTERANGE) and a CTA-5007 token in its
# header (CAT renewal by header, docs/cat.md); no other request header.
ALLOWED_HEADERS = ("Range", CAT_HEADER)
# A player reads why it was refused, byte-range answers (Content-Length is safelisted), and a
# CAT renewed in its response header (docs/cat.md).
EXPOSED_HEADERS = (REASON_HEADER, "Content-Range", "Accept-Ranges", CAT_HEADER, RENEWAL_HEADER)
DEFAULT_MAX_AGE = 600
MAX_MAX_AGE = 86400
# scheme://host[:port] exactly as a browser serializes an Origin: lower case, no path, no slash.
_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_ORIGIN = re.compile(rf"https?://(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-f:.]+\])(?::[0-9]{{1,5}})?")


def parse_origins(text: str, name: str = "PLAYGATE_CORS_ORIGINS") -> tuple[str, ...]:
    """``*``, or comma-separated origins (``https://app.example``); anything else is refused."""
    parts = tuple(p.strip() for p in text.split(",") if p.strip())
    if ANY_ORIGIN in parts:
        if len(parts) > 1:
            raise ConfigurationError(f"{name}: '*' allows every origin; list no others with it")
        return parts
    for part in parts:
        if not _ORIGIN.fullmatch(part):
            raise ConfigurationError(
                f"{name}: {part!r} is not an origin like https://app.example or "
                "http://127.0.0.1:8082 (lower case, no path, no trailing slash)"
            )
    return parts


@dataclass(frozen=True)
class CorsPolicy:
    """Empty ``origins``: no CORS header at all (same-origin players, native apps, ffmpeg)."""

    origins: tuple[str, ...] = ()
    max_age: int = DEFAULT_MAX_AGE

    def __post_init__(self) -> None:
        parse_origins(",".join(self.origins))
        if not 0 <= self.max_age <= MAX_MAX_AGE:
            raise ConfigurationError(f"PLAYGATE_CORS_MAX_AGE must be between 0 and {MAX_MAX_AGE}")

    @classmethod
    def from_text(cls, origins: str, max_age: int = DEFAULT_MAX_AGE) -> CorsPolicy:
        return cls(parse_origins(origins), max_age)

    @property
    def enabled(self) -> bool:
        return bool(self.origins)

    @property
    def any_origin(self) -> bool:
        return self.origins == (ANY_ORIGIN,)

    def allowed_origin(self, origin: str | None) -> str | None:
        """The Access-Control-Allow-Origin value for a request from ``origin``, or None."""
        if self.any_origin:
            return ANY_ORIGIN
        if origin is not None and origin in self.origins:
            return origin
        return None

    def response_headers(self, origin: str | None) -> dict[str, str]:
        """Headers for any answer (200, 206, 302, 401, 403...): a player reads every outcome."""
        if not self.enabled:
            return {}
        # A reflected origin varies by request: shared caches must key on it.
        headers = {} if self.any_origin else {"Vary": "Origin"}
        allowed = self.allowed_origin(origin)
        if allowed is not None:
            headers["Access-Control-Allow-Origin"] = allowed
            headers["Access-Control-Expose-Headers"] = ", ".join(EXPOSED_HEADERS)
        return headers

    def preflight(
        self, origin: str | None, method: str, request_headers: str | None
    ) -> dict[str, str]:
        """The headers of a 204 preflight answer; raises CorsRefused (403, no CORS headers)."""
        allowed = self.allowed_origin(origin)
        if allowed is None:
            raise CorsRefused("this origin may not read from the edge")
        if method not in METHODS:
            raise CorsRefused("only GET and HEAD may be sent across origins")
        asked = _header_names(request_headers or "")
        allowed_names = {h.lower(): h for h in ALLOWED_HEADERS}
        if not asked <= allowed_names.keys():
            raise CorsRefused(
                "only the Range and CTA-Common-Access-Token request headers may be sent across "
                "origins"
            )
        headers = {
            "Access-Control-Allow-Origin": allowed,
            "Access-Control-Allow-Methods": ", ".join(METHODS),
            "Access-Control-Max-Age": str(self.max_age),
            "Cache-Control": "no-store",
        }
        if asked:
            # The names asked for, each of them allowed: a browser checks only those.
            headers["Access-Control-Allow-Headers"] = ", ".join(
                h for h in ALLOWED_HEADERS if h.lower() in asked
            )
        if not self.any_origin:
            headers["Vary"] = "Origin"
        return headers


def _header_names(text: str) -> set[str]:
    return {h.strip().lower() for h in text.split(",") if h.strip()}


def is_preflight(method: str, headers: Iterable[tuple[str, str]]) -> bool:
    """OPTIONS with Access-Control-Request-Method; any other OPTIONS is an ordinary request."""
    return method == "OPTIONS" and any(
        k.lower() == "access-control-request-method" for k, _ in headers
    )
