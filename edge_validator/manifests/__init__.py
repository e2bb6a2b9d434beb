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
DOCTYPE, remote elements, content steering) refuses the whole manifest with ``BadManifest``.
Pure work on text and bytes, no I/O; the formatting of everything not rewritten is preserved.
"""

from __future__ import annotations

from ..core.errors import BadManifest
from ..core.protocol import TOKEN_PARAM, is_manifest
from .dash import rewrite_dash
from .hls import rewrite_hls
from .urls import Url, add_token, parse_public_url

__all__ = [
    "BadManifest",
    "Url",
    "add_token",
    "parse_public_url",
    "rewrite_dash",
    "rewrite_hls",
    "rewrite_manifest",
]


def rewrite_manifest(
    path: str,
    body: bytes,
    token: str,
    *,
    public_url: Url | None = None,
    base_path: str | None = None,
    param: str = TOKEN_PARAM,
) -> bytes | None:
    """The rewritten manifest for ``path``, or None when ``path`` is not a manifest.

    ``base_path`` is the raw path the player requested (the manifest's URL, without query).
    """
    if not is_manifest(path):
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadManifest("the manifest is not UTF-8") from None
    rewrite = rewrite_hls if path.lower().endswith(".m3u8") else rewrite_dash
    base = base_path or path
    return rewrite(text, token, public_url=public_url, base_path=base, param=param).encode()
