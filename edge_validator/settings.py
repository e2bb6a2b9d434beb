"""Validator settings, read once from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .client_address import CLIENT_IP_HEADERS, FORWARDED_FOR
from .config import Env, Network
from .decision import DEFAULT_LEEWAY
from .errors import ConfigurationError
from .keyring import KeyRing
from .manifest_rewrite import parse_public_url
from .s3_location import S3Location
from .state.settings import StateSettings

MAX_LEEWAY = 60
MAX_TTL_LIMIT = 7 * 86400
DEFAULT_MAX_TTL = 3600


@dataclass(frozen=True)
class ValidatorSettings:
    keyring: KeyRing
    leeway: int = DEFAULT_LEEWAY
    # The signer's PLAYGATE_MAX_TTL: longer-lived tokens would outlive their revocations.
    max_token_lifetime: int = DEFAULT_MAX_TTL
    trusted_proxies: tuple[Network, ...] = ()
    # The one forwarding header read from a trusted proxy (x-forwarded-for or x-real-ip).
    client_ip_header: str = FORWARDED_FOR
    media_root: Path | None = None
    origin_url: str | None = None
    # How long nginx may reuse an allow decision for one token and video scope (0: never).
    grant_cache_seconds: int = 0
    origin_timeout: float = 10.0
    # A private S3 bucket as the origin (s3://bucket/prefix): redirect to a presigned GET or
    # stream the object (see s3_origin.py).
    s3_origin: str | None = None
    s3_mode: str = "redirect"
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_url_ttl: int = 60
    s3_url_reuse: int = 30
    # The URL viewers fetch from (CDN or shield): in query-token mode only manifest URIs under
    # it get the token. Unset: only relative references do.
    public_url: str | None = None
    # Revocations, use and stream limits: in memory, or Redis when REDIS_URL is set.
    state: StateSettings = field(default_factory=StateSettings)

    def __post_init__(self) -> None:
        # A reused allow does not see revocations: it may not outlast the staleness bound.
        if self.grant_cache_seconds > self.state.max_staleness:
            raise ConfigurationError(
                "PLAYGATE_GRANT_CACHE_SECONDS must not exceed PLAYGATE_STATE_MAX_STALENESS"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ValidatorSettings:
        env = Env(os.environ if environ is None else environ)
        media = env.text("PLAYGATE_MEDIA_ROOT")
        origin = env.text("PLAYGATE_ORIGIN_URL")
        if media and origin:
            raise ConfigurationError("set PLAYGATE_MEDIA_ROOT or PLAYGATE_ORIGIN_URL, not both")
        s3_origin = env.text("PLAYGATE_S3_ORIGIN")
        if origin and origin.startswith("s3://"):
            if s3_origin:
                raise ConfigurationError("set PLAYGATE_ORIGIN_URL or PLAYGATE_S3_ORIGIN, not both")
            s3_origin, origin = origin, None
        if s3_origin and (media or origin):
            raise ConfigurationError("an S3 origin excludes PLAYGATE_MEDIA_ROOT and an http origin")
        if origin and not origin.startswith(("http://", "https://")):
            raise ConfigurationError("PLAYGATE_ORIGIN_URL must be an http(s) URL")
        public_url = env.text("PLAYGATE_PUBLIC_URL")
        if public_url:
            try:
                parse_public_url(public_url)
            except ValueError as exc:
                raise ConfigurationError(f"PLAYGATE_PUBLIC_URL: {exc}") from None
        state = StateSettings.from_env(os.environ if environ is None else environ)
        grant_cache = env.integer("PLAYGATE_GRANT_CACHE_SECONDS", 0, low=0, high=300)
        return cls(
            keyring=env.keyring(),
            leeway=env.integer("PLAYGATE_LEEWAY", DEFAULT_LEEWAY, low=0, high=MAX_LEEWAY),
            max_token_lifetime=env.integer(
                "PLAYGATE_MAX_TTL", DEFAULT_MAX_TTL, low=1, high=MAX_TTL_LIMIT
            ),
            trusted_proxies=env.networks("PLAYGATE_TRUSTED_PROXIES"),
            client_ip_header=env.choice(
                "PLAYGATE_CLIENT_IP_HEADER", FORWARDED_FOR, CLIENT_IP_HEADERS
            ),
            media_root=Path(media) if media else None,
            origin_url=origin.rstrip("/") if origin else None,
            grant_cache_seconds=grant_cache,
            origin_timeout=env.number("PLAYGATE_ORIGIN_TIMEOUT", 10.0, low=0.1, high=120.0),
            **_s3_settings(env, s3_origin),
            public_url=public_url.rstrip("/") if public_url else None,
            state=state,
        )


def _s3_settings(env: Env, s3_origin: str | None) -> dict[str, Any]:
    if s3_origin is None:
        return {}
    S3Location.parse(s3_origin)  # fail at start-up, not on the first request
    endpoint = (
        env.text("PLAYGATE_S3_ENDPOINT_URL")
        or env.text("AWS_ENDPOINT_URL_S3")
        or env.text("AWS_ENDPOINT_URL")
    )
    if endpoint and not endpoint.startswith(("http://", "https://")):
        raise ConfigurationError("the S3 endpoint must be an http(s) URL")
    ttl = env.integer("PLAYGATE_S3_URL_TTL", 60, low=5, high=60)
    return {
        "s3_origin": s3_origin,
        "s3_mode": env.choice("PLAYGATE_S3_MODE", "redirect", ("redirect", "stream")),
        "s3_endpoint_url": endpoint,
        "s3_region": env.text("PLAYGATE_S3_REGION") or env.text("AWS_REGION"),
        "s3_url_ttl": ttl,
        "s3_url_reuse": env.integer("PLAYGATE_S3_URL_REUSE", ttl // 2, low=0, high=ttl - 5),
    }
