"""Validator settings, read and parsed once from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .admin_key import AdminKey
from .core.addresses import Network
from .core.cat.verify import CatVerifier
from .core.cors import CorsPolicy
from .core.decision import (
    DEFAULT_LEEWAY,
    DEFAULT_MAX_SESSION,
    DEFAULT_MAX_TTL,
    MAX_LEEWAY,
    MAX_SESSION_LIMIT,
    MAX_TTL_LIMIT,
    MEMO_SIZE,
    MEMO_SIZE_LIMIT,
    Verifier,
)
from .core.errors import ConfigurationError
from .core.keyring import KeyRing
from .core.protocol import CLIENT_IP_HEADERS, FORWARDED_FOR
from .env import Env
from .formats.accept import ForeignVerifier
from .formats.config import accept_formats, format_keys, jwks_cache
from .formats.jwks import JwksCache
from .formats.keys import FormatKeys
from .formats.mediacdn_dual import DualToken
from .manifests.urls import Url, parse_public_url
from .origins.s3_location import MODES, S3Location, S3Settings
from .state.settings import StateSettings


@dataclass(frozen=True)
class ValidatorSettings:
    keyring: KeyRing
    leeway: int = DEFAULT_LEEWAY
    # The signer's PLAYGATE_MAX_TTL: longer-lived tokens would outlive their revocations.
    max_ttl: int = DEFAULT_MAX_TTL
    # PLAYGATE_MAX_SESSION: no playback session outlives it (revocations are kept that long).
    max_session: int = DEFAULT_MAX_SESSION
    # Narrow an unbound start token's session to the viewer's /24 or /64 (core/sessions.py).
    session_binding: bool = True
    trusted_proxies: tuple[Network, ...] = ()
    # The one forwarding header read from a trusted proxy (x-forwarded-for or x-real-ip).
    client_ip_header: str = FORWARDED_FOR
    # The origin shield's origin: a folder, an HTTP origin or a private S3 bucket (or none:
    # nginx auth_request only).
    media_root: Path | None = None
    origin_url: str | None = None
    origin_timeout: float = 10.0
    s3: S3Settings | None = None
    # Authenticated tokens remembered per kind (start, session): size it for the live viewers
    # of one process, or every request past it is a first sight (about 0.7 KB per entry).
    memo_size: int = MEMO_SIZE
    # The URL viewers fetch from (CDN or shield): in query-token mode only manifest URIs under
    # it get the token. Unset: only relative references do.
    public_url: Url | None = None
    # Revocations, use and stream limits: in memory, or Redis when REDIS_URL is set.
    state: StateSettings = field(default_factory=StateSettings)
    # CTA-5007 Common Access Tokens (PLAYGATE_CAT_KEYS...); None: only PlayGate tokens.
    cat: CatVerifier | None = None
    # Foreign token formats accepted besides PlayGate's own (edge_validator/formats).
    accept_formats: tuple[str, ...] = ()
    format_keys: FormatKeys | None = None
    # The signer's JWKS (PLAYGATE_JWKS_URL): JWT public keys fetched, not deployed.
    jwks: JwksCache | None = None
    # Which web pages on other origins may read media and denial reasons (none by default).
    cors: CorsPolicy = field(default_factory=CorsPolicy)
    # The operators' key for /metrics and /admin/health (None: those routes do not exist).
    admin_key: AdminKey | None = None
    # One log line per allowed request too (at INFO), not only per denial. Default: on with
    # PLAYGATE_LOG_FORMAT=json, whose lines a log pipeline indexes.
    log_allowed: bool = False

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.media_root, self.origin_url, self.s3)) > 1:
            raise ConfigurationError("configure one origin: a folder, an http(s) URL or s3://")
        if self.origin_url is not None and "@" in urlsplit(self.origin_url).netloc:
            # A password in the URL would travel into httpx's logs, error messages and reprs.
            raise ConfigurationError(
                "PLAYGATE_ORIGIN_URL must not hold a user or password; "
                "protect the origin by network (a private address or security group)"
            )

    def verifier(self) -> Verifier:
        return Verifier(
            self.keyring,
            max_ttl=self.max_ttl,
            leeway=self.leeway,
            max_session=self.max_session,
            memo_size=self.memo_size,
            cat=self.cat,
        )

    def foreign_verifier(self) -> ForeignVerifier | None:
        if not self.accept_formats:
            return None
        keys = self.format_keys or FormatKeys()
        return ForeignVerifier(
            keys,
            self.accept_formats,
            max_ttl=self.max_ttl,
            leeway=self.leeway,
            jwks=self.jwks,
            max_session=self.max_session,
        )

    def mediacdn_dual(self) -> DualToken | None:
        """Media CDN short tokens exchanged for long ones, where a long-token key is given."""
        keys = self.format_keys
        if "mediacdn" not in self.accept_formats or keys is None or not keys.mediacdn_long:
            return None
        assert keys.public_url is not None  # ForeignVerifier requires it for Media CDN
        return DualToken(keys.mediacdn_long, keys.public_url, max_session=self.max_session)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ValidatorSettings:
        environ = os.environ if environ is None else environ
        env = Env(environ)
        if env.text("PLAYGATE_GRANT_CACHE_SECONDS"):
            # Removed: an operator who relied on it must learn it is gone, not find out by load.
            raise ConfigurationError(
                "PLAYGATE_GRANT_CACHE_SECONDS was removed (the native verifier decides in nginx): "
                "unset it"
            )
        media = env.text("PLAYGATE_MEDIA_ROOT")
        origin = env.text("PLAYGATE_ORIGIN_URL")
        s3_origin = env.text("PLAYGATE_S3_ORIGIN")
        if origin and origin.startswith("s3://"):
            if s3_origin:
                raise ConfigurationError("set PLAYGATE_ORIGIN_URL or PLAYGATE_S3_ORIGIN, not both")
            s3_origin, origin = origin, None
        if sum(bool(x) for x in (media, origin, s3_origin)) > 1:
            raise ConfigurationError(
                "set one of PLAYGATE_MEDIA_ROOT, PLAYGATE_ORIGIN_URL or PLAYGATE_S3_ORIGIN"
            )
        if origin and not origin.startswith(("http://", "https://")):
            raise ConfigurationError("PLAYGATE_ORIGIN_URL must be an http(s) URL")
        return cls(
            keyring=env.keyring(),
            leeway=env.integer("PLAYGATE_LEEWAY", DEFAULT_LEEWAY, low=0, high=MAX_LEEWAY),
            max_ttl=env.integer("PLAYGATE_MAX_TTL", DEFAULT_MAX_TTL, low=1, high=MAX_TTL_LIMIT),
            max_session=max_session(env),
            session_binding=env.choice("PLAYGATE_SESSION_BINDING", "network", SESSION_BINDINGS)
            == "network",
            trusted_proxies=env.networks("PLAYGATE_TRUSTED_PROXIES"),
            client_ip_header=env.choice(
                "PLAYGATE_CLIENT_IP_HEADER", FORWARDED_FOR, CLIENT_IP_HEADERS, fold_case=True
            ),
            media_root=Path(media) if media else None,
            origin_url=origin.rstrip("/") if origin else None,
            origin_timeout=env.number("PLAYGATE_ORIGIN_TIMEOUT", 10.0, low=0.1, high=120.0),
            s3=s3_settings(env, s3_origin) if s3_origin else None,
            memo_size=env.integer("PLAYGATE_MEMO_SIZE", MEMO_SIZE, low=0, high=MEMO_SIZE_LIMIT),
            public_url=public_url(env),
            state=StateSettings.from_env(environ),
            cat=env.cat_verifier(),
            accept_formats=accept_formats(env),
            format_keys=format_keys(env),
            jwks=jwks_cache(env),
            cors=env.cors(),
            admin_key=env.admin_key(),
            log_allowed=env.flag(
                "PLAYGATE_LOG_ALLOWED", (env.text("PLAYGATE_LOG_FORMAT") or "").lower() == "json"
            ),
        )


SESSION_BINDINGS = ("network", "none")


def max_session(env: Env) -> int:
    """PLAYGATE_MAX_SESSION, read the same way by the signer and every validator."""
    return env.integer("PLAYGATE_MAX_SESSION", DEFAULT_MAX_SESSION, low=1, high=MAX_SESSION_LIMIT)


def public_url(env: Env) -> Url | None:
    text = env.text("PLAYGATE_PUBLIC_URL")
    if text is None:
        return None
    try:
        return parse_public_url(text)
    except ValueError as exc:
        raise ConfigurationError(f"PLAYGATE_PUBLIC_URL: {exc}") from None


def s3_settings(env: Env, origin: str) -> S3Settings:
    location = S3Location.parse(origin)  # fail at start-up, not on the first request
    endpoint = (
        env.text("PLAYGATE_S3_ENDPOINT_URL")
        or env.text("AWS_ENDPOINT_URL_S3")
        or env.text("AWS_ENDPOINT_URL")
    )
    if endpoint and not endpoint.startswith(("http://", "https://")):
        raise ConfigurationError("the S3 endpoint must be an http(s) URL")
    ttl = env.integer("PLAYGATE_S3_URL_TTL", 60, low=5, high=60)
    return S3Settings(
        location=location,
        mode=env.choice("PLAYGATE_S3_MODE", "redirect", MODES),
        endpoint_url=endpoint,
        region=env.text("PLAYGATE_S3_REGION") or env.text("AWS_REGION"),
        url_ttl=ttl,
        url_reuse=env.integer("PLAYGATE_S3_URL_REUSE", ttl // 2, low=0, high=ttl - 5),
    )
