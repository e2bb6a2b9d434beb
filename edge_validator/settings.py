"""Validator settings, read once from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .config import Env, Network
from .errors import ConfigurationError
from .keyring import KeyRing
from .state.settings import StateSettings

MAX_LEEWAY = 60


@dataclass(frozen=True)
class ValidatorSettings:
    keyring: KeyRing
    leeway: int = 5
    trusted_proxies: tuple[Network, ...] = ()
    media_root: Path | None = None
    origin_url: str | None = None
    # How long nginx may reuse an allow decision for one token and video scope (0: never).
    grant_cache_seconds: int = 0
    origin_timeout: float = 10.0
    # Revocations, use and stream limits: in memory, or Redis when REDIS_URL is set.
    state: StateSettings = field(default_factory=StateSettings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ValidatorSettings:
        env = Env(os.environ if environ is None else environ)
        media = env.text("PLAYGATE_MEDIA_ROOT")
        origin = env.text("PLAYGATE_ORIGIN_URL")
        if media and origin:
            raise ConfigurationError("set PLAYGATE_MEDIA_ROOT or PLAYGATE_ORIGIN_URL, not both")
        if origin and not origin.startswith(("http://", "https://")):
            raise ConfigurationError("PLAYGATE_ORIGIN_URL must be an http(s) URL")
        return cls(
            keyring=env.keyring(),
            leeway=env.integer("PLAYGATE_LEEWAY", 5, low=0, high=MAX_LEEWAY),
            trusted_proxies=env.networks("PLAYGATE_TRUSTED_PROXIES"),
            media_root=Path(media) if media else None,
            origin_url=origin.rstrip("/") if origin else None,
            grant_cache_seconds=env.integer("PLAYGATE_GRANT_CACHE_SECONDS", 0, low=0, high=300),
            origin_timeout=env.number("PLAYGATE_ORIGIN_TIMEOUT", 10.0, low=0.1, high=120.0),
            state=StateSettings.from_env(os.environ if environ is None else environ),
        )
