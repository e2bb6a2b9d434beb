"""CloudFront signed URLs and signed cookies: canned and custom policies, RSA and ECDSA keys.

The signature covers a policy document: ``{"Statement":[{"Resource":...,"Condition":{...}}]}``.
A canned policy is rebuilt from the request (its resource is the requested URL, its only
condition ``DateLessThan``) and travels as ``Expires``; a custom policy travels whole, as
``Policy``. ``Signature`` and ``Policy`` use CloudFront's base64 alphabet (``+=/`` become
``-_~``). RSA signs with SHA-1, or SHA-256 when ``Hash-Algorithm=SHA256`` is sent; ECDSA (P-256
key groups) with SHA-256 only, DER-encoded. The same names prefixed ``CloudFront-`` are the
signed cookies.

Scope mapping: PlayGate's ``/videos/<id>/`` is the resource ``<public url>/videos/<id>/*``.
CloudFront's ``*`` matches anything, '/' included, so after a '/' it is segment-safe. On
verification a custom policy's resource is accepted in two shapes only: ``<public url><prefix>/*``
or one exact URL without wildcards; a ``*`` or ``?`` elsewhere, another host, several
statements, an unknown condition, are refused. Key ids are CloudFront key pair ids; the key type
(and so the algorithm) is pinned per key id, never read from the request. CloudFront carries no
token id: such tokens cannot be revoked one by one (revoke the video or rotate the key).

Players resolve relative URIs against the URL they fetched, without its query: a signed URL
covers the master playlist only. For HLS and DASH use the cookies (CloudFront's own advice), or
PlayGate's query-token manifest rewriting.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from ..core.errors import (
    BadSignature,
    ConfigurationError,
    MalformedToken,
    MissingToken,
    OutOfScope,
    UnknownKey,
)
from ..core.paths import normalize_path
from ..core.protocol import MAX_TOKEN_CHARS
from .policy import Access, Policy

FORMAT = "cloudfront"
COOKIE_PREFIX = "CloudFront-"
PARAMS = frozenset({"Expires", "Policy", "Signature", "Key-Pair-Id", "Hash-Algorithm"})
_TO_CF = bytes.maketrans(b"+=/", b"-_~")
_FROM_CF = bytes.maketrans(b"-_~", b"+=/")
_TIME_RE = re.compile(r"[1-9][0-9]{0,10}")
_KEY_ID_RE = re.compile(r"[A-Z0-9]{1,64}")
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"SHA1": hashes.SHA1, "SHA256": hashes.SHA256}
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).translate(_TO_CF).decode("ascii")


def b64decode(text: str) -> bytes:
    if len(text) > MAX_TOKEN_CHARS:
        raise MalformedToken("CloudFront parameter is longer than 2048 characters")
    try:
        raw = binascii.a2b_base64(text.encode("ascii").translate(_FROM_CF), strict_mode=True)
    except (UnicodeEncodeError, binascii.Error):
        raise MalformedToken("not CloudFront base64") from None
    if b64encode(raw) != text:
        raise MalformedToken("not canonical CloudFront base64")
    return raw


def _check_key(key_pair_id: str, key: object) -> None:
    if not _KEY_ID_RE.fullmatch(key_pair_id):
        raise ConfigurationError("CloudFront key pair ids are A-Z 0-9")
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        if key.key_size < 1024:
            raise ConfigurationError(f"CloudFront key {key_pair_id}: RSA keys of 1024+ bits")
    elif isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise ConfigurationError(f"CloudFront key {key_pair_id}: ECDSA keys are P-256")
    else:
        raise ConfigurationError(f"CloudFront key {key_pair_id}: RSA or ECDSA (P-256) only")


@dataclass(frozen=True, repr=False)
class CloudFrontPublicKey:
    """A public key of a CloudFront key group, by its key pair id."""

    key_pair_id: str
    key: PublicKey

    def __post_init__(self) -> None:
        _check_key(self.key_pair_id, self.key)

    @classmethod
    def from_pem(cls, key_pair_id: str, pem: bytes) -> CloudFrontPublicKey:
        try:
            key = serialization.load_pem_public_key(pem)
        except ValueError:
            raise ConfigurationError(
                f"CloudFront key {key_pair_id}: not a PEM public key"
            ) from None
        return cls(key_pair_id, key)  # type: ignore[arg-type]  # checked in __post_init__

    def __repr__(self) -> str:
        return f"CloudFrontPublicKey({self.key_pair_id!r})"

    def verify(self, signature: bytes, message: bytes, hash_name: str) -> None:
        algorithm = _HASHES[hash_name]()
        try:
            if isinstance(self.key, rsa.RSAPublicKey):
                self.key.verify(signature, message, padding.PKCS1v15(), algorithm)
            elif hash_name == "SHA256":
                self.key.verify(signature, message, ec.ECDSA(algorithm))
            else:
                raise BadSignature("ECDSA CloudFront signatures use SHA-256")
        except InvalidSignature:
            raise BadSignature("CloudFront signature mismatch") from None


@dataclass(frozen=True, repr=False)
class CloudFrontSigningKey:
    """The private half, held by the signer only."""

    key_pair_id: str
    key: PrivateKey

    def __post_init__(self) -> None:
        _check_key(self.key_pair_id, self.key)

    @classmethod
    def from_pem(cls, key_pair_id: str, pem: bytes) -> CloudFrontSigningKey:
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError):
            raise ConfigurationError(
                f"CloudFront key {key_pair_id}: not a PEM private key"
            ) from None
        return cls(key_pair_id, key)  # type: ignore[arg-type]  # checked in __post_init__

    def __repr__(self) -> str:
        return f"CloudFrontSigningKey({self.key_pair_id!r})"

    def public(self) -> CloudFrontPublicKey:
        return CloudFrontPublicKey(self.key_pair_id, self.key.public_key())

    def sign(self, message: bytes, hash_name: str = "SHA256") -> str:
        algorithm = _HASHES[hash_name]()
        if isinstance(self.key, rsa.RSAPrivateKey):
            return b64encode(self.key.sign(message, padding.PKCS1v15(), algorithm))
        if hash_name != "SHA256":
            raise ValueError("ECDSA CloudFront signatures use SHA-256")
        return b64encode(self.key.sign(message, ec.ECDSA(algorithm)))


def _resource_text(resource: str) -> str:
    # Built as text so that field order and spacing are CloudFront's; refuse, never escape.
    if not resource.isascii() or not resource.isprintable() or any(c in resource for c in '"\\'):
        raise ValueError("a CloudFront resource is printable ASCII without quotes")
    return resource


def canned_policy(resource: str, expires: int) -> str:
    return (
        f'{{"Statement":[{{"Resource":"{_resource_text(resource)}",'
        f'"Condition":{{"DateLessThan":{{"AWS:EpochTime":{expires}}}}}}}]}}'
    )


def custom_policy(
    resource: str, expires: int, not_before: int | None = None, network: str | None = None
) -> str:
    condition = f'"DateLessThan":{{"AWS:EpochTime":{expires}}}'
    if network is not None:
        condition += f',"IpAddress":{{"AWS:SourceIp":"{ipaddress.ip_network(network)}"}}'
    if not_before is not None:
        condition += f',"DateGreaterThan":{{"AWS:EpochTime":{not_before}}}'
    return (
        f'{{"Statement":[{{"Resource":"{_resource_text(resource)}","Condition":{{{condition}}}}}]}}'
    )


def signed_params(policy: Policy, key: CloudFrontSigningKey, public_url: str) -> dict[str, str]:
    """A custom policy over the video scope: ``Policy``, ``Signature``, ``Key-Pair-Id``,
    ``Hash-Algorithm`` (SHA-256 for RSA too: SHA-1 only where an old verifier needs it)."""
    document = custom_policy(
        f"{public_url}{policy.scope}*", policy.expires_at, policy.not_before, policy.client_network
    )
    return {
        "Policy": b64encode(document.encode("ascii")),
        "Signature": key.sign(document.encode("ascii"), "SHA256"),
        "Key-Pair-Id": key.key_pair_id,
        "Hash-Algorithm": "SHA256",
    }


def emit_url(policy: Policy, key: CloudFrontSigningKey, public_url: str) -> str:
    params = signed_params(policy, key, public_url)
    query = "&".join(f"{name}={value}" for name, value in params.items())
    return f"{public_url}{policy.entry_path}?{query}"


def emit_cookies(policy: Policy, key: CloudFrontSigningKey, public_url: str) -> dict[str, str]:
    """The ``CloudFront-*`` cookies for the video scope (set them on the viewer's domain)."""
    params = signed_params(policy, key, public_url)
    return {COOKIE_PREFIX + name: value for name, value in params.items()}


def split_query(query: str) -> tuple[dict[str, str], str]:
    """CloudFront's parameters, and the rest of the query in its order."""
    found: dict[str, str] = {}
    kept: list[str] = []
    for param in query.split("&") if query else ():
        name, _, value = param.partition("=")
        if name in PARAMS:
            if name in found:
                raise MalformedToken(f"more than one {name}")
            found[name] = value
        elif name.lower() in {p.lower() for p in PARAMS} or "%" in name:
            raise MalformedToken("ambiguous CloudFront parameter")
        else:
            kept.append(param)
    return found, "&".join(kept)


def verify(
    raw_path: str,
    query: str,
    cookies: Mapping[str, str],
    keys: Mapping[str, CloudFrontPublicKey],
    public_url: str,
) -> Access:
    """Authenticate a signed URL (its query) or, without one, the signed cookies.

    ``raw_path`` is the request path as received; ``public_url`` the scheme and host the
    viewer used (``https://d111111abcdef8.cloudfront.net``). The caller judges the access.
    """
    params, rest = split_query(query)
    if not params:
        params = {
            name: cookies[COOKIE_PREFIX + name]
            for name in PARAMS
            if COOKIE_PREFIX + name in cookies
        }
    if not params:
        raise MissingToken("no CloudFront signature")
    if ("Expires" in params) == ("Policy" in params) or not {"Signature", "Key-Pair-Id"} <= set(
        params
    ):
        raise MalformedToken(
            "a CloudFront signature needs Expires or Policy, Signature, Key-Pair-Id"
        )
    hash_name = params.get("Hash-Algorithm", "SHA1")
    if hash_name not in _HASHES:
        raise MalformedToken("unknown Hash-Algorithm")
    key = keys.get(params["Key-Pair-Id"])
    if key is None:
        raise UnknownKey("the signature names an unknown CloudFront key pair")
    signature = b64decode(params["Signature"])
    if "Expires" in params:
        expires = params["Expires"]
        if not _TIME_RE.fullmatch(expires):
            raise MalformedToken("Expires is not a time")
        resource = f"{public_url}{raw_path}" + (f"?{rest}" if rest else "")
        key.verify(signature, canned_policy(resource, int(expires)).encode("ascii"), hash_name)
        return Access(FORMAT, key.key_pair_id, int(expires), 0, normalize_path(raw_path), True)
    document = b64decode(params["Policy"])
    key.verify(signature, document, hash_name)
    return _custom_access(document, key.key_pair_id, public_url)


def _custom_access(document: bytes, key_id: str, public_url: str) -> Access:
    # Authenticated bytes only from here on; still, every shape PlayGate cannot judge is refused.
    try:
        doc = json.loads(document)
        (statement,) = doc["Statement"]
        resource = statement["Resource"]
        condition = statement["Condition"]
        if set(doc) != {"Statement"} or set(statement) != {"Resource", "Condition"}:
            raise ValueError
        if not set(condition) <= {"DateLessThan", "DateGreaterThan", "IpAddress"}:
            raise ValueError
        expires = _epoch(condition["DateLessThan"])
        not_before = _epoch(condition["DateGreaterThan"]) if "DateGreaterThan" in condition else 0
        network = _source_ip(condition["IpAddress"]) if "IpAddress" in condition else None
    except (ValueError, KeyError, TypeError):
        raise MalformedToken("a CloudFront policy PlayGate does not understand") from None
    if not isinstance(resource, str) or not resource.startswith(public_url + "/"):
        raise OutOfScope("the policy covers another host")
    path = resource[len(public_url) :]
    if path.endswith("/*") and not _has_wildcard(path[:-1]):
        scope, exact = normalize_path(path[:-1]), False
    elif not _has_wildcard(path) and "?" not in path:
        scope, exact = normalize_path(path), True
    else:
        raise MalformedToken("a resource PlayGate cannot judge segment by segment")
    return Access(FORMAT, key_id, expires, not_before, scope, exact, None, None, network)


def _epoch(value: Any) -> int:
    (epoch,) = value.values()
    if set(value) != {"AWS:EpochTime"} or isinstance(epoch, bool) or not isinstance(epoch, int):
        raise ValueError
    return epoch


def _source_ip(value: Any) -> str:
    (cidr,) = value.values()
    if set(value) != {"AWS:SourceIp"} or not isinstance(cidr, str):
        raise ValueError
    return str(ipaddress.ip_network(cidr, strict=True))


def _has_wildcard(text: str) -> bool:
    return "*" in text or "?" in text
