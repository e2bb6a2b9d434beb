"""A private S3 bucket as the origin shield's origin: redirect to a presigned GET, or stream.

The object key comes only from the validated grant path (prefix + path); the redirect host is
the configured S3 endpoint, which boto3 puts in the URL; request headers never choose either.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterator
from datetime import UTC
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from starlette.datastructures import Headers

from ..core.errors import CredentialsExpiring, NotFound, OriginUnavailable, PresignFailed
from ..core.protocol import NO_STORE, is_manifest
from .base import OriginReply
from .media_types import media_type
from .presign_cache import PresignCache
from .s3_location import S3Location, S3Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger("playgate.s3_origin")

CHUNK_BYTES = 64 * 1024
# One satisfiable byte range, the only kind S3 serves; anything else is ignored (RFC 9110
# lets a server answer 200 with the whole object instead of guessing at a range).
_RANGE_RE = re.compile(r"bytes=(\d{1,15}-\d{0,15}|-\d{1,15})")
_OPERATIONS = {"GET": "get_object", "HEAD": "head_object"}


def credentials_expiry(credentials: Any) -> float | None:
    """When the current signing credentials expire (unix time), or None for long-lived keys.

    Refreshable credentials (instance roles, SSO, assumed roles) carry an expiry; botocore has
    no public accessor for it. Freezing first refreshes them if due, so the expiry read after
    belongs to the credentials the next signature uses (or to older, shorter-lived ones).
    """
    if credentials is None:
        return None
    credentials.get_frozen_credentials()
    expiry = getattr(credentials, "_expiry_time", None)
    return None if expiry is None else float(expiry.timestamp())


def s3_client(settings: S3Settings, session: boto3.session.Session) -> S3Client:
    # Path style for a custom endpoint (moto, MinIO, a VPC endpoint by address).
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"}
        if settings.endpoint_url
        else {"addressing_style": "virtual"},
    )
    return session.client(
        "s3",
        endpoint_url=settings.endpoint_url,
        region_name=settings.region or session.region_name or "us-east-1",
        config=config,
    )


class S3Origin:
    def __init__(
        self,
        settings: S3Settings,
        *,
        max_cached_urls: int = 4096,
        session: boto3.session.Session | None = None,
    ) -> None:
        session = session or boto3.session.Session()
        self.location: S3Location = settings.location
        self.mode = settings.mode
        self.client = s3_client(settings, session)
        # The same object the client signs with (the session caches it).
        credentials = session.get_credentials()
        self.urls = PresignCache(
            self._presign,
            ttl=settings.url_ttl,
            reuse=settings.url_reuse,
            max_entries=max_cached_urls,
            credentials_expiry=functools.partial(credentials_expiry, credentials),
        )

    def _presign(self, method: str, key: str, expires_in: int) -> str:
        return self.client.generate_presigned_url(
            _OPERATIONS[method],
            Params={"Bucket": self.location.bucket, "Key": key},
            ExpiresIn=expires_in,
        )

    async def fetch(self, path: str, headers: Headers, method: str) -> OriginReply:
        try:
            key = self.location.object_key(path)
        except ValueError:  # a scope of "/" granting "/" itself: no object has that name
            raise NotFound("no such object") from None
        # Playlists are served, never redirected, even in redirect mode: players (hls.js,
        # AVPlayer) resolve a playlist's relative URIs against the URL it finally came from,
        # which after a redirect would be the presigned S3 URL, and every child request would
        # miss the token.
        if self.mode == "redirect" and not is_manifest(key):
            return self._redirect(method, key)
        return await self._stream(path, key, headers, method)

    def _redirect(self, method: str, key: str) -> OriginReply:
        try:
            url = self.urls.url(method, key)
        except CredentialsExpiring as exc:
            log.warning("not presigning: %s", exc.message)
            raise
        except Exception:  # a signing failure is an origin outage, never a 5xx with a trace
            log.exception("cannot presign an S3 URL")
            raise PresignFailed("cannot presign an S3 URL") from None
        # no-store: a cached redirect would outlive the URL it points to.
        return OriginReply(302, {"location": url, "cache-control": NO_STORE})

    def _params(self, key: str, headers: Headers) -> dict[str, Any]:
        params: dict[str, Any] = {"Bucket": self.location.bucket, "Key": key}
        wanted = headers.get("range")
        # If-Range cannot be passed to S3, so a conditional range becomes the whole object.
        if wanted and "if-range" not in headers and _RANGE_RE.fullmatch(wanted):
            params["Range"] = wanted
        if etag := headers.get("if-none-match"):
            params["IfNoneMatch"] = etag
        return params

    async def _stream(self, path: str, key: str, headers: Headers, method: str) -> OriginReply:
        call = getattr(self.client, _OPERATIONS[method])
        try:
            result = await anyio.to_thread.run_sync(
                functools.partial(call, **self._params(key, headers))
            )
        except ClientError as exc:
            return self._client_error(exc, path)
        except (BotoCoreError, OSError):
            log.exception("S3 request failed")
            raise OriginUnavailable("the S3 request failed") from None
        passed = {
            "content-type": media_type(path),
            "content-length": str(result["ContentLength"]),
            "accept-ranges": "bytes",
        }
        if "ETag" in result:
            passed["etag"] = result["ETag"]
        if "LastModified" in result:
            modified = result["LastModified"].astimezone(UTC)
            passed["last-modified"] = format_datetime(modified, usegmt=True)
        if result.get("ContentRange"):
            passed["content-range"] = result["ContentRange"]
        status = 206 if "content-range" in passed else 200
        if method == "HEAD":
            return OriginReply(status, passed)
        return OriginReply(status, passed, body=_chunks(result["Body"]))

    def _client_error(self, exc: ClientError, path: str) -> OriginReply:
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in ("NoSuchKey", "NotFound", "404") or status == 404:
            raise NotFound("no such object") from None
        if status == 304:
            return OriginReply(304)
        if code == "InvalidRange" or status == 416:
            size = error.get("ActualObjectSize")
            extra = {"content-range": f"bytes */{size}"} if size else {}
            return OriginReply(416, {"cache-control": NO_STORE, **extra})
        log.error("S3 refused the request: %s", code)
        raise OriginUnavailable("S3 refused the request")

    async def close(self) -> None:
        self.client.close()


def _chunks(body: Any) -> Iterator[bytes]:
    """Sync iterator (Starlette runs it in a thread); the connection is released however it ends."""
    try:
        yield from body.iter_chunks(CHUNK_BYTES)
    finally:
        body.close()
