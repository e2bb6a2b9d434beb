"""What the ASGI adapters read from a request: the raw target, the viewer's address, a header
token. From the ASGI scope itself: the shield answers without building a Starlette Request."""

from __future__ import annotations

import functools

from starlette.types import Scope

from ..core.addresses import ClientAddress
from ..core.errors import BadPath, MalformedToken
from ..core.protocol import CAT_HEADER
from ..settings import ValidatorSettings
from .client_address import client_address

_CAT_HEADER = CAT_HEADER.lower().encode("latin-1")


def header_values(scope: Scope, name: bytes) -> list[str]:
    """Every value of the header ``name`` (lower case: ASGI servers lower header names)."""
    # A loop, not a comprehension: Python 3.11 builds a function object for each comprehension
    # run, which cost more than the loop over a request's few headers (twice per request).
    values: list[str] = []
    for key, value in scope["headers"]:
        if key == name:
            values.append(value.decode("latin-1"))
    return values


def viewer(scope: Scope, settings: ValidatorSettings) -> ClientAddress | None:
    peer = scope.get("client")
    header = settings.client_ip_header
    values = header_values(scope, _header_key(header))
    return client_address(peer[0] if peer else None, values, settings.trusted_proxies, header)


@functools.lru_cache(maxsize=16)
def _header_key(header: str) -> bytes:
    return header.lower().encode("latin-1")


def raw_target(scope: Scope) -> str:
    """The raw, still percent-encoded target: judging a decoded copy would hide double encoding."""
    raw_path: bytes | None = scope.get("raw_path")
    if raw_path is None:  # a server that does not give the raw path: refuse, never re-encode
        raise BadPath("the server did not provide the raw request path")
    query: bytes = scope.get("query_string", b"")
    target = raw_path.decode("latin-1")
    return target + "?" + query.decode("latin-1") if query else target


def header_token(scope: Scope) -> str | None:
    """The token of a ``CTA-Common-Access-Token`` header (CTA-5007), or None; never two."""
    values = header_values(scope, _CAT_HEADER)
    if len(values) > 1:
        raise MalformedToken("more than one token in the request")
    return values[0] if values else None
