"""Query-token mode: make every child URI of an HLS playlist or a DASH MPD carry the token.

With a path token (``/t/<token>/...``) relative URIs inherit the token by URL resolution. With a
query token they do not: resolving ``seg_000.ts`` against ``index.m3u8?token=T`` drops the
query, the most common cause of 403s on segments. So the origin shield appends ``token=T`` to
child URIs, but only to those a player would fetch from this edge: every URI is resolved the
way a player resolves it (the manifest's own URL, then for DASH the ``Location`` and
``BaseURL`` chain, after XML entity decoding, and ``SegmentTemplate`` identifiers substituted),
and gets the token only when the result is under the shield's public URL (``public_url``, from
configuration, never from the request's Host header). Without a public URL only relative
references are ours, since they resolve to whatever URL the player fetched the manifest from.

Fails closed: whatever a player could read differently from this module (backslashes, control
characters or whitespace in a URI, HLS variables, a ``BaseURL`` or ``Location`` elsewhere, a
DOCTYPE, remote elements, content steering) refuses the whole manifest with ``ManifestError``.
Pure work on text and bytes, no I/O; the formatting of everything not rewritten is preserved.
"""

from __future__ import annotations

import re
import xml.parsers.expat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from .errors import PlayGateError
from .paths import TOKEN_PARAM

_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{1,2048}")
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
# A URI that may go into a manifest we rewrite: printable ASCII, no space, no backslash.
# WHATWG URL parsing (browsers, hls.js, dash.js) reads "\" as "/" and drops tab, CR and LF,
# so "/\evil.example/" and "/<TAB>/evil.example/" name another host there.
_URI_CHARS = re.compile(r"[\x21-\x5b\x5d-\x7e]*")
_HOST_RE = re.compile(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?|\[[0-9a-f:.]+\]")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_ENDS = " \t\r\n"
_MAX_BASES = 64
_MAX_DEPTH = 32  # an MPD is a few levels deep; deeper XML is refused, never recursed into


class ManifestError(PlayGateError):
    """The origin's manifest cannot be rewritten safely; the request is denied."""

    reason = "bad_manifest"
    status = 403


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
    url = _absolute(scheme.group(1), rest) if scheme else None
    if url is None:
        raise ValueError("the public URL must be http(s)://host[:port][/path]")
    return url._replace(path=url.path.rstrip("/"))


def site(public_url: str | None, request_path: str) -> Site:
    """The shield and the manifest's URL, from configuration and the raw request path."""
    if public_url is None:
        # No configured origin: only references relative to the manifest's own URL are ours.
        own = ("", "")
        return Site(own, "/", Url(*own, _remove_dots(request_path)))
    public = parse_public_url(public_url)
    own = (public.scheme, public.authority)
    return Site(own, public.path + "/", Url(*own, _remove_dots(public.path + request_path)))


def _authority(scheme: str, raw: str) -> str | None:
    host, colon, port = raw.lower().rpartition(":") if not raw.endswith("]") else (raw, "", "")
    if not colon:
        host, port = raw.lower(), ""
    # Anything unusual (userinfo, percent-encoding, IDN, an empty host) is simply not ours.
    if not _HOST_RE.fullmatch(host) or (colon and not port.isdigit()):
        return None
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
    """``uri`` without surrounding whitespace; ManifestError if a player could misread it."""
    inner = uri.strip(_ENDS)
    if not _URI_CHARS.fullmatch(inner):
        raise ManifestError(
            "the manifest has a URI with a backslash, whitespace, a control or non-ASCII character"
        )
    if "{$" in inner:  # an HLS variable reference: hls.js would substitute it
        raise ManifestError("the manifest has a URI with a variable ({$...})")
    return inner


def _with_token(uri: str, token: str) -> str:
    base, hash_, fragment = uri.partition("#")
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}{TOKEN_PARAM}={token}{hash_}{fragment}"


def add_token(uri: str, token: str, *, public_url: str | None = None, base_path: str = "/") -> str:
    """``uri`` with ``token=...`` appended (before any fragment) when it points at this edge."""
    _check_token(token)
    where = site(public_url, base_path)
    inner = check_uri(uri)
    if not inner or not where.owns(resolve(inner, where.base)):
        return uri
    return _with_token(inner, token)


def _check_token(token: str) -> None:
    # The token is pasted into playlists and XML: only base64url may go in, no escaping needed.
    if not _TOKEN_RE.fullmatch(token):
        raise ManifestError("the token is not base64url")


# --- HLS -------------------------------------------------------------------------------------

# Line breaks some player reads where another does not (hls.js: a lone CR, U+2028, U+2029),
# and other control characters: refused anywhere in a playlist.
_HLS_BAD_CHARS = re.compile(r"[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]|\r(?!\n)")
# RFC 8216 attribute list: NAME=value pairs, quoted strings never contain '"'.
_HLS_ATTR = r'[A-Z0-9-]+=(?:"[^"]*"|[^",\s]*)'
_HLS_ATTR_LIST = re.compile(rf"{_HLS_ATTR}(?:,{_HLS_ATTR})*")
_HLS_ATTR_ONE = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^",\s]*)')
_HLS_TAG = re.compile(r"#([A-Z0-9-]+):")
# Variables (hls.js substitutes {$name} from EXT-X-DEFINE, even into URIs) and content
# steering (pathway cloning moves URIs, token included, to another host) are not supported.
_HLS_REFUSED_TAGS = ("#EXT-X-DEFINE", "#EXT-X-CONTENT-STEERING")


def rewrite_hls(
    text: str, token: str, *, public_url: str | None = None, base_path: str = "/"
) -> str:
    """Append the token to every URI line and every ``URI="..."`` attribute that is ours."""
    _check_token(token)
    where = site(public_url, base_path)
    if _HLS_BAD_CHARS.search(text):
        raise ManifestError("the playlist has a control character or a bare carriage return")
    if "{$" in text:
        raise ManifestError("the playlist uses variables ({$...}), which are not supported")

    def one(uri: str) -> str:
        inner = check_uri(uri)
        if inner and where.owns(resolve(inner, where.base)):
            return _with_token(inner, token)
        return uri

    out = []
    for i, line in enumerate(text.split("\n")):
        body = line.removesuffix("\r")
        ending = line[len(body) :]
        if i == 0:
            bom, body = ("\ufeff", body[1:]) if body.startswith("\ufeff") else ("", body)
        else:
            bom = ""
        if body.upper().startswith(_HLS_REFUSED_TAGS):
            raise ManifestError("the playlist uses EXT-X-DEFINE or content steering")
        if body.startswith("#"):
            body = _hls_tag(body, one)
        elif body.strip(_ENDS):
            if body[0] in _ENDS:
                # hls.js skips leading spaces, other players read the line otherwise.
                raise ManifestError("the playlist has a URI line starting with whitespace")
            body = one(body)
        out.append(bom + body + ending)
    return "\n".join(out)


def _hls_tag(line: str, one: Callable[[str], str]) -> str:
    tag = _HLS_TAG.match(line)
    payload = line[tag.end() :].rstrip(" \t") if tag else ""
    if not tag or not _HLS_ATTR_LIST.fullmatch(payload):
        # Not an attribute list: fine unless a lenient parser (hls.js) might find a URI in it.
        if re.search(r"URI\s*=", line):
            raise ManifestError("the playlist has a URI attribute that is not well formed")
        return line
    pieces: list[str] = []
    pos = 0
    seen = False
    for attr in _HLS_ATTR_ONE.finditer(payload):
        if attr.group(1) != "URI":
            continue
        value = attr.group(2)
        if seen or not value.startswith('"'):
            raise ManifestError("the playlist has a duplicated or unquoted URI attribute")
        seen = True
        pieces += [payload[pos : attr.start(2) + 1], one(value[1:-1])]
        pos = attr.end(2) - 1
    pieces.append(line[tag.end() + pos :])
    return line[: tag.end()] + "".join(pieces)


# --- DASH ------------------------------------------------------------------------------------

# URI-valued attributes by element; SegmentTemplate's are templates ($Number$ ...).
_DASH_URI_ATTRS = {
    "SegmentTemplate": ("media", "initialization", "index", "bitstreamSwitching"),
    "SegmentURL": ("media", "index"),
    "Initialization": ("sourceURL",),
    "RepresentationIndex": ("sourceURL",),
    "BitstreamSwitching": ("sourceURL",),
}
_DASH_URI_TEXT = ("BaseURL", "Location")
# Remote elements, MPD patches and content steering change the document (or its hosts) after
# this check: not supported in query-token mode.
_DASH_REFUSED_ELEMENTS = ("PatchLocation", "ContentSteering")
_DASH_SCOPES = ("AdaptationSet", "Period", "MPD")
_TEMPLATE = re.compile(r"\$([^$]*)\$")
_NUMERIC_ID = re.compile(r"(Number|Time|SubNumber|Bandwidth)(?:%0[0-9]{1,2}d)?")
_START_TAG = re.compile(rb"<[^\s/>]+((?:\s+[^\s=/>]+\s*=\s*(?:\"[^\"]*\"|'[^']*'))*)\s*/?>")
_RAW_ATTR = re.compile(rb"([^\s=/>]+)\s*=\s*(\"[^\"]*\"|'[^']*')")


@dataclass
class _Node:
    name: str  # local name, without a namespace prefix
    attrs: dict[str, str]
    parent: _Node | None
    start: int  # byte offset of "<"
    tag_end: int  # byte offset after the start tag's ">"
    raw_attrs: dict[str, tuple[int, int]]  # unprefixed name -> span of the quoted raw value
    end: int = -1  # byte offset of "</", or -1 for an empty-element tag (<a/>)
    text: list[str] = field(default_factory=list)
    children: list[_Node] = field(default_factory=list)
    bases: frozenset[Url] = frozenset()

    def ancestors(self) -> Iterator[_Node]:
        node = self.parent
        while node is not None:
            yield node
            node = node.parent

    def descendants(self, name: str) -> Iterator[_Node]:
        for child in self.children:
            if child.name == name:
                yield child
            yield from child.descendants(name)


def _local(name: str) -> str:
    return name.rpartition(":")[2]


def _parse_xml(data: bytes) -> _Node:
    """The MPD as a tree of _Node with byte offsets; ManifestError for anything unusual."""
    if re.search(rb"<!\s*(?:DOCTYPE|ENTITY)", data, re.IGNORECASE):
        raise ManifestError("the MPD has a DOCTYPE or ENTITY declaration")
    parser = xml.parsers.expat.ParserCreate()
    stack: list[_Node] = []
    roots: list[_Node] = []

    def refuse(*_: object) -> None:
        raise ManifestError("the MPD has a DOCTYPE or ENTITY declaration")

    def xml_decl(version: str, encoding: str | None, standalone: int) -> None:
        if encoding is not None and encoding.lower() not in ("utf-8", "utf8"):
            raise ManifestError("the MPD is not UTF-8")

    def start(name: str, attrs: dict[str, str]) -> None:
        at = parser.CurrentByteIndex
        tag = _START_TAG.match(data, at)
        if tag is None:
            raise ManifestError("the MPD has a start tag this parser cannot read")
        raw: dict[str, tuple[int, int]] = {}
        for attr in _RAW_ATTR.finditer(data, tag.start(1), tag.end(1)):
            raw_name = attr.group(1).decode()
            if raw_name == "xml:base" or _local(raw_name) == "href":
                raise ManifestError("the MPD uses xml:base or remote elements (xlink:href)")
            raw[raw_name] = attr.span(2)
        if len(stack) >= _MAX_DEPTH:
            raise ManifestError("the MPD is nested too deeply")
        parent = stack[-1] if stack else None
        node = _Node(_local(name), attrs, parent, at, tag.end(), raw)
        node.end = -1 if tag.group(0).endswith(b"/>") else 0
        if node.name in _DASH_REFUSED_ELEMENTS:
            raise ManifestError("the MPD uses MPD patches or content steering")
        (parent.children if parent else roots).append(node)
        stack.append(node)

    def end(name: str) -> None:
        node = stack.pop()
        if node.end != -1:
            node.end = parser.CurrentByteIndex

    def text(chunk: str) -> None:
        if stack:
            stack[-1].text.append(chunk)

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.XmlDeclHandler = xml_decl
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    try:
        parser.Parse(data, True)
    except xml.parsers.expat.ExpatError:
        raise ManifestError("the MPD is not well-formed XML") from None
    if roots[0].name != "MPD":
        raise ManifestError("the document is not an MPD")
    return roots[0]


def _text_uri(node: _Node, data: bytes) -> str:
    """The URI in a BaseURL or Location element: text only, no comments, CDATA or children."""
    if node.end == -1:
        return ""
    if node.children or b"<" in data[node.tag_end : node.end]:
        raise ManifestError(f"the MPD has a {node.name} with markup inside")
    return check_uri("".join(node.text))


def _set_bases(node: _Node, parents: frozenset[Url], where: Site, data: bytes) -> None:
    """Every element's possible base URLs (one per BaseURL alternative); all must be ours."""
    uris = [_text_uri(child, data) for child in node.children if child.name == "BaseURL"]
    if uris:
        resolved = {resolve(uri, base) for uri in uris for base in parents}
        if not all(where.owns(url) for url in resolved):
            raise ManifestError("the MPD has a BaseURL that is not under this edge's public URL")
        if len(resolved) > _MAX_BASES:
            raise ManifestError("the MPD has too many BaseURL combinations")
        parents = frozenset(url for url in resolved if url is not None)
    node.bases = parents
    for child in node.children:
        _set_bases(child, parents, where, data)


def _substitute(template: str, rep: _Node | None) -> str:
    """A template as a player expands it; numbers are digits, which never change the origin."""
    if template.count("$") % 2:
        raise ManifestError("the MPD has a SegmentTemplate with an unpaired $")

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "":
            return "$"
        numeric = _NUMERIC_ID.fullmatch(name)
        if name == "RepresentationID" and rep is not None and "id" in rep.attrs:
            return rep.attrs["id"]
        if numeric and numeric.group(1) != "Bandwidth":
            return "1"
        if numeric and rep is not None and rep.attrs.get("bandwidth", "").isdigit():
            return rep.attrs["bandwidth"]
        raise ManifestError("the MPD has a SegmentTemplate identifier that cannot be expanded")

    return _TEMPLATE.sub(one, template)


def _contexts(node: _Node) -> list[tuple[frozenset[Url], _Node | None]]:
    """(bases, Representation) pairs a segment URI of ``node`` is resolved in."""
    for ancestor in node.ancestors():
        if ancestor.name == "Representation":
            return [(node.parent.bases if node.parent else ancestor.bases, ancestor)]
        if ancestor.name in _DASH_SCOPES:
            reps = list(ancestor.descendants("Representation"))
            if reps:
                return [(rep.bases, rep) for rep in reps]
            break
    return [(node.parent.bases if node.parent else node.bases, None)]


def _escape(value: str) -> bytes:
    for char, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;")):
        value = value.replace(char, entity)
    return value.replace("'", "&apos;").encode()


def rewrite_dash(
    text: str, token: str, *, public_url: str | None = None, base_path: str = "/"
) -> str:
    """Append the token to segment URIs, BaseURL and Location texts that resolve to this edge."""
    _check_token(token)
    where = site(public_url, base_path)
    data = text.encode("utf-8")
    root = _parse_xml(data)
    edits: list[tuple[int, int, bytes]] = []
    # dash.js resolves against the first Location when there is one; allow either base.
    locations = [c for c in root.children if c.name == "Location"]
    starts = {where.base}
    for location in locations:
        uri = _text_uri(location, data)
        if not uri:
            continue
        url = resolve(uri, where.base)
        if not where.owns(url) or url is None:
            raise ManifestError("the MPD has a Location that is not under this edge's public URL")
        starts.add(url)
        edits.append((location.tag_end, location.end, _escape(_with_token(uri, token))))
    _set_bases(root, frozenset(starts), where, data)
    for node in _walk(root):
        if node.name == "BaseURL":
            uri = _text_uri(node, data)
            if uri:  # every BaseURL is ours by now (_set_bases)
                edits.append((node.tag_end, node.end, _escape(_with_token(uri, token))))
            continue
        names = _DASH_URI_ATTRS.get(node.name, ())
        for raw_name in node.raw_attrs:
            if ":" in raw_name and _local(raw_name) in names:
                raise ManifestError("the MPD has a namespaced URI attribute")
        for name in names:
            if name not in node.attrs or not node.attrs[name].strip(_ENDS):
                continue
            value = check_uri(node.attrs[name])
            templated = node.name == "SegmentTemplate"
            ours = True
            for bases, rep in _contexts(node):
                expanded = check_uri(_substitute(value, rep)) if templated else value
                ours = ours and all(where.owns(resolve(expanded, base)) for base in bases)
            if ours:
                span = node.raw_attrs[name]
                edits.append((span[0] + 1, span[1] - 1, _escape(_with_token(value, token))))
    out = bytearray(data)
    for begin, finish, replacement in sorted(edits, reverse=True):
        out[begin:finish] = replacement
    return out.decode("utf-8")


def _walk(node: _Node) -> Iterator[_Node]:
    yield node
    for child in node.children:
        yield from _walk(child)


def rewrite_manifest(
    path: str,
    body: bytes,
    token: str,
    *,
    public_url: str | None = None,
    base_path: str | None = None,
) -> bytes | None:
    """The rewritten manifest for ``path``, or None when ``path`` is not a manifest.

    ``base_path`` is the raw path the player requested (the manifest's URL, without query).
    """
    lower = path.lower()
    if not lower.endswith((".m3u8", ".mpd")):
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ManifestError("the manifest is not UTF-8") from None
    rewrite = rewrite_hls if lower.endswith(".m3u8") else rewrite_dash
    return rewrite(text, token, public_url=public_url, base_path=base_path or path).encode()
