"""The operators' key for /metrics and /admin/health, stored only as a SHA-256 hash.

Generated like an API key (``playgate api-key --name admin``); the servers hold the hash
(``PLAYGATE_ADMIN_KEY_HASH``), Prometheus holds the key (``authorization.credentials_file``).
"""

from __future__ import annotations

import hashlib
import hmac
import re

from .core.errors import ConfigurationError

_HASH_RE = re.compile(r"[0-9a-f]{64}")


class AdminKey:
    def __init__(self, sha256_hex: str) -> None:
        if not _HASH_RE.fullmatch(sha256_hex):
            raise ConfigurationError(
                "PLAYGATE_ADMIN_KEY_HASH must be the sha256 hex of the admin key "
                "(playgate api-key --name admin prints it)"
            )
        self._digest = bytes.fromhex(sha256_hex)

    def __repr__(self) -> str:
        return "AdminKey(***)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AdminKey) and hmac.compare_digest(self._digest, other._digest)

    def __hash__(self) -> int:
        return hash(self._digest)

    def accepts(self, authorization: str | None) -> bool:
        """Does ``Authorization: Bearer <key>`` present the admin key? Constant-time."""
        scheme, _, key = (authorization or "").partition(" ")
        presented = hashlib.sha256(key.strip().encode("utf-8")).digest()
        return scheme.lower() == "bearer" and hmac.compare_digest(presented, self._digest)
