"""Query-token mode: make every child URI of an HLS playlist or a DASH MPD carry the token.

With a path token (``/t/<token>/...``) relative URIs inherit the token by URL resolution. With a
query token they do not: resolving ``seg_000.ts`` against ``index.m3u8?token=T`` drops the
query, the most common cause of 403s on segments. So the origin shield appends ``token=T`` to
every URI that resolves to this edge, and leaves URIs for other hosts (and other schemes such as
``data:`` or ``skd:``) untouched. Pure text work, no I/O; formatting is preserved.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from .errors import PlayGateError
from .paths import TOKEN_PARAM

_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{1,2048}")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
# HLS: a quoted URI attribute in any tag (EXT-X-MEDIA, -KEY, -MAP, -I-FRAME-STREAM-INF, ...).
_HLS_URI_ATTR = re.compile(r'(?<=[:,])(URI=")([^"]*)(")')
# DASH: URI-valued attributes of the elements that carry them, and BaseURL text.
_DASH_ELEMENT = re.compile(
    r"<(?:[A-Za-z_][\w.-]*:)?(?:SegmentTemplate|SegmentURL|Initialization|RepresentationIndex)\b"
    r"[^>]*>"
)
_DASH_ATTR = re.compile(
    r"(\s(?:media|initialization|index|sourceURL|bitstreamSwitching)\s*=\s*)"
    r"(\"[^\"]*\"|'[^']*')"
)
_DASH_BASE_URL = re.compile(
    r"(<(?:[A-Za-z_][\w.-]*:)?BaseURL\b[^>]*>)([^<]*)(</(?:[A-Za-z_][\w.-]*:)?BaseURL\s*>)"
)


class ManifestError(PlayGateError):
    """The origin's manifest cannot be rewritten safely; the request is denied."""

    reason = "bad_manifest"
    status = 403


def _is_ours(uri: str, own_origin: str | None) -> bool:
    """True when ``uri`` resolves to this edge: relative, root-relative or our own origin."""
    if uri.startswith("//") or _SCHEME_RE.match(uri):
        if own_origin is None:
            return False
        parts = urlsplit(uri if not uri.startswith("//") else "http:" + uri)
        own = urlsplit(own_origin)
        same_scheme = uri.startswith("//") or parts.scheme.lower() == own.scheme.lower()
        return same_scheme and parts.netloc.lower() == own.netloc.lower()
    return True


def add_token(uri: str, token: str, *, own_origin: str | None = None, amp: str = "&") -> str:
    """``uri`` with ``token=...`` appended (before any fragment) when it points at this edge."""
    stripped = uri.strip()
    if not stripped or not _is_ours(stripped, own_origin):
        return uri
    base, hash_, fragment = stripped.partition("#")
    sep = amp if "?" in base else "?"
    return f"{base}{sep}{TOKEN_PARAM}={token}{hash_}{fragment}"


def _check_token(token: str) -> None:
    # The token is pasted into playlists and XML: only base64url may go in, no escaping needed.
    if not _TOKEN_RE.fullmatch(token):
        raise ManifestError("the token is not base64url")


def rewrite_hls(text: str, token: str, *, own_origin: str | None = None) -> str:
    """Append the token to every URI line and every ``URI="..."`` attribute of a playlist."""
    _check_token(token)

    def attr(match: re.Match[str]) -> str:
        return match.group(1) + add_token(match.group(2), token, own_origin=own_origin) + '"'

    out = []
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        ending = line[len(body) :]
        if body.startswith("#"):
            body = _HLS_URI_ATTR.sub(attr, body)
        elif body.strip():
            body = add_token(body, token, own_origin=own_origin)
        out.append(body + ending)
    return "".join(out)


def rewrite_dash(text: str, token: str, *, own_origin: str | None = None) -> str:
    """Append the token to SegmentTemplate/SegmentURL/... URI attributes and BaseURL texts."""
    _check_token(token)

    def one(uri: str) -> str:
        # Inside XML an ampersand is written &amp;.
        return add_token(uri, token, own_origin=own_origin, amp="&amp;")

    def attr(match: re.Match[str]) -> str:
        quoted = match.group(2)
        return f"{match.group(1)}{quoted[0]}{one(quoted[1:-1])}{quoted[0]}"

    def element(match: re.Match[str]) -> str:
        return _DASH_ATTR.sub(attr, match.group(0))

    def base_url(match: re.Match[str]) -> str:
        return match.group(1) + one(match.group(2)) + match.group(3)

    return _DASH_BASE_URL.sub(base_url, _DASH_ELEMENT.sub(element, text))


def rewrite_manifest(
    path: str, body: bytes, token: str, *, own_origin: str | None = None
) -> bytes | None:
    """The rewritten manifest for ``path``, or None when ``path`` is not a manifest."""
    lower = path.lower()
    if not lower.endswith((".m3u8", ".mpd")):
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ManifestError("the manifest is not UTF-8") from None
    if lower.endswith(".m3u8"):
        return rewrite_hls(text, token, own_origin=own_origin).encode("utf-8")
    return rewrite_dash(text, token, own_origin=own_origin).encode("utf-8")
