"""Query-token mode for DASH: the token on every child URI of an MPD (see manifest_rewrite).

The MPD is parsed (entities decoded, DOCTYPE refused) only to find URIs and resolve them through
the ``Location`` and ``BaseURL`` chain; the bytes are then edited in place, so everything not
rewritten keeps its formatting.
"""

from __future__ import annotations

import re
import xml.parsers.expat
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..core.errors import BadManifest
from ..core.protocol import TOKEN_PARAM
from .urls import (
    URI_ENDS,
    Site,
    Url,
    check_token,
    check_uri,
    resolve,
    site,
    with_token,
)

_MAX_BASES = 64
_MAX_DEPTH = 32  # an MPD is a few levels deep; deeper XML is refused, never recursed into
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
    """The MPD as a tree of _Node with byte offsets; BadManifest for anything unusual."""
    if re.search(rb"<!\s*(?:DOCTYPE|ENTITY)", data, re.IGNORECASE):
        raise BadManifest("the MPD has a DOCTYPE or ENTITY declaration")
    parser = xml.parsers.expat.ParserCreate()
    stack: list[_Node] = []
    roots: list[_Node] = []

    def refuse(*_: object) -> None:
        raise BadManifest("the MPD has a DOCTYPE or ENTITY declaration")

    def xml_decl(version: str, encoding: str | None, standalone: int) -> None:
        if encoding is not None and encoding.lower() not in ("utf-8", "utf8"):
            raise BadManifest("the MPD is not UTF-8")

    def start(name: str, attrs: dict[str, str]) -> None:
        at = parser.CurrentByteIndex
        tag = _START_TAG.match(data, at)
        if tag is None:
            raise BadManifest("the MPD has a start tag this parser cannot read")
        raw: dict[str, tuple[int, int]] = {}
        for attr in _RAW_ATTR.finditer(data, tag.start(1), tag.end(1)):
            raw_name = attr.group(1).decode()
            if raw_name == "xml:base" or _local(raw_name) == "href":
                raise BadManifest("the MPD uses xml:base or remote elements (xlink:href)")
            raw[raw_name] = attr.span(2)
        if len(stack) >= _MAX_DEPTH:
            raise BadManifest("the MPD is nested too deeply")
        parent = stack[-1] if stack else None
        node = _Node(_local(name), attrs, parent, at, tag.end(), raw)
        node.end = -1 if tag.group(0).endswith(b"/>") else 0
        if node.name in _DASH_REFUSED_ELEMENTS:
            raise BadManifest("the MPD uses MPD patches or content steering")
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
        raise BadManifest("the MPD is not well-formed XML") from None
    if roots[0].name != "MPD":
        raise BadManifest("the document is not an MPD")
    return roots[0]


def _text_uri(node: _Node, data: bytes) -> str:
    """The URI in a BaseURL or Location element: text only, no comments, CDATA or children."""
    if node.end == -1:
        return ""
    if node.children or b"<" in data[node.tag_end : node.end]:
        raise BadManifest(f"the MPD has a {node.name} with markup inside")
    return check_uri("".join(node.text))


def _set_bases(node: _Node, parents: frozenset[Url], where: Site, data: bytes) -> None:
    """Every element's possible base URLs (one per BaseURL alternative); all must be ours."""
    uris = [_text_uri(child, data) for child in node.children if child.name == "BaseURL"]
    if uris:
        resolved = {resolve(uri, base) for uri in uris for base in parents}
        if not all(where.owns(url) for url in resolved):
            raise BadManifest("the MPD has a BaseURL that is not under this edge's public URL")
        if len(resolved) > _MAX_BASES:
            raise BadManifest("the MPD has too many BaseURL combinations")
        parents = frozenset(url for url in resolved if url is not None)
    node.bases = parents
    for child in node.children:
        _set_bases(child, parents, where, data)


def _substitute(template: str, rep: _Node | None) -> str:
    """A template as a player expands it; numbers are digits, which never change the origin."""
    if template.count("$") % 2:
        raise BadManifest("the MPD has a SegmentTemplate with an unpaired $")

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
        raise BadManifest("the MPD has a SegmentTemplate identifier that cannot be expanded")

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
    text: str,
    token: str,
    *,
    public_url: Url | None = None,
    base_path: str = "/",
    param: str = TOKEN_PARAM,
) -> str:
    """Append the token to segment URIs, BaseURL and Location texts that resolve to this edge."""
    check_token(token)
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
            raise BadManifest("the MPD has a Location that is not under this edge's public URL")
        starts.add(url)
        edits.append((location.tag_end, location.end, _escape(with_token(uri, token, param))))
    _set_bases(root, frozenset(starts), where, data)
    for node in _walk(root):
        if node.name == "BaseURL":
            uri = _text_uri(node, data)
            if uri:  # every BaseURL is ours by now (_set_bases)
                edits.append((node.tag_end, node.end, _escape(with_token(uri, token, param))))
            continue
        names = _DASH_URI_ATTRS.get(node.name, ())
        for raw_name in node.raw_attrs:
            if ":" in raw_name and _local(raw_name) in names:
                raise BadManifest("the MPD has a namespaced URI attribute")
        for name in names:
            if name not in node.attrs or not node.attrs[name].strip(URI_ENDS):
                continue
            value = check_uri(node.attrs[name])
            templated = node.name == "SegmentTemplate"
            ours = True
            for bases, rep in _contexts(node):
                expanded = check_uri(_substitute(value, rep)) if templated else value
                ours = ours and all(where.owns(resolve(expanded, base)) for base in bases)
            if ours:
                span = node.raw_attrs[name]
                edits.append((span[0] + 1, span[1] - 1, _escape(with_token(value, token, param))))
    out = bytearray(data)
    for begin, finish, replacement in sorted(edits, reverse=True):
        out[begin:finish] = replacement
    return out.decode("utf-8")


def _walk(node: _Node) -> Iterator[_Node]:
    yield node
    for child in node.children:
        yield from _walk(child)
