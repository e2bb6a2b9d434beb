"""Query-token mode for HLS: the token on every child URI of a playlist (see manifest_rewrite)."""

from __future__ import annotations

import re
from collections.abc import Callable

from ..core.errors import BadManifest
from ..core.protocol import TOKEN_PARAM
from .urls import (
    URI_ENDS,
    Url,
    check_token,
    check_uri,
    resolve,
    site,
    with_token,
)

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
    text: str,
    token: str,
    *,
    public_url: Url | None = None,
    base_path: str = "/",
    param: str = TOKEN_PARAM,
) -> str:
    """Append the token to every URI line and every ``URI="..."`` attribute that is ours."""
    check_token(token)
    where = site(public_url, base_path)
    if _HLS_BAD_CHARS.search(text):
        raise BadManifest("the playlist has a control character or a bare carriage return")
    if "{$" in text:
        raise BadManifest("the playlist uses variables ({$...}), which are not supported")

    def one(uri: str) -> str:
        inner = check_uri(uri)
        if inner and where.owns(resolve(inner, where.base)):
            return with_token(inner, token, param)
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
            raise BadManifest("the playlist uses EXT-X-DEFINE or content steering")
        if body.startswith("#"):
            body = _hls_tag(body, one)
        elif body.strip(URI_ENDS):
            if body[0] in URI_ENDS:
                # hls.js skips leading spaces, other players read the line otherwise.
                raise BadManifest("the playlist has a URI line starting with whitespace")
            body = one(body)
        out.append(bom + body + ending)
    return "\n".join(out)


def _hls_tag(line: str, one: Callable[[str], str]) -> str:
    tag = _HLS_TAG.match(line)
    payload = line[tag.end() :].rstrip(" \t") if tag else ""
    if not tag or not _HLS_ATTR_LIST.fullmatch(payload):
        # Not an attribute list: fine unless a lenient parser (hls.js) might find a URI in it.
        if re.search(r"URI\s*=", line):
            raise BadManifest("the playlist has a URI attribute that is not well formed")
        return line
    pieces: list[str] = []
    pos = 0
    seen = False
    for attr in _HLS_ATTR_ONE.finditer(payload):
        if attr.group(1) != "URI":
            continue
        value = attr.group(2)
        if seen or not value.startswith('"'):
            raise BadManifest("the playlist has a duplicated or unquoted URI attribute")
        seen = True
        pieces += [payload[pos : attr.start(2) + 1], one(value[1:-1])]
        pos = attr.end(2) - 1
    pieces.append(line[tag.end() + pos :])
    return line[: tag.end()] + "".join(pieces)


# --- DASH ------------------------------------------------------------------------------------
