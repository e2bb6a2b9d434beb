"""Path rules: where the token sits in a request, and which paths are judged at all.

The validator judges the path the origin will serve. It rejects anything ambiguous instead of
repairing it, because every repair is a place where the validator and the origin can disagree.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from .errors import BadPath, MalformedToken
from .protocol import CAT_PARAM, SESSION_PARAM, SESSION_PREFIX, TOKEN_PARAM, TOKEN_PREFIX

_PARAMS = (TOKEN_PARAM, SESSION_PARAM, CAT_PARAM)
_PREFIX_LEN = len(TOKEN_PREFIX)
_START_MARK = TOKEN_PREFIX[1]
_SESSION_MARK = SESSION_PREFIX[1]
# split_target reads both prefixes as "/" + one mark character + "/".
assert _PREFIX_LEN == len(SESSION_PREFIX) == 3
assert f"/{_START_MARK}/" == TOKEN_PREFIX
assert f"/{_SESSION_MARK}/" == SESSION_PREFIX
_MARKS = frozenset((_START_MARK, _SESSION_MARK))
assert len(_MARKS) == 2
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
    # Indexing costs less than a slice (a slice object, then a substring), and a slice less than
    # startswith's argument parsing.
    if not path or path[0] != "/":
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
    # The token travelled as a session token (``/s/<token>/`` or ``session=``), not a start token.
    session: bool = False

    def __repr__(self) -> str:  # never the token
        return (
            f"Target(path={self.path!r}, query={self.query!r}, in_query={self.token_in_query},"
            f" session={self.session})"
        )

    def token_param(self) -> str:
        """The query parameter this kind of token travels in."""
        return SESSION_PARAM if self.session else TOKEN_PARAM


_PARAMS_FOLDED = frozenset({TOKEN_PARAM, SESSION_PARAM, CAT_PARAM.lower()})


def with_header_token(target: Target, header_token: str | None) -> Target:
    """The target with the token of a ``CTA-Common-Access-Token`` header, if one came.

    Never two tokens: a request carrying one in the URL and one in the header is refused.
    """
    if header_token is None:
        return target
    if target.token is not None:
        raise MalformedToken("more than one token in the request")
    return _new_tuple(Target, (header_token, target.path, target.query, False, False))


# Target's fields as a plain tuple, which unpacks without an iterator (a NamedTuple, a tuple
# subclass, needs one): what Verifier.verify_target takes apart for every request.
TargetFields = tuple[str | None, str, str, bool, bool]


def split_target(target: str) -> Target:
    """Split a raw request target into the token, the path and the query without the token.

    The token travels as the first path segments ``/t/<token>/`` (a start token) or
    ``/s/<token>/`` (a session token), or as one ``token`` or ``session`` query parameter: exactly
    one token per request, never two, never twice.
    """
    return _new_tuple(Target, split_fields(target))


def split_fields(target: str) -> TargetFields:
    """``split_target``, the fields as a plain tuple in ``Target``'s field order."""
    if "#" in target:
        raise BadPath("fragment in request target")
    if "?" in target:
        path, _, query = target.partition("?")
    else:  # no query: no partition call (this runs for every segment)
        path = target
        query = ""
    token: str | None = None
    session = False
    # Indexing instead of str.startswith: CPython hands out cached one-character strings,
    # while each startswith call costs hundreds of instructions (this runs for every segment).
    try:
        mark = path[1] if path[2] == "/" and path[0] == "/" else ""
    except IndexError:  # shorter than any prefix
        mark = ""
    if mark in _MARKS:
        session = mark == _SESSION_MARK
        token, slash, rest = path[_PREFIX_LEN:].partition("/")
        if not slash:
            raise BadPath("nothing after the path token")
        path = "/" + rest
    if not query:
        return (token, path, "", False, session)
    in_path = token is not None
    kept: list[str] = []
    for param in query.split("&"):
        name = param.partition("=")[0]
        if name in _PARAMS:
            if token is not None:
                raise MalformedToken("more than one token in the request")
            session = name == SESSION_PARAM
            token = param[len(name) + 1 :]
            if not token:
                raise MalformedToken("empty token parameter")
        elif name.lower() in _PARAMS_FOLDED or ("%" in name and _looks_like_token_param(name)):
            raise MalformedToken("ambiguous token parameter")
        else:
            kept.append(param)
    in_query = token is not None and not in_path
    return (token, path, "&".join(kept), in_query, session)


def _looks_like_token_param(name: str) -> bool:
    try:
        decoded = re.sub(r"%([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), name)
    except ValueError:  # pragma: no cover - the pattern only matches hex
        return True
    return decoded.lower() in _PARAMS_FOLDED or "%" in decoded
