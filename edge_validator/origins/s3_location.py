"""Where objects live in S3 (``s3://bucket/prefix``, the key a validated path maps to) and how
the shield reaches them. No boto3 here: settings are parsed without loading it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from ..core.errors import ConfigurationError

MODES = ("redirect", "stream")

# DNS-style bucket names (the only kind new buckets may have): 3-63 of a-z 0-9 . -
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_PREFIX_RE = re.compile(r"[A-Za-z0-9!_.*'()/-]*")


class S3Location(NamedTuple):
    bucket: str
    prefix: str  # empty, or segments joined by '/' without leading or trailing slash

    @classmethod
    def parse(cls, url: str) -> S3Location:
        """Parse ``s3://bucket`` or ``s3://bucket/prefix``; refuse anything ambiguous."""
        if not url.startswith("s3://"):
            raise ConfigurationError("an S3 origin is written s3://bucket/prefix")
        bucket, _, prefix = url[len("s3://") :].partition("/")
        prefix = prefix.rstrip("/")
        if not _BUCKET_RE.fullmatch(bucket) or ".." in bucket:
            raise ConfigurationError(f"{bucket!r} is not a valid S3 bucket name")
        segments = prefix.split("/") if prefix else []
        if not _PREFIX_RE.fullmatch(prefix) or any(s in ("", ".", "..") for s in segments):
            raise ConfigurationError("the S3 prefix has an empty, dot or unsafe segment")
        return cls(bucket, prefix)

    def object_key(self, path: str) -> str:
        """The key for a validated, decoded grant path such as ``/videos/demo/master.m3u8``."""
        if not path.startswith("/") or path == "/":
            raise ValueError("a grant path starts with '/' and names an object")
        return f"{self.prefix}{path}" if self.prefix else path[1:]

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


@dataclass(frozen=True)
class S3Settings:
    """A private bucket as the shield's origin: redirect to a presigned GET, or stream."""

    location: S3Location
    mode: str = "redirect"
    endpoint_url: str | None = None
    region: str | None = None
    # Presigned URLs live ``url_ttl`` seconds and are handed out again for ``url_reuse``.
    url_ttl: int = 60
    url_reuse: int = 30

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigurationError(f"the S3 mode must be one of {', '.join(MODES)}")
