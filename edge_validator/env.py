"""Reading settings from the environment, once, with errors that name the variable.

Every setting of every PlayGate process goes through ``Env``: one reader, one error shape.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from pathlib import Path

from .admin_key import AdminKey
from .core.addresses import Network, packed_ip
from .core.cat.claims import CatPolicy
from .core.cat.keys import CatKeyRing, Es256Factory
from .core.cat.verify import CatVerifier
from .core.cors import DEFAULT_MAX_AGE, MAX_MAX_AGE, CorsPolicy, parse_origins
from .core.errors import ConfigurationError
from .core.keyring import KeyRing


class Env:
    """Typed access to an environment mapping (``os.environ`` in production, a dict in tests)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self._environ.get(name)
        return default if value is None or value == "" else value

    def integer(self, name: str, default: int, *, low: int, high: int) -> int:
        text = self.text(name)
        if text is None:
            return default
        try:
            value = int(text)
        except ValueError:
            raise ConfigurationError(f"{name} must be an integer") from None
        if not low <= value <= high:
            raise ConfigurationError(f"{name} must be between {low} and {high}")
        return value

    def number(self, name: str, default: float, *, low: float, high: float) -> float:
        text = self.text(name)
        if text is None:
            return default
        try:
            value = float(text)
        except ValueError:
            raise ConfigurationError(f"{name} must be a number") from None
        if not low <= value <= high:
            raise ConfigurationError(f"{name} must be between {low} and {high}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        text = self.text(name)
        if text is None:
            return default
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigurationError(f"{name} must be true or false")

    def choice(
        self, name: str, default: str, choices: tuple[str, ...], *, fold_case: bool = False
    ) -> str:
        value = self.text(name, default) or default
        if fold_case:
            value = value.lower()
        if value not in choices:
            raise ConfigurationError(f"{name} must be one of {', '.join(choices)}")
        return value

    def networks(self, name: str) -> tuple[Network, ...]:
        return networks(self.text(name, "") or "", name)

    def cors(self) -> CorsPolicy:
        """``PLAYGATE_CORS_ORIGINS`` (``*`` or comma-separated origins; unset: no CORS) and
        ``PLAYGATE_CORS_MAX_AGE`` (seconds a browser may keep a preflight answer)."""
        return CorsPolicy(
            parse_origins(self.text("PLAYGATE_CORS_ORIGINS", "") or ""),
            self.integer("PLAYGATE_CORS_MAX_AGE", DEFAULT_MAX_AGE, low=0, high=MAX_MAX_AGE),
        )

    def admin_key(self) -> AdminKey | None:
        """``PLAYGATE_ADMIN_KEY_HASH``: sha256 hex of the key for /metrics and /admin/health."""
        text = self.text("PLAYGATE_ADMIN_KEY_HASH")
        return AdminKey(text.strip().lower()) if text else None

    def json_or_file(self, name: str) -> str | None:
        """A JSON document given inline in ``name`` or as a path in ``name_FILE`` (not both);
        None when neither is set. The file is read here, so its errors name the variable."""
        text = self.text(name)
        path = self.text(f"{name}_FILE")
        if text and path:
            raise ConfigurationError(f"set {name} or {name}_FILE, not both")
        if path is None:
            return text
        try:
            return Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(f"{name}_FILE: cannot read {path}: {exc.strerror}") from None

    def keyring(self) -> KeyRing:
        """``PLAYGATE_KEYRING`` (JSON text) or ``PLAYGATE_KEYRING_FILE`` (a path)."""
        text = self.json_or_file("PLAYGATE_KEYRING")
        if text is None:
            raise ConfigurationError(
                "set PLAYGATE_KEYRING_FILE (or PLAYGATE_KEYRING) to a key ring"
            )
        return KeyRing.from_json(text)

    def cat_keyring(self) -> CatKeyRing | None:
        """``PLAYGATE_CAT_KEYS`` (JSON text) or ``PLAYGATE_CAT_KEYS_FILE``; None: CAT is off."""
        text = self.json_or_file("PLAYGATE_CAT_KEYS")
        return None if text is None else CatKeyRing.from_json(text, es256_factory())

    def cat_policy(self) -> CatPolicy:
        """What every CAT must say: issuer, audience, and the origin catu is judged against."""
        origin = self.text("PLAYGATE_CAT_ORIGIN")
        parsed: tuple[str, str] | None = None
        if origin is not None:
            scheme, sep, host = origin.lower().rstrip("/").partition("://")
            if scheme not in ("http", "https") or not sep or not host or "/" in host:
                raise ConfigurationError("PLAYGATE_CAT_ORIGIN must be scheme://host[:port]")
            parsed = (scheme, host)
        return CatPolicy(
            self.text("PLAYGATE_CAT_ISSUER"), self.text("PLAYGATE_CAT_AUDIENCE"), parsed
        )

    def cat_verifier(self) -> CatVerifier | None:
        keyring = self.cat_keyring()
        return None if keyring is None else CatVerifier(keyring, self.cat_policy())


def es256_factory() -> Es256Factory | None:
    """ES256 keys where the ``cryptography`` package is installed (not in Lambda@Edge)."""
    try:
        from .cat_es256 import load_es256
    except ImportError:  # pragma: no cover - the test environment has cryptography
        return None
    return load_es256


def networks(text: str, name: str = "networks") -> tuple[Network, ...]:
    """Comma-separated CIDRs (or addresses), host bits allowed."""
    return tuple(network(p.strip(), name) for p in text.split(",") if p.strip())


def network(text: str, name: str) -> Network:
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise ConfigurationError(f"{name}: {exc}") from None
    if isinstance(net, ipaddress.IPv6Network) and net.network_address.ipv4_mapped is not None:
        # Viewers on IPv4-mapped addresses are judged as IPv4: so is a mapped network.
        if net.prefixlen < 96:
            raise ConfigurationError(f"{name}: write IPv4-mapped networks as IPv4")
        mapped = ipaddress.IPv4Address(int(net.network_address) & 0xFFFFFFFF)
        net = ipaddress.IPv4Network((mapped, net.prefixlen - 96))
    packed = packed_ip(str(net.network_address))
    assert packed is not None
    bits = net.max_prefixlen
    mask = ((1 << net.prefixlen) - 1) << (bits - net.prefixlen)
    return Network(len(packed), mask, int.from_bytes(packed, "big"))
