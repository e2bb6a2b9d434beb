"""Factories for the CDN formats: one policy, keys for each format, the published vectors."""

from __future__ import annotations

import json
from typing import Any

from edge_validator.formats.policy import Policy
from edge_validator.formats.secure_link import SecureLinkKey
from tests.support.factories import SCOPE, TESTS

VECTORS = TESTS / "vectors" / "formats"
NOW = 1_767_200_000
SECURE_LINK_SECRET = "nginx-secure-link-secret-0123456789abcdef"


def vectors(name: str) -> Any:
    """A vector file of ``tests/vectors/formats`` (each names its source)."""
    return json.loads((VECTORS / f"{name}.json").read_text(encoding="utf-8"))


def policy(*, now: int = NOW, ttl: int = 300, **fields: Any) -> Policy:
    """A policy for the demo video valid from ``now`` for ``ttl`` seconds; override any field."""
    fields.setdefault("scope", SCOPE)
    fields.setdefault("expires_at", now + ttl)
    fields.setdefault("not_before", now)
    fields.setdefault("token_id", "tid-test")
    return Policy(**fields)


def secure_link_key(*, bind_client: bool = False) -> SecureLinkKey:
    return SecureLinkKey("sl1", SECURE_LINK_SECRET, bind_client=bind_client)
