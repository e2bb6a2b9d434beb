"""Presigned S3 URLs, reused per object for a short window.

Signing costs about 100 us of CPU in boto3; a video segment is fetched by many viewers within
seconds. So one URL per (method, key) is handed out again while enough of its life remains, and
the cost per request becomes a dict lookup. Rules: a URL lives at most ``ttl`` seconds (60 at
most), never longer than the credentials that signed it, and is reused only while at least
``ttl - reuse`` seconds remain, so every viewer gets time to follow the redirect.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import NamedTuple

from ..core.errors import ConfigurationError, CredentialsExpiring

MAX_URL_SECONDS = 60
# Credentials closer than this to expiry are not used: clocks drift and a URL needs time to run.
CREDENTIAL_MARGIN = 5
MIN_URL_SECONDS = 5

Sign = Callable[[str, str, int], str]
"""sign(method, key, expires_in) -> URL."""


class Presigned(NamedTuple):
    url: str
    expires_at: float


class PresignCache:
    def __init__(
        self,
        sign: Sign,
        *,
        ttl: int = MAX_URL_SECONDS,
        reuse: int = 30,
        max_entries: int = 4096,
        credentials_expiry: Callable[[], float | None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not MIN_URL_SECONDS <= ttl <= MAX_URL_SECONDS:
            raise ConfigurationError(f"a presigned URL lives {MIN_URL_SECONDS}-60 seconds")
        if not 0 <= reuse <= ttl - MIN_URL_SECONDS:
            raise ConfigurationError("the reuse window must leave a URL some life")
        if max_entries < 1:
            raise ConfigurationError("the presign cache needs room for one entry")
        self._sign = sign
        self._ttl = ttl
        self._min_left = ttl - reuse
        self._max_entries = max_entries
        self._credentials_expiry = credentials_expiry
        self._clock = clock
        self._entries: dict[tuple[str, str], Presigned] = {}
        self.signed = 0  # how many URLs were actually signed (for the bench and tests)

    def __len__(self) -> int:
        return len(self._entries)

    def url(self, method: str, key: str) -> str:
        now = self._clock()
        entry = self._entries.get((method, key))
        if entry is not None and entry.expires_at - now >= self._min_left:
            return entry.url
        return self._renew(method, key, now)

    def lifetime(self, now: float) -> int:
        """Seconds a URL signed now may live: ``ttl``, cut short by the credentials' expiry."""
        expiry = self._credentials_expiry()
        if expiry is None:
            return self._ttl
        left = math.floor(expiry - now) - CREDENTIAL_MARGIN
        if left < MIN_URL_SECONDS:
            raise CredentialsExpiring("the S3 credentials expire too soon to sign a URL")
        return min(self._ttl, left)

    def _renew(self, method: str, key: str, now: float) -> str:
        expires_in = self.lifetime(now)
        url = self._sign(method, key, expires_in)
        self.signed += 1
        entries = self._entries
        entries.pop((method, key), None)
        if len(entries) >= self._max_entries:
            del entries[next(iter(entries))]  # the oldest signed: insertion order is age
        # S3 counts from X-Amz-Date, whole seconds at or after ``now``: floor is conservative.
        entries[(method, key)] = Presigned(url, math.floor(now) + expires_in)
        return url
