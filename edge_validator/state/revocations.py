"""Revocations and the in-process view the validator checks them against (no I/O).

A revocation names one target. Token and session revocations deny every token that carries the
id. Video and user revocations deny tokens issued at or before the revocation (their
``not_before``, which the signer sets to the issue time); later tokens for the same video or
user are fine, so revoking "everything for video 12 until now" never blocks tomorrow's viewers.
Each revocation is kept until no token it could deny is still valid (``expires_at``).
"""

from __future__ import annotations

import functools
import heapq
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

from ..core.token import Claims

KINDS = ("token_id", "session_id", "video_id", "user_id")
# One string object per kind, shared by every parsed revocation (a million of them hold 8 bytes
# each for their kind instead of a fresh string).
_KIND = {kind: kind for kind in KINDS}
TARGET_RE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_VIDEOS = "/videos/"


class Revocation(NamedTuple):
    kind: str
    value: str
    revoked_at: float
    expires_at: float

    @property
    def member(self) -> str:
        """Its identity in storage: one entry per target."""
        return f"{self.kind}:{self.value}"

    def to_json(self) -> str:
        return json.dumps(self._asdict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Revocation:
        return cls.from_doc(json.loads(text))

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Revocation:
        kind = _KIND.get(str(doc["kind"]))
        value = str(doc["value"])
        if kind is None or not TARGET_RE.fullmatch(value):
            raise ValueError("not a revocation")
        try:
            revoked_at, expires_at = float(doc["revoked_at"]), float(doc["expires_at"])
        except OverflowError:  # an integer too large for a float (JSON has no limit)
            raise ValueError("not a revocation") from None
        # NaN compares false with every time: such an entry would deny nothing, silently.
        if not (math.isfinite(revoked_at) and math.isfinite(expires_at)):
            raise ValueError("not a revocation")
        return cls(kind, value, revoked_at, expires_at)


@functools.lru_cache(maxsize=4096)  # per scope, not per request: every segment asks again
def video_id(scope: str) -> str | None:
    """The video a token's scope covers (``/videos/<id>/``), or None for other scopes."""
    if scope.startswith(_VIDEOS) and scope.count("/") == 3:
        return scope[len(_VIDEOS) : -1]
    return None


class RevocationView:
    """Every live revocation, indexed for the hot path: a few dict lookups per request."""

    def __init__(self) -> None:
        self._by_kind: dict[str, dict[str, Revocation]] = {kind: {} for kind in KINDS}
        # (expiry, kind, value) of every entry added: pruning pops what has expired, a few at a
        # time, instead of walking a million entries on the event loop.
        self._expiries: list[tuple[float, str, str]] = []
        # Told of every entry that denies more than before (state/feed.py: nginx's copy).
        self._watchers: list[Callable[[Revocation], None]] = []

    def watch(self, watcher: Callable[[Revocation], None]) -> None:
        """Call ``watcher`` with each revocation this view takes in from now on that is new or
        changes what it denies (a resync's unchanged entries are not news)."""
        self._watchers.append(watcher)

    def __len__(self) -> int:
        return sum(len(index) for index in self._by_kind.values())

    def add(self, rev: Revocation) -> None:
        index = self._by_kind[rev.kind]
        known = index.get(rev.value)
        # A later revocation of the same target covers more tokens; keep the latest.
        if known is None or rev.revoked_at >= known.revoked_at:
            index[rev.value] = rev
            if known is None or rev.expires_at != known.expires_at:
                heapq.heappush(self._expiries, (rev.expires_at, rev.kind, rev.value))
            if known is None or rev[2:] != known[2:]:  # revoked_at or expires_at changed
                for watcher in self._watchers:
                    watcher(rev)

    def merge(self, revocations: list[Revocation], now: float) -> None:
        """Fold in a full snapshot (a resync) and drop what has expired.

        A merge, not a swap: nothing un-revokes, so an entry this process already knows stays
        until it expires, even if Redis lost it (a restart without persistence).
        """
        for rev in revocations:
            self.add(rev)
        self.prune(now)

    def prune(self, now: float, limit: int | None = None) -> int:
        """Drop entries expired at ``now``, at most ``limit`` of them; returns how many went."""
        expiries, by_kind = self._expiries, self._by_kind
        dropped = 0
        while expiries and expiries[0][0] <= now and (limit is None or dropped < limit):
            _, kind, value = heapq.heappop(expiries)
            rev = by_kind[kind].get(value)
            if rev is not None and rev.expires_at <= now:  # else: re-revoked, lives longer
                del by_kind[kind][value]
                dropped += 1
        return dropped

    def __iter__(self) -> Iterator[Revocation]:
        for index in self._by_kind.values():
            yield from index.values()

    def entries(self) -> list[Revocation]:
        return sorted(
            (rev for index in self._by_kind.values() for rev in index.values()),
            key=lambda rev: rev.revoked_at,
        )

    def revoked(self, claims: Claims, now: float) -> Revocation | None:
        """The revocation that denies ``claims``, or None."""
        # Unrolled, in the same order, with no (kind, value) tuples built: this runs for every
        # request. A value of None finds nothing (every key is a revoked target's text).
        by_kind = self._by_kind
        rev = by_kind["token_id"].get(claims.token_id)  # token and session: whatever their age
        if rev is not None and rev.expires_at > now:
            return rev
        rev = by_kind["session_id"].get(claims.session_id)  # type: ignore[arg-type]
        if rev is not None and rev.expires_at > now:
            return rev
        rev = by_kind["user_id"].get(claims.user_id)  # type: ignore[arg-type]
        if rev is not None and rev.expires_at > now and claims.not_before <= rev.revoked_at:
            return rev
        rev = by_kind["video_id"].get(video_id(claims.scope))  # type: ignore[arg-type]
        if rev is not None and rev.expires_at > now and claims.not_before <= rev.revoked_at:
            return rev
        return None
