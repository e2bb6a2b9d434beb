"""Shared state for what a stateless token cannot do alone: revocation, use and stream limits.

The in-memory backend serves one process; the Redis backend serves many. Nothing here is on the
Lambda@Edge path, and only ``redis_store`` imports redis.
"""

from .guard import StateGuard
from .revocations import KINDS, Revocation, RevocationView
from .settings import StateSettings
from .store import StateStore, build_store
from .sync import RevocationSync

__all__ = [
    "KINDS",
    "Revocation",
    "RevocationSync",
    "RevocationView",
    "StateGuard",
    "StateSettings",
    "StateStore",
    "build_store",
]
