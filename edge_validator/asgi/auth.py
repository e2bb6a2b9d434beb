"""``GET /auth``, the nginx ``auth_request`` target: 204 allow, 401 or 403 deny, nothing else."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response

from ..core.errors import BadPath, InternalError, PlaybackTokenError
from ..core.grant_cache import grant_cache_seconds
from ..core.protocol import GRANT_CACHE_HEADER, NO_STORE, ORIGINAL_URI_HEADER, TOKEN_ID_HEADER
from ..gate import Gate
from ..metrics import metrics
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
        from_header = header_token(request)
        cookies = _cookies(request, gate)
        grant = await gate.authorize(target, viewer(request, settings), from_header, cookies)
    except PlaybackTokenError as exc:
        return denied(exc, body=False)
    except Exception:  # deny by default: a bug must never open the gate
        log.exception("auth check failed")
        return denied(InternalError(), body=False)
    # nginx's proxy_cache honours X-Accel-Expires; 0 says "never keep" explicitly. The limit is
    # at most the revocation staleness bound (ValidatorSettings).
    # nginx keys a kept allow by the token in the URI: a header token must never be kept.
    seconds = (
        0 if from_header is not None else grant_cache_seconds(grant, settings.grant_cache_seconds)
    )
    metrics().grant_cache_answers.labels("kept" if seconds > 0 else "not_kept").inc()
    headers = {
        TOKEN_ID_HEADER: grant.token_id,
        "Cache-Control": NO_STORE,
        GRANT_CACHE_HEADER: str(seconds),
    }
    return Response(status_code=204, headers=headers)


def _cookies(request: Request, gate: Gate) -> Mapping[str, str] | None:
    # Parsed only where a foreign format may travel in a cookie (CloudFront, Akamai, Media CDN).
    return request.cookies if gate.foreign is not None else None
