"""PlayGate edge validator: the token format, the path rules, the decision, and its adapters.

The public names come from ``core`` only, so the Lambda@Edge bundle (``core`` and
``lambda_edge``) imports this package without anything outside the standard library.
"""

from .core.decision import Grant, Verifier, verify, verify_target
from .core.errors import PlaybackTokenError, PlayGateError
from .core.keyring import KeyRing
from .core.token import Claims, open_token, seal

__all__ = [
    "Claims",
    "Grant",
    "KeyRing",
    "PlayGateError",
    "PlaybackTokenError",
    "Verifier",
    "open_token",
    "seal",
    "verify",
    "verify_target",
]
