"""Opening and judging a Common Access Token (CTA-5007) under one key ring and one policy.

The order is PlayGate's: size cap (the base64url decoder refuses more than 2048 characters),
strict CBOR of the outer message, key id, pinned algorithm, MAC or signature, and only then the
claims. ``Verifier`` (decision.py) calls ``open`` for tokens that are not PlayGate v1 tokens and
``judge`` for the claims only a CAT can carry.
"""

from __future__ import annotations

import base64

from ..addresses import ClientAddress
from ..token import _decode_b64
from .cbor import Key, Value, encode
from .claims import CatClaims, CatPolicy, judge_rules, parse_claims
from .cose import open_cose, seal_cose
from .keys import CatKey, CatKeyRing

# PlayGate v1 tokens start with the version byte 0x01, so their base64url starts with 'A'; a
# COSE message starts with a tag (0xd1, 0xd2, 0xd8) or an array head (0x84): never 'A'.
V1_FIRST_CHAR = "A"
# Where CTA-5007 carries the token besides PlayGate's own places (header, and query parameter).
HEADER = "CTA-Common-Access-Token"
QUERY_PARAM = "CAT"


def looks_like_cat(token: str) -> bool:
    return token[:1] != V1_FIRST_CHAR


class CatVerifier:
    """Opens CATs with ``keyring`` and judges them under ``policy``."""

    __slots__ = ("keyring", "policy")

    def __init__(self, keyring: CatKeyRing, policy: CatPolicy | None = None) -> None:
        self.keyring = keyring
        self.policy = policy or CatPolicy()

    def __repr__(self) -> str:
        return f"CatVerifier({self.keyring!r}, {self.policy!r})"

    def open(self, token: str) -> CatClaims:
        raw = _decode_b64(token)
        opened = open_cose(raw, self.keyring)
        return parse_claims(opened.payload, opened.key.key_id, self.policy)

    def judge(self, claims: CatClaims, path: str, client: ClientAddress | str | None) -> None:
        judge_rules(claims.rules, path, client, self.policy, claims.token_id)


def seal_cat(claims: dict[Key, Value], key: CatKey, *, cwt_tag: bool = False) -> str:
    """A claims map (CBOR labels) as a base64url CAT signed or MACed with ``key``.

    Without the CWT tag (61) by default: RFC 8392 makes it optional, Akamai's and Eyevinn's
    generators leave it out by default, and Eyevinn's ES256 verifier refuses it.
    """
    raw = seal_cose(encode(claims), key, cwt_tag=cwt_tag)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
