"""The foreign-format settings, read through ``Env`` like every other setting.

- ``PLAYGATE_ACCEPT_FORMATS``: the foreign formats a validator accepts, comma-separated
  (``cloudfront,akamai,mediacdn,secure_link,jwt``); empty: PlayGate tokens only.
- ``PLAYGATE_FORMAT_KEYS_FILE`` (or ``PLAYGATE_FORMAT_KEYS``, the JSON itself): their keys
  (``keys.FormatKeys``). The signer signs with them; a validator keeps the public halves.
- ``PLAYGATE_JWKS_URL``: a validator fetches its JWT public keys from the signer's JWKS
  (``PLAYGATE_JWKS_MAX_AGE`` seconds between fetches, ``PLAYGATE_JWT_AUDIENCE`` if any).
"""

from __future__ import annotations

from ..core.errors import ConfigurationError
from ..env import Env
from .jwks import JwksCache
from .keys import FORMATS, FormatKeys


def accept_formats(env: Env) -> tuple[str, ...]:
    text = env.text("PLAYGATE_ACCEPT_FORMATS", "") or ""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in FORMATS]
    if unknown or len(set(names)) != len(names):
        raise ConfigurationError(
            f"PLAYGATE_ACCEPT_FORMATS lists formats once each, of {', '.join(FORMATS)}"
        )
    return names


def jwks_cache(env: Env) -> JwksCache | None:
    url = env.text("PLAYGATE_JWKS_URL")
    if url is None:
        return None
    return JwksCache(
        url,
        audience=env.text("PLAYGATE_JWT_AUDIENCE"),
        max_age=env.number("PLAYGATE_JWKS_MAX_AGE", 300.0, low=5.0, high=86400.0),
    )


def format_keys(env: Env) -> FormatKeys | None:
    text = env.json_or_file("PLAYGATE_FORMAT_KEYS")
    return None if text is None else FormatKeys.from_json(text)
