"""``GET /auth``, the nginx ``auth_request`` target: 204 allow, 401 or 403 deny, nothing else."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response

from ..core.cat.renewal import RenewalRefused, RenewedCat, renewal_headers
from ..core.errors import BadPath, InternalError, PlaybackTokenError
from ..core.protocol import CAT_HEADER, NO_STORE, ORIGINAL_URI_HEADER, TOKEN_ID_HEADER
from ..gate import Gate
from ..settings import ValidatorSettings
from .problems import denied
from .requests import header_token, viewer

log = logging.getLogger("playgate.validator")


async def auth(request: Request) -> Response:
    gate: Gate = request.app.state.gate
    settings: ValidatorSettings = request.app.state.settings
    target = request.headers.get(ORIGINAL_URI_HEADER)
    try:
        if target is None:
            raise BadPath("no X-Original-URI header")
        from_header = header_token(request.scope)
        cookies = _cookies(request, gate)
        admission = await gate.check(target, viewer(request.scope, settings), from_header, cookies)
    except PlaybackTokenError as exc:
        return denied(exc, body=False)
    except Exception:  # deny by default: a bug must never open the gate
        log.exception("auth check failed")
        return denied(InternalError(), body=False)
    grant, renewal = admission.grant, admission.renewal
    headers = {TOKEN_ID_HEADER: grant.token_id, "Cache-Control": NO_STORE}
    if renewal is not None:
        # nginx copies these onto the response (auth_request_set + add_header). A redirect
        # cannot ride on an allow: nginx honours only 2xx, 401 and 403 from auth_request.
        headers.update(renewal_headers(_for_nginx(renewal), grant.now))
    return Response(status_code=204, headers=headers)


def _for_nginx(renewal: RenewedCat | RenewalRefused) -> RenewedCat | RenewalRefused:
    """What nginx can hand over: the header under its default name (add_header names are
    fixed in the config) or the cookie; a redirect is for the shield location."""
    if isinstance(renewal, RenewedCat):
        if renewal.kind == "redirect":
            return RenewalRefused("needs_redirect", "auth_request cannot answer a redirect")
        if renewal.kind == "header" and renewal.name.lower() != CAT_HEADER.lower():
            return RenewalRefused("header_name", "nginx sends only the default header name")
    return renewal


def _cookies(request: Request, gate: Gate) -> Mapping[str, str] | None:
    # Parsed only where a foreign format may travel in a cookie (CloudFront, Akamai, Media CDN).
    return request.cookies if gate.foreign is not None else None
