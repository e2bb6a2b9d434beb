"""Signer settings, read once from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from edge_validator.admin_key import AdminKey
from edge_validator.core.cat.keys import CatKeyRing
from edge_validator.core.decision import DEFAULT_MAX_SESSION, DEFAULT_SESSION, MAX_TTL_LIMIT
from edge_validator.core.errors import ConfigurationError
from edge_validator.core.keyring import KeyRing
from edge_validator.env import Env
from edge_validator.formats.config import format_keys
from edge_validator.formats.keys import FormatKeys
from edge_validator.settings import max_session
from edge_validator.state.settings import StateSettings

from .api_keys import ApiKeys
from .issuing import CatIssuer


@dataclass(frozen=True)
class SignerSettings:
    keyring: KeyRing
    api_keys: ApiKeys
    # Base URL of the edge that viewers fetch from (CDN or origin shield).
    public_url: str = "http://127.0.0.1:8081"
    default_ttl: int = 300
    max_ttl: int = 3600
    # Playback sessions a URL opens (``session_seconds``), and the cap every edge enforces.
    default_session: int = DEFAULT_SESSION
    max_session: int = DEFAULT_MAX_SESSION
    token_mode: str = "path"
    entry_file: str = "master.m3u8"
    max_body_bytes: int = 16 * 1024
    # Revocations and rate limits: in memory, or Redis when REDIS_URL is set.
    state: StateSettings = field(default_factory=StateSettings)
    # CTA-5007 Common Access Tokens ("format": "cat"); None: the signer issues PlayGate's only.
    cat: CatIssuer | None = None
    # Keys for the CDN formats a request may ask for ("format"); None: no CDN format.
    format_keys: FormatKeys | None = None
    # The operators' key for /metrics and /admin/health (None: those routes do not exist).
    admin_key: AdminKey | None = None
    # Where revocations wait while Redis cannot take them (revocation_spool.py); None: a 503.
    revocation_spool: Path | None = None
    # Seconds issued tokens' not_before is set back, so validators whose clocks run behind
    # accept fresh URLs (revoking.py and issuing.py apply it alike).
    not_before_margin: int = 5

    @property
    def revocation_retention(self) -> int:
        """How long a revocation is kept: as long as any start or session token can live."""
        return max(self.max_ttl, self.max_session)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SignerSettings:
        env = Env(os.environ if environ is None else environ)
        keyring = env.keyring()
        if keyring.active_key_id is None:
            raise ConfigurationError("the signer's key ring needs an active key")
        max_ttl = env.integer("PLAYGATE_MAX_TTL", 3600, low=1, high=MAX_TTL_LIMIT)
        cap = max_session(env)
        public_url = env.text("PLAYGATE_PUBLIC_URL", cls.public_url) or cls.public_url
        if not public_url.startswith(("http://", "https://")):
            raise ConfigurationError("PLAYGATE_PUBLIC_URL must be an http(s) URL")
        cat_keyring = env.cat_keyring()
        cat = None if cat_keyring is None else cat_issuer(cat_keyring, env)
        return cls(
            cat=cat,
            keyring=keyring,
            api_keys=ApiKeys.parse(env.text("PLAYGATE_API_KEYS", "") or ""),
            public_url=public_url.rstrip("/"),
            default_ttl=env.integer("PLAYGATE_DEFAULT_TTL", 300, low=1, high=max_ttl),
            max_ttl=max_ttl,
            default_session=env.integer(
                "PLAYGATE_DEFAULT_SESSION", min(DEFAULT_SESSION, cap), low=0, high=cap
            ),
            max_session=cap,
            token_mode=env.choice("PLAYGATE_TOKEN_MODE", "path", ("path", "query")),
            entry_file=env.text("PLAYGATE_ENTRY_FILE", "master.m3u8") or "master.m3u8",
            state=StateSettings.from_env(os.environ if environ is None else environ),
            format_keys=format_keys(env),
            admin_key=env.admin_key(),
            revocation_spool=_path(env.text("PLAYGATE_REVOCATION_SPOOL")),
            not_before_margin=env.integer("PLAYGATE_NOT_BEFORE_MARGIN", 5, low=0, high=60),
        )


def _path(text: str | None) -> Path | None:
    return None if text is None else Path(text)


def cat_issuer(keyring: CatKeyRing, env: Env) -> CatIssuer:
    keyring.signing_key()  # refuses a ring with no active key that can sign, at start-up
    return CatIssuer(keyring, env.cat_policy())
