"""Where a manifest URI points, as a player resolves it, and adding the token to it.

Part of query-token mode (see manifest_rewrite.py): a URI gets the token only when it resolves
under the shield's public URL (or, without one, when it is a relative reference). Anything a
player could read differently from this module is refused with ``BadManifest``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from ..core.errors import BadManifest
from ..core.protocol import MAX_TOKEN_CHARS, TOKEN_CHARS, TOKEN_PARAM

_TOKEN_RE = re.compile(rf"[{TOKEN_CHARS}]{{1,{MAX_TOKEN_CHARS}}}")
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
# A URI that may go into a manifest we rewrite: printable ASCII, no space, no backslash.
# WHATWG URL parsing (browsers, hls.js, dash.js) reads "\" as "/" and drops tab, CR and LF,
# so "/\evil.example/" and "/<TAB>/evil.example/" name another host there.
_URI_CHARS = re.compile(r"[\x21-\x5b\x5d-\x7e]*")
_HOST_RE = re.compile(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?|\[[0-9a-f:.]+\]")
_PORT_RE = re.compile(r"[1-9][0-9]{0,4}")
_DEFAULT_PORTS = {"http": 80, "https": 443}
URI_ENDS = " \t\r\n"


class Url(NamedTuple):
    """A resolved http(s) URL, enough to tell where it points: origin and dot-free path."""

    scheme: str  # "" only for "the URL the manifest was fetched from" when no public URL is set
    authority: str  # lower-case host, ":port" unless the default port
    path: str


@dataclass(frozen=True)
class Site:
    """Where this shield is (``own`` and the path ``prefix`` it serves) and the manifest URL."""

    own: tuple[str, str]
    prefix: str
    base: Url

    def owns(self, url: Url | None) -> bool:
        return (
            url is not None
            and (url.scheme, url.authority) == self.own
            and url.path.startswith(self.prefix)
        )


def parse_public_url(public_url: str) -> Url:
    """The shield's public base URL, normalized; ValueError unless a plain http(s) URL."""
    if not _URI_CHARS.fullmatch(public_url) or "?" in public_url or "#" in public_url:
        raise ValueError("the public URL must be a plain http(s) URL without query or fragment")
    scheme = _SCHEME_RE.match(public_url)
    rest = public_url[scheme.end() :] if scheme else ""
    try:
        url = _absolute(scheme.group(1), rest) if scheme else None
    except BadManifest:
        url = None
    if url is None:
        raise ValueError("the public URL must be http(s)://host[:port][/path]")
    return url._replace(path=url.path.rstrip("/"))


def site(public: Url | None, request_path: str) -> Site:
    """The shield and the manifest's URL, from configuration and the raw request path."""
    if public is None:
        # No configured origin: only references relative to the manifest's own URL are ours.
        own = ("", "")
        return Site(own, "/", Url(*own, _remove_dots(request_path)))
    own = (public.scheme, public.authority)
    return Site(own, public.path + "/", Url(*own, _remove_dots(public.path + request_path)))


def _authority(scheme: str, raw: str) -> str | None:
    host, colon, port = raw.lower().rpartition(":") if not raw.endswith("]") else (raw, "", "")
    if not colon:
        host, port = raw.lower(), ""
    # Anything unusual (userinfo, percent-encoding, IDN, an empty host) is simply not ours.
    if not _HOST_RE.fullmatch(host) or (colon and not port.isdigit()):
        return None
    if colon and not _PORT_RE.fullmatch(port):
        # Leading zeros or more digits than a port has: players read "0…0443" as 443, a
        # 4,301-digit number is beyond int(). Ambiguous: refused, never guessed.
        raise BadManifest("a URI has a port with leading zeros or more than five digits")
    number = int(port) if port else _DEFAULT_PORTS[scheme]
    if number > 65535:
        return None
    return host if number == _DEFAULT_PORTS[scheme] else f"{host}:{number}"


def _absolute(scheme: str, rest: str) -> Url | None:
    """``scheme:rest`` as a Url when it is http(s)://authority..., else None (not ours)."""
    scheme = scheme.lower()
    if scheme not in _DEFAULT_PORTS or not rest.startswith("//"):
        # Other schemes (data:, skd:) and "https:host/x" (read differently by different
        # parsers) never point at this edge.
        return None
    stops = [at for at in (rest.find(stop, 2) for stop in "/?#") if at != -1]
    end = min(stops, default=len(rest))
    authority = _authority(scheme, rest[2:end])
    if authority is None:
        return None
    return Url(scheme, authority, _remove_dots(_path_of(rest[end:]) or "/"))


def _path_of(reference: str) -> str:
    return re.split(r"[?#]", reference, maxsplit=1)[0]


def _remove_dots(path: str) -> str:
    # WHATWG also reads %2e as a dot in dot segments.
    out: list[str] = []
    segments = path.split("/")
    for i, segment in enumerate(segments):
        dots = segment.lower().replace("%2e", ".")
        last = i == len(segments) - 1
        if dots == ".":
            if last:
                out.append("")
        elif dots == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(segment)
    return "/".join(out) if out and out[0] == "" else "/" + "/".join(out)


def resolve(reference: str, base: Url) -> Url | None:
    """``reference`` (already checked) resolved against ``base``; None: not an http(s) URL."""
    scheme = _SCHEME_RE.match(reference)
    if scheme:
        return _absolute(scheme.group(1), reference[scheme.end() :])
    if reference.startswith("//"):
        # A network-path reference takes the manifest's scheme: unknown without a public URL.
        return _absolute(base.scheme, reference) if base.scheme else None
    path = _path_of(reference)
    if path.startswith("/"):
        return base._replace(path=_remove_dots(path))
    if not path:
        return base
    return base._replace(path=_remove_dots(base.path[: base.path.rfind("/") + 1] + path))


def check_uri(uri: str) -> str:
    """``uri`` without surrounding whitespace; BadManifest if a player could misread it."""
    inner = uri.strip(URI_ENDS)
    if not _URI_CHARS.fullmatch(inner):
        raise BadManifest(
            "the manifest has a URI with a backslash, whitespace, a control or non-ASCII character"
        )
    if "{$" in inner:  # an HLS variable reference: hls.js would substitute it
        raise BadManifest("the manifest has a URI with a variable ({$...})")
    return inner


def with_token(uri: str, token: str) -> str:
    base, hash_, fragment = uri.partition("#")
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}{TOKEN_PARAM}={token}{hash_}{fragment}"


def add_token(uri: str, token: str, *, public_url: Url | None = None, base_path: str = "/") -> str:
    """``uri`` with ``token=...`` appended (before any fragment) when it points at this edge."""
    check_token(token)
    where = site(public_url, base_path)
    inner = check_uri(uri)
    if not inner or not where.owns(resolve(inner, where.base)):
        return uri
    return with_token(inner, token)


def check_token(token: str) -> None:
    # The token is pasted into playlists and XML: only base64url may go in, no escaping needed.
    if not _TOKEN_RE.fullmatch(token):
        raise BadManifest("the token is not base64url")


# --- HLS -------------------------------------------------------------------------------------
