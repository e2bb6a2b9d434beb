"""Reading settings from the environment, once, with errors that name the variable.

Every setting of every PlayGate process goes through ``Env``: one reader, one error shape.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from .admin_key import AdminKey
from .core.addresses import Network, packed_ip
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

    def keyring(self) -> KeyRing:
        """``PLAYGATE_KEYRING`` (JSON text) or ``PLAYGATE_KEYRING_FILE`` (a path)."""
        text = self.text("PLAYGATE_KEYRING")
        path = self.text("PLAYGATE_KEYRING_FILE")
        if text and path:
            raise ConfigurationError("set PLAYGATE_KEYRING or PLAYGATE_KEYRING_FILE, not both")
        if text:
            return KeyRing.from_json(text)
        if path:
            return KeyRing.from_file(path)
        raise ConfigurationError("set PLAYGATE_KEYRING_FILE (or PLAYGATE_KEYRING) to a key ring")


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
