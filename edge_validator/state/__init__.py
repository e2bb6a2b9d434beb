"""Shared state for what a stateless token cannot do alone: revocation, use and stream limits.

The in-memory backend serves one process; the Redis backend serves many. Nothing here is on the
Lambda@Edge path, and only ``redis_store`` imports redis.
"""

from .revocations import KINDS, Revocation, RevocationView
from .runtime import RevocationSync, StateChecks, build_store
from .settings import StateSettings
from .store import StateStore, StoreUnavailable

__all__ = [
    "KINDS",
    "Revocation",
    "RevocationSync",
    "RevocationView",
    "StateChecks",
    "StateSettings",
    "StateStore",
    "StoreUnavailable",
    "build_store",
]
