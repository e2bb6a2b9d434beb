"""PlayGate edge validator: the token format, the path rules, the decision, and its adapters."""

from .decision import Grant, verify, verify_target
from .errors import PlaybackTokenError, PlayGateError
from .keyring import KeyRing
from .token import Claims, open_token, seal

__all__ = [
    "Claims",
    "Grant",
    "KeyRing",
    "PlayGateError",
    "PlaybackTokenError",
    "open_token",
    "seal",
    "verify",
    "verify_target",
]
