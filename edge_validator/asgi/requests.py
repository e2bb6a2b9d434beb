"""What the ASGI adapters read from a request: the raw target and the viewer's address."""

from __future__ import annotations

from starlette.requests import Request

from ..core.addresses import ClientAddress
from ..core.errors import BadPath, MalformedToken
from ..core.protocol import CAT_HEADER
from ..settings import ValidatorSettings
from .client_address import client_address


def viewer(request: Request, settings: ValidatorSettings) -> ClientAddress | None:
    peer = request.client.host if request.client else None
    header = settings.client_ip_header
    return client_address(peer, request.headers.getlist(header), settings.trusted_proxies, header)


def raw_target(request: Request) -> str:
    """The raw, still percent-encoded target: judging a decoded copy would hide double encoding."""
    raw_path: bytes | None = request.scope.get("raw_path")
    if raw_path is None:  # a server that does not give the raw path: refuse, never re-encode
        raise BadPath("the server did not provide the raw request path")
    query: bytes = request.scope.get("query_string", b"")
    target = raw_path.decode("latin-1")
    return target + "?" + query.decode("latin-1") if query else target


def header_token(request: Request) -> str | None:
    """The token of a ``CTA-Common-Access-Token`` header (CTA-5007), or None; never two."""
    values = request.headers.getlist(CAT_HEADER)
    if len(values) > 1:
        raise MalformedToken("more than one token in the request")
    return values[0] if values else None
