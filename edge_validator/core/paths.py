"""Path rules: where the token sits in a request, and which paths are judged at all.

The validator judges the path the origin will serve. It rejects anything ambiguous instead of
repairing it, because every repair is a place where the validator and the origin can disagree.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from .errors import BadPath, MalformedToken
from .protocol import CAT_PARAM, TOKEN_PARAM, TOKEN_PREFIX

# NamedTuple's own __new__ is Python code; building the tuple directly saves a frame per request.
_new_tuple = tuple.__new__
# Raw characters never accepted in a path: anything outside printable ASCII (NUL, controls,
# space, non-ASCII), a backslash, an empty segment, ';' (path parameters to some servers).
_ESCAPE = re.compile(r"%(.?.?)")
_HEX = frozenset("0123456789abcdefABCDEF")
# Escapes of these bytes are refused: unreserved characters have one spelling only; an escaped
# '/', '\', '%' or '.' is how traversal and double decoding slip past a prefix check; and a
# decoded '?', '#' or ';' would end the path (or start a parameter) at some origins.
_NO_ESCAPE = (
    frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/\\%?#;\x7f")
    | frozenset(range(0x20))
    | frozenset(range(0x80, 0x100))
)


def _unescape(match: re.Match[str]) -> str:
    hex_digits = match.group(1)
    if len(hex_digits) != 2 or not _HEX.issuperset(hex_digits):
        raise BadPath("broken percent escape")
    byte = int(hex_digits, 16)
    if byte in _NO_ESCAPE:
        raise BadPath("forbidden percent escape")
    return chr(byte)


def normalize_path(path: str) -> str:
    """Return the decoded path if it is unambiguous, else raise BadPath. Never repairs."""
    if not path.startswith("/"):
        raise BadPath("path must start with '/'")
    # Plain substring tests: several times faster than one regex on this hot path.
    if not (path.isascii() and path.isprintable()) or " " in path or "\\" in path:
        raise BadPath("forbidden character in path")
    if "//" in path or ";" in path:
        raise BadPath("empty segment or path parameter in path")
    decoded = _ESCAPE.sub(_unescape, path) if "%" in path else path
    if "/." in decoded:
        probe = decoded + "/"
        if "/./" in probe or "/../" in probe:
            raise BadPath("dot segment in path")
    return decoded


def in_scope(path: str, scope: str) -> bool:
    """Segment-wise prefix test: ``/videos/12/`` covers ``/videos/12/a`` but not ``/videos/123``."""
    return scope.endswith("/") and path.startswith(scope)


class Target(NamedTuple):
    """A raw request target taken apart: the token, and the rest as the origin will see it."""

    token: str | None
    path: str  # raw (still percent-encoded), without the token segments
    query: str  # without the token parameter
    token_in_query: bool

    def __repr__(self) -> str:  # never the token
        return f"Target(path={self.path!r}, query={self.query!r}, in_query={self.token_in_query})"


_PARAMS_FOLDED = frozenset({TOKEN_PARAM, CAT_PARAM.lower()})


def with_header_token(target: Target, header_token: str | None) -> Target:
    """The target with the token of a ``CTA-Common-Access-Token`` header, if one came.

    Never two tokens: a request carrying one in the URL and one in the header is refused.
    """
    if header_token is None:
        return target
    if target.token is not None:
        raise MalformedToken("more than one token in the request")
    return _new_tuple(Target, (header_token, target.path, target.query, False))


def split_target(target: str) -> Target:
    """Split a raw request target into the token, the path and the query without the token.

    The token travels as the first path segments ``/t/<token>/`` or as one ``token`` query
    parameter, never both, never twice.
    """
    if "#" in target:
        raise BadPath("fragment in request target")
    path, _, query = target.partition("?")
    token: str | None = None
    if path.startswith(TOKEN_PREFIX):
        token, slash, rest = path[len(TOKEN_PREFIX) :].partition("/")
        if not slash:
            raise BadPath("nothing after the path token")
        path = "/" + rest
    if not query:
        return _new_tuple(Target, (token, path, "", False))
    in_path = token is not None
    kept: list[str] = []
    for param in query.split("&"):
        name = param.partition("=")[0]
        if name in (TOKEN_PARAM, CAT_PARAM):
            if token is not None:
                raise MalformedToken("more than one token in the request")
            token = param[len(name) + 1 :]
            if not token:
                raise MalformedToken("empty token parameter")
        elif name.lower() in _PARAMS_FOLDED or ("%" in name and _looks_like_token_param(name)):
            raise MalformedToken("ambiguous token parameter")
        else:
            kept.append(param)
    return _new_tuple(Target, (token, path, "&".join(kept), token is not None and not in_path))


def _looks_like_token_param(name: str) -> bool:
    try:
        decoded = re.sub(r"%([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), name)
    except ValueError:  # pragma: no cover - the pattern only matches hex
        return True
    return decoded.lower() in _PARAMS_FOLDED or "%" in decoded
