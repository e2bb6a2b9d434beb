"""CWT and CAT claims mapped onto PlayGate's rules (the table is in docs/cat.md).

``parse_claims`` runs once per token, on authenticated bytes only, and turns the claims map
into ``CatClaims``: PlayGate's ``Claims`` (so expiry, scope, revocation, use and stream limits
are judged by the same code as for PlayGate tokens) plus ``CatRules`` for what only CAT can say
(scheme and host, an exact path, several client networks, methods, renewal).

Deny by default: a claim this module does not implement is refused, never ignored, because an
unchecked restriction is a token that grants more than its issuer meant. That covers ``crit``.
Claim keys: RFC 8392 section 4 (1-7) and the CTA-5007 registrations 308-324, cross-checked in
three independent implementations (see docs/cat.md).
"""

from __future__ import annotations

from typing import NamedTuple

from ..addresses import ClientAddress, Network, packed_ip, parse_network
from ..errors import IpMismatch, MalformedToken, OutOfScope, UnsupportedClaim
from ..token import Claims
from . import cbor

ISS, SUB, AUD, EXP, NBF, IAT, CTI = 1, 2, 3, 4, 5, 6, 7
CRIT = 45  # as labelled by Akamai's EdgeWorkers CAT module; see docs/cat.md
CATREPLAY, CATPOR, CATV, CATNIP, CATU, CATM = 308, 309, 310, 311, 312, 313
CATR = 323
# PlayGate's own claims, in the CWT private-use range (below -65536, RFC 8392 section 9.1).
PG_SESSION, PG_STREAMS = -70001, -70002
# catu components (RFC 3986 parts) and match types.
URI_SCHEME, URI_HOST, URI_PATH = 0, 1, 3
MATCH_EXACT, MATCH_PREFIX = 0, 1
# catreplay values.
REPLAY_PERMITTED, REPLAY_PROHIBITED, REPLAY_DETECT = 0, 1, 2
# catr renewal types and parameters.
RENEWAL_TYPES = {0: "automatic", 1: "cookie", 2: "header", 3: "redirect"}
CATR_TYPE, CATR_EXPADD, CATR_DEADLINE, CATR_COOKIE, CATR_HEADER = 0, 1, 2, 3, 4
# RFC 9164 IP address and prefix tags.
IPV4_TAG, IPV6_TAG = 52, 54
PAYLOAD_TAGS = frozenset({IPV4_TAG, IPV6_TAG})
IMPLEMENTED = frozenset(
    {ISS, SUB, AUD, EXP, NBF, IAT, CTI, CRIT, CATREPLAY, CATV, CATNIP, CATU, CATM, CATR}
    | {PG_SESSION, PG_STREAMS}
)
MAX_TEXT = 255
METHODS_SERVED = "GET"


class Renewal(NamedTuple):
    """The ``catr`` claim, parsed (renewal itself is the playback-session work's)."""

    type: str
    expadd: int
    deadline: int | None
    name: str | None


class CatRules(NamedTuple):
    """What a CAT says that PlayGate's Claims cannot: judged by ``judge_rules``."""

    scheme: str | None = None
    host: str | None = None
    path_exact: str | None = None
    networks: tuple[Network, ...] = ()
    network_texts: tuple[str, ...] = ()
    methods: tuple[str, ...] | None = None
    renewal: Renewal | None = None
    issuer: str | None = None
    issued_at: int | None = None
    replay: int = REPLAY_PERMITTED
    # nbf when it is later than iat (0: none). The claims' not_before is then iat: when the token
    # was issued is what revocations and the lifetime bound judge; it plays only from nbf.
    starts_at: int = 0


class CatClaims(Claims):
    """PlayGate claims from a CAT; ``rules`` holds the checks only CAT makes."""

    rules: CatRules


class CatPolicy(NamedTuple):
    """What this deployment expects of every CAT (PLAYGATE_CAT_ISSUER / _AUDIENCE / _ORIGIN)."""

    issuer: str | None = None
    audience: str | None = None
    # scheme://host viewers use to reach this edge; catu scheme and host are judged against it.
    origin: tuple[str, str] | None = None


def _refuse(message: str) -> MalformedToken:
    return MalformedToken(f"CAT claims: {message}")


def _int(value: cbor.Value, name: str, low: int = 0, high: int = 2**53) -> int:
    if type(value) is not int or not low <= value <= high:
        raise _refuse(f"{name} must be an integer from {low} to {high}")
    return value


def _text(value: cbor.Value, name: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
        raise _refuse(f"{name} must be non-empty text")
    if not (value.isascii() and value.isprintable()):
        raise _refuse(f"{name} must be printable ASCII")
    return value


def _match(value: cbor.Value, name: str) -> tuple[int, str]:
    if not isinstance(value, dict) or len(value) != 1:
        raise UnsupportedClaim(f"catu {name}: exactly one match type is implemented per part")
    ((kind, text),) = value.items()
    if kind not in (MATCH_EXACT, MATCH_PREFIX):
        raise UnsupportedClaim(f"catu {name}: only exact and prefix matches are implemented")
    return int(kind), _text(text, f"catu {name}")


def _catu(value: cbor.Value) -> tuple[str, str | None, str | None, str | None]:
    """(scope, exact path, scheme, host) from a catu map."""
    if not isinstance(value, dict) or not value:
        raise _refuse("catu must be a non-empty map")
    scope, exact, scheme, host = "/", None, None, None
    for part, spec in value.items():
        if part == URI_SCHEME:
            kind, scheme = _match(spec, "scheme")
            if kind != MATCH_EXACT:
                raise UnsupportedClaim("catu scheme: only exact match is implemented")
            scheme = scheme.lower()
        elif part == URI_HOST:
            kind, host = _match(spec, "host")
            if kind != MATCH_EXACT:
                raise UnsupportedClaim("catu host: only exact match is implemented")
            host = host.lower()
        elif part == URI_PATH:
            kind, path = _match(spec, "path")
            if not path.startswith("/") or "//" in path or "/./" in path + "/" or "/../" in path:
                raise _refuse("catu path must be an absolute path without dot segments")
            if kind == MATCH_PREFIX:
                # Segment-safe like PlayGate's scope: /videos/12 would cover /videos/123.
                if not path.endswith("/"):
                    raise UnsupportedClaim("catu path prefix must end with '/' (segment-safe)")
                scope = path
            else:
                exact, scope = path, path[: path.rindex("/") + 1]
        else:
            raise UnsupportedClaim(f"catu part {part!r} is not implemented")
    return scope, exact, scheme, host


def _prefix(tag: int, value: cbor.Value) -> str:
    """An RFC 9164 address (tag 52/54 bstr) or prefix ([length, trimmed bstr]) as CIDR text."""
    size = 4 if tag == IPV4_TAG else 16
    if isinstance(value, bytes):
        if len(value) != size:
            raise _refuse("catnip address has the wrong length")
        address, length = value, size * 8
    elif isinstance(value, list) and len(value) == 2 and type(value[0]) is int:
        length, trimmed = int(value[0]), value[1]
        if not isinstance(trimmed, bytes) or not 0 <= length <= size * 8:
            raise _refuse("catnip prefix is malformed")
        # RFC 9164: trailing zero bytes are left out, and bits past the length are zero.
        if len(trimmed) > size or (trimmed and trimmed[-1] == 0):
            raise _refuse("catnip prefix is not in its shortest form")
        address = trimmed.ljust(size, b"\0")
        if int.from_bytes(address, "big") & ((1 << (size * 8 - length)) - 1):
            raise _refuse("catnip prefix has host bits set")
    else:
        raise UnsupportedClaim("catnip: only RFC 9164 addresses and prefixes are implemented")
    if size == 4:
        text = ".".join(str(b) for b in address)
    else:
        text = ":".join(address[i : i + 2].hex() for i in range(0, 16, 2))
    return f"{text}/{length}"


def _catnip(value: cbor.Value) -> tuple[tuple[Network, ...], tuple[str, ...]]:
    if not isinstance(value, list) or not value or len(value) > 16:
        raise _refuse("catnip must be a list of 1 to 16 networks")
    texts = []
    for item in value:
        if not isinstance(item, cbor.Tag):
            raise UnsupportedClaim("catnip: autonomous system numbers are not implemented")
        texts.append(_prefix(item.tag, item.value))
    networks = []
    for text in texts:
        network = parse_network(text)
        if network is None:  # pragma: no cover - _prefix builds only valid CIDRs
            raise _refuse("catnip network is malformed")
        networks.append(network)
    return tuple(networks), tuple(texts)


def _catr(value: cbor.Value) -> Renewal:
    if not isinstance(value, dict):
        raise _refuse("catr must be a map")
    kind = RENEWAL_TYPES.get(_int(value.get(CATR_TYPE), "catr type", 0, 3))
    assert kind is not None
    unknown = set(value) - {CATR_TYPE, CATR_EXPADD, CATR_DEADLINE, CATR_COOKIE, CATR_HEADER}
    if unknown:
        raise UnsupportedClaim("catr parameter not implemented")
    deadline = value.get(CATR_DEADLINE)
    name = value.get(CATR_COOKIE if kind == "cookie" else CATR_HEADER)
    return Renewal(
        kind,
        _int(value.get(CATR_EXPADD), "catr expadd", 1, 86400),
        None if deadline is None else _int(deadline, "catr deadline", 0, 86400),
        None if name is None else _text(name, "catr name"),
    )


def _audience(value: cbor.Value) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    return tuple(_text(item, "aud") for item in items)


def parse_claims(payload: bytes, key_id: str, policy: CatPolicy) -> CatClaims:
    """Authenticated payload bytes to CatClaims; raises PlaybackTokenError when refused."""
    doc = cbor.decode(payload, tags=PAYLOAD_TAGS, max_depth=5, max_items=256)
    if not isinstance(doc, dict):
        raise _refuse("the CWT payload is not a map")
    unknown = set(doc) - IMPLEMENTED
    if unknown:
        raise UnsupportedClaim(f"claim {sorted(map(str, unknown))[0]} is not implemented")
    crit = doc.get(CRIT, [])
    if not isinstance(crit, list) or not all(
        type(label) in (int, str) and label in IMPLEMENTED for label in crit
    ):
        raise UnsupportedClaim("a critical claim is not implemented")
    if _int(doc.get(CATV, 1), "catv", 1) != 1:
        raise UnsupportedClaim("only catv 1 is implemented")
    expires_at = _int(doc.get(EXP), "exp")
    issued_at = None if IAT not in doc else _int(doc[IAT], "iat")
    # The start of the token's life bounds how long it lives (PLAYGATE_MAX_TTL), and video and
    # user revocations cover tokens issued up to theirs: nbf, else iat, and iat when earlier (a
    # token minted ahead of its start was issued then).
    start = doc.get(NBF, issued_at)
    if start is None:
        raise _refuse("a CAT needs nbf or iat (its lifetime must be bounded)")
    starts_at = _int(start, "nbf")
    not_before = starts_at if issued_at is None else min(starts_at, issued_at)
    cti = doc.get(CTI)
    if not isinstance(cti, bytes) or not 1 <= len(cti) <= 64:
        raise _refuse("cti (the token id, for revocation) must be 1-64 bytes")
    issuer = None if ISS not in doc else _text(doc[ISS], "iss")
    if policy.issuer is not None and issuer != policy.issuer:
        raise _refuse("iss is not the configured issuer")
    if AUD in doc and (policy.audience is None or policy.audience not in _audience(doc[AUD])):
        raise _refuse("aud does not name this audience")
    if policy.audience is not None and AUD not in doc:
        raise _refuse("aud is required")
    scope, exact, scheme, host = _catu(doc[CATU]) if CATU in doc else ("/", None, None, None)
    if (scheme or host) and policy.origin is None:
        raise UnsupportedClaim("catu names a scheme or host but PLAYGATE_CAT_ORIGIN is unset")
    networks, network_texts = _catnip(doc[CATNIP]) if CATNIP in doc else ((), ())
    methods = None
    if CATM in doc:
        raw_methods = doc[CATM]
        if not isinstance(raw_methods, list) or not raw_methods:
            raise _refuse("catm must be a non-empty list")
        methods = tuple(_text(m, "catm").upper() for m in raw_methods)
    replay = _int(doc.get(CATREPLAY, 0), "catreplay", 0, 2)
    session = None if PG_SESSION not in doc else _text(doc[PG_SESSION], "session")
    streams = 0 if PG_STREAMS not in doc else _int(doc[PG_STREAMS], "streams", 1, 1000)
    rules = CatRules(
        scheme,
        host,
        exact,
        networks,
        network_texts,
        methods,
        _catr(doc[CATR]) if CATR in doc else None,
        issuer,
        issued_at,
        replay,
        starts_at if starts_at > not_before else 0,
    )
    claims = CatClaims(
        key_id,
        expires_at,
        not_before,
        scope,
        cti.hex(),
        session,
        network_texts[0] if len(network_texts) == 1 else None,
        None if SUB not in doc else _text(doc[SUB], "sub"),
        1 if replay == REPLAY_PROHIBITED else 0,
        # Reuse detection: a second concurrent stream of this token (or user) is refused.
        max(streams, 1) if replay == REPLAY_DETECT else streams,
    )
    claims.rules = rules
    return claims


def judge_rules(
    rules: CatRules, path: str, client: ClientAddress | str | None, policy: CatPolicy, token_id: str
) -> None:
    """The request checks only a CAT makes; raises PlaybackTokenError (same reasons)."""
    if rules.path_exact is not None and path != rules.path_exact:
        raise OutOfScope("the token does not cover this path", token_id=token_id)
    if rules.scheme is not None or rules.host is not None:
        assert policy.origin is not None  # parse_claims refused the token otherwise
        scheme, host = policy.origin
        if rules.scheme not in (None, scheme) or rules.host not in (None, host):
            raise OutOfScope("the token is for another scheme or host", token_id=token_id)
    if rules.methods is not None and METHODS_SERVED not in rules.methods:
        raise OutOfScope("the token does not allow GET", token_id=token_id)
    if rules.networks:
        if isinstance(client, str):
            client = ClientAddress.parse(client)
        if client is None or not any(net.holds(client) for net in rules.networks):
            raise IpMismatch("the token is bound to other client networks", token_id=token_id)


__all__ = [
    "CatClaims",
    "CatPolicy",
    "CatRules",
    "Renewal",
    "build_claims",
    "judge_rules",
    "parse_claims",
]


def _network_item(cidr: str) -> cbor.Tag:
    """CIDR text as an RFC 9164 prefix: [length, address without trailing zero bytes]."""
    address, _, length_text = cidr.partition("/")
    packed = packed_ip(address)
    if packed is None or not length_text.isdigit():
        raise ValueError(f"not a network: {cidr}")
    tag = IPV4_TAG if len(packed) == 4 else IPV6_TAG
    return cbor.Tag(tag, [int(length_text), packed.rstrip(b"\0")])


def build_claims(
    claims: Claims,
    *,
    issuer: str | None = None,
    audience: str | None = None,
    renewal: Renewal | None = None,
) -> dict[cbor.Key, cbor.Value]:
    """PlayGate claims as a CAT claims map: the inverse of ``parse_claims``."""
    if claims.max_uses > 1:
        raise ValueError("a CAT carries one-time use (catreplay) only: max_uses is 0 or 1")
    doc: dict[cbor.Key, cbor.Value] = {
        EXP: claims.expires_at,
        NBF: claims.not_before,
        IAT: claims.not_before,
        CTI: bytes.fromhex(claims.token_id),
        CATV: 1,
        CATU: {URI_PATH: {MATCH_PREFIX: claims.scope}},
    }
    if issuer is not None:
        doc[ISS] = issuer
    if audience is not None:
        doc[AUD] = audience
    if claims.user_id is not None:
        doc[SUB] = claims.user_id
    if claims.client_network is not None:
        doc[CATNIP] = [_network_item(claims.client_network)]
    if claims.max_uses == 1:
        doc[CATREPLAY] = REPLAY_PROHIBITED
    if claims.session_id is not None:
        doc[PG_SESSION] = claims.session_id
    if claims.max_streams:
        doc[PG_STREAMS] = claims.max_streams
    if renewal is not None:
        spec: dict[cbor.Key, cbor.Value] = {
            CATR_TYPE: {v: k for k, v in RENEWAL_TYPES.items()}[renewal.type],
            CATR_EXPADD: renewal.expadd,
        }
        if renewal.deadline is not None:
            spec[CATR_DEADLINE] = renewal.deadline
        if renewal.name is not None:
            spec[CATR_COOKIE if renewal.type == "cookie" else CATR_HEADER] = renewal.name
        doc[CATR] = spec
    return doc
