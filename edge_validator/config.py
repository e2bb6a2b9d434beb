"""Reading settings from the environment, once, with errors that name the variable."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from .errors import ConfigurationError
from .keyring import KeyRing

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


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

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(name, default) or default
        if value not in choices:
            raise ConfigurationError(f"{name} must be one of {', '.join(choices)}")
        return value

    def networks(self, name: str) -> tuple[Network, ...]:
        text = self.text(name, "") or ""
        try:
            return tuple(ipaddress.ip_network(p.strip()) for p in text.split(",") if p.strip())
        except ValueError as exc:
            raise ConfigurationError(f"{name}: {exc}") from None

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
