"""The revocation feed that nginx's native verifier polls (playgate/nginx/lua/playgate_native.lua).

nginx decides most requests itself and asks this validator only for what it cannot decide. To
deny a revoked token within a second it polls ``NATIVE_FEED_ROUTE`` several times a second:
each answer carries what this validator's revocation view took in since the poller's cursor,
whether that view can be trusted right now, and the policy nginx must judge with (leeway,
lifetimes, failure policy), so the two judge from the same revocations and never disagree.

The log is fed by the view itself (``RevocationView.watch``): whatever reaches the view, from
pub/sub, a resync or a catch-up, reaches nginx. A poll that cannot be answered from the log
(nginx's first, or after this process restarted, or a poller too far behind) gets the whole
view. Nothing un-revokes, so nginx only ever adds entries, each until it expires.
"""

from __future__ import annotations

import hmac
import secrets
from collections import deque

from ..core.keyring import FEED_CONTEXT, KeyRing
from .revocations import Revocation, RevocationView

FEED_VERSION = "PLAYGATE-FEED 1"
# A poll's authentication is good this many seconds either side of this validator's clock.
AUTH_WINDOW = 30
# Revocations kept for incremental polls; a poller further behind gets a full answer.
LOG_CAPACITY = 100_000
_KINDS = {"token_id": "t", "session_id": "s", "user_id": "u", "video_id": "v"}


def key_probes(keyring: KeyRing) -> str:
    """What proves a key ring without revealing it: ``kid:MAC("key-check")`` per key, sorted.

    nginx computes the same from the key ring file it read; if the two differ (a key rotated on
    one side only) it decides nothing itself.
    """
    feed = keyring.with_context(FEED_CONTEXT)
    probes = []
    for kid in keyring.key_ids:
        key = feed.get(kid)
        assert key is not None
        probes.append(f"{kid}:{key.mac(b'key-check').hex()}")
    return ",".join(probes)


def auth_header(keyring: KeyRing, key_id: str, now: float) -> str:
    """The ``FEED_AUTH_HEADER`` value a poller sends (nginx builds it in Lua; tests here)."""
    key = keyring.with_context(FEED_CONTEXT).get(key_id)
    if key is None:
        raise KeyError(key_id)
    stamp = str(int(now))
    return f"{key_id}.{stamp}.{key.mac(b'auth:' + stamp.encode()).hex()}"


def accepts(keyring: KeyRing, header: str | None, now: float) -> bool:
    """Is ``header`` a fresh feed authentication under a key of ``keyring``? Constant-time."""
    parts = (header or "").split(".")
    # isascii: str.isdigit() also holds for digits int() refuses ('²').
    if len(parts) != 3 or not (parts[1].isascii() and parts[1].isdigit()) or len(parts[1]) > 12:
        return False
    kid, stamp, mac = parts
    key = keyring.with_context(FEED_CONTEXT).get(kid)
    if key is None or abs(int(stamp) - now) > AUTH_WINDOW:
        return False
    expected = key.mac(b"auth:" + stamp.encode("ascii")).hex()
    return hmac.compare_digest(expected.encode("ascii"), mac.encode("ascii", "replace"))


def revocation_line(rev: Revocation) -> str:
    return f"r {_KINDS[rev.kind]} {rev.value} {rev.revoked_at!r} {rev.expires_at!r}"


class RevocationFeed:
    """A numbered log of the revocations a ``RevocationView`` takes in."""

    def __init__(self, view: RevocationView, capacity: int = LOG_CAPACITY) -> None:
        self.view = view
        # One per process: a poller that knew another process (or this one before a restart)
        # starts over with the whole view.
        self.epoch = secrets.token_hex(8)
        self.cursor = 0
        self._log: deque[tuple[int, Revocation]] = deque(maxlen=capacity)
        view.watch(self._on_revocation)

    def _on_revocation(self, rev: Revocation) -> None:
        self.cursor += 1
        self._log.append((self.cursor, rev))

    def since(self, epoch: str, cursor: int) -> list[Revocation] | None:
        """What was logged after ``cursor`` of ``epoch``; None when a full answer is needed."""
        if epoch != self.epoch or cursor > self.cursor or cursor < 0:
            return None
        first = self._log[0][0] if self._log else self.cursor + 1
        if cursor < first - 1:
            return None
        return [rev for _, rev in list(self._log)[cursor - first + 1 :]]

    def everything(self) -> list[Revocation]:
        """Every live revocation: the whole view (which holds everything logged so far)."""
        return self.view.entries()
