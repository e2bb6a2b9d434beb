"""Requests for the native verifier to judge, and the Python validator's verdict on each.

A seeded generator: valid tokens of every shape (v1, v2, sessions, networks, limits, two keys),
hand-made authentic bodies that break one parsing rule, and mutations of them all (single-byte
changes, truncations, swapped key ids, lifetimes, paths, addresses, query games), so that the
native verifier is compared with ``Verifier`` on thousands of inputs the vectors do not hold.
"""

from __future__ import annotations

import base64
import ipaddress
import random
import struct
from collections.abc import Iterator
from typing import NamedTuple

from edge_validator.core.decision import (
    DEFAULT_LEEWAY,
    DEFAULT_MAX_SESSION,
    DEFAULT_MAX_TTL,
    Verifier,
)
from edge_validator.core.errors import PlaybackTokenError
from edge_validator.core.keyring import SESSION_CONTEXT, KeyRing
from edge_validator.core.sessions import opens_session
from edge_validator.core.token import Claims, claims_bytes

T0 = 1_790_000_000
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
NETWORKS = [
    None,
    "127.0.0.1/32",
    "127.0.0.0/8",
    "10.0.0.0/8",
    "0.0.0.0/0",
    "203.0.113.0/24",
    "::1/128",
    "2001:db8::/32",
    "2001:db8:1:2::/64",
    "::/0",
    "fe80::/10",
]
CLIENTS = [
    "127.0.0.1",
    "10.1.2.3",
    "203.0.113.9",
    "::1",
    "2001:db8:1:2::5",
    "2001:db9::1",
    "::ffff:127.0.0.1",
    "::ffff:10.1.2.3",
    "fe80::1",
    "",
    "unix:",
    "127.0.0.01",
    "1.2.3",
]
PATHS = [
    "/videos/demo/master.m3u8",
    "/videos/demo/hls/v0/seg_001.ts",
    "/videos/demo/index.mpd",
    "/videos/demo/dash/chunk-1-00003.m4s",
    "/videos/demo2/a.ts",
    "/videos/dem/a.ts",
    "/videos/demo",
    "/videos/demo/",
    "/videos/12/a.ts",
    "/videos/123/a.ts",
    "/other/a.ts",
    "/videos/demo/MASTER.M3U8",
    "/videos/demo/my%20clip.mp4",
    "/videos/demo/a%2Bb.ts",
    "/videos/demo/.hidden",
    "/videos/demo/a..b.ts",
]
# The path attack table (tests/unit/test_paths.py), encoded-slash tricks, and a few escapes
# that are fine (%20, %21), so that the table also shows what is not refused.
ATTACK_PATHS = [
    "/videos/demo/../other/master.m3u8",
    "/videos/demo/./master.m3u8",
    "/videos/demo/..",
    "/videos/demo/%2e%2e/other/master.m3u8",
    "/videos/demo/%2E%2E/other/master.m3u8",
    "/videos/demo/.%2e/other/master.m3u8",
    "/videos/demo/%2e./other/master.m3u8",
    "/videos/demo/%2e/master.m3u8",
    "/videos/demo/..%2fother/master.m3u8",
    "/videos/demo%2f..%2fother/master.m3u8",
    "/videos/demo/%2F../other/x",
    "/videos/demo/..%5cother/master.m3u8",
    "/videos/demo/%5c..%5cother/x",
    "/videos/demo/..\\other/master.m3u8",
    "/videos/demo\\..\\other\\x",
    "/videos/demo//master.m3u8",
    "//videos/demo/master.m3u8",
    "/videos/demo/master.m3u8%00.ts",
    "/videos/demo/master.m3u8\x00.ts",
    "/videos/demo/%252e%252e/other/x",
    "/videos/demo/%25%32%65%25%32%65/x",
    "/videos/demo/%25",
    "/videos/demo/%2",
    "/videos/demo/%zz",
    "/videos/demo/%",
    "/videos/demo/%%41",
    "/videos/demo/vid\xe9.ts",
    "/videos/demo/%c3%a9.ts",
    "/videos/demo/%ff.ts",
    "/videos/demo/a b.ts",
    "/videos/demo/a\tb.ts",
    "/videos/demo/%0d%0aSet-Cookie:x",
    "/videos/demo/a;jsessionid=1.ts",
    "/videos/demo/%31%32.ts",
    "/videos/demo/%41.ts",
    "/videos/demo/%7e.ts",
    "/videos/demo/%7f.ts",
    "/videos/demo/%20.ts",
    "/videos/demo/%21.ts",
    "/videos/demo/..%3F",
    "/videos/demo/..%23",
    "/videos/demo/x%3Fy=1",
    "/videos/demo/..%3B/other/master.m3u8",
    "/videos/demo/a%23b.ts",
    "/videos/demo/a%2fb.ts",
    "/videos/demo/a%2Fb.ts",
    "videos/demo/master.m3u8",
    "/videos/demo/a.ts#frag",
    "",
    "/",
]
QUERY_GAMES = [
    "{path}?token={tok}",
    "{path}?session={tok}",
    "{path}?x=1&token={tok}&y=2",
    "{path}?token={tok}&token={tok}",
    "{path}?token={tok}&Token=x",
    "{path}?token={tok}&%74oken=x",
    "{path}?token={tok}&to%6ben=x",
    "{path}?token={tok}&to%256ben=x",
    "{path}?TOKEN={tok}",
    "{path}?Session={tok}",
    "{path}?cat=x&token={tok}",
    "{path}?token=",
    "{path}?token",
    "{path}?session=",
    "{path}?token={tok}&session={tok}",
    "/t/{tok}{path}?token={tok}",
    "/t/{tok}{path}?session={tok}",
    "/s/{tok}{path}?token={tok}",
    "/t/{tok}{path}?_HLS_msn=3",
    "/t/{tok}{path}?",
    "/t/{tok}{path}?&",
    "/t/{tok}",
    "/t/",
    "/t//videos/demo/a.ts",
    "/s/{tok}{path}",
    "/T/{tok}{path}",
    "/t/{tok}/{path}",
    "/t/{tok}{path}#x",
    "{path}?a=%&token={tok}",
    "{path}?%=1&token={tok}",
]


class Case(NamedTuple):
    target: bytes
    client: str
    now: float


class Verdict(NamedTuple):
    verdict: str  # allow, deny, or defer (the Python validator decides: state, sessions)
    reason: str  # the deny reason ("" otherwise)
    token_id: str  # the token id an allow or a deny names ("" when none)


def python_verdict(verifier: Verifier, case: Case) -> Verdict:
    """What the Python validator decides, before its shared-state checks."""
    client: str | None = case.client or None
    try:
        grant = verifier.verify_target(case.target.decode("latin-1"), client, case.now)
    except PlaybackTokenError as exc:
        return Verdict("deny", exc.reason, exc.token_id or "")
    claims = grant.claims
    if opens_session(grant) or claims.max_uses or claims.max_streams:
        return Verdict("defer", "", "")
    return Verdict("allow", "", claims.token_id)


def verifier(keyring: KeyRing) -> Verifier:
    """The validator's policy the native verifier is configured with (the defaults)."""
    return Verifier(
        keyring,
        max_ttl=DEFAULT_MAX_TTL,
        leeway=DEFAULT_LEEWAY,
        max_session=DEFAULT_MAX_SESSION,
        memo_size=0,
    )


def _holds(network: str | None, client: str) -> bool:
    if network is None:
        return True
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address in ipaddress.ip_network(network)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _sealed(body: bytes, keyring: KeyRing, key_id: str, session: bool) -> str:
    ring = keyring.with_context(SESSION_CONTEXT) if session else keyring
    key = ring.get(key_id)
    assert key is not None
    return _b64(body + key.mac(body))


def _random_claims(rng: random.Random, key_id: str, t0: int) -> Claims:
    start = t0 - rng.choice([0, 10, 100, 3000])
    ttl = rng.choice([1, 60, 300, 3600, 3601, 7200, 86400])
    return Claims(
        key_id=key_id,
        expires_at=start + ttl,
        not_before=start + rng.choice([0, 0, 0, 4, 6, 100]),
        scope=rng.choice(["/videos/demo/", "/videos/demo/", "/videos/12/", "/", "/videos/"]),
        token_id=rng.choice(["tid", "t" * 64, "a b", "x:y", "tid-" + str(rng.randrange(1000))]),
        session_id=rng.choice([None, None, "sid-1", "s"]),
        client_network=rng.choice(NETWORKS),
        user_id=rng.choice([None, None, "user-1"]),
        max_uses=rng.choice([0, 0, 0, 0, 1, 5]),
        max_streams=rng.choice([0, 0, 0, 0, 2]),
        session_seconds=rng.choice([0, 0, 14400, 30]),
    )


def _hand_made_bodies(rng: random.Random, key_id: str, t0: int) -> Iterator[bytes]:
    """Authentic bodies that break one parsing rule (or almost do)."""
    kid = key_id.encode()
    good = claims_bytes(_random_claims(rng, key_id, t0))
    scope = b"/videos/demo/"

    def body(
        version: int = 1,
        scope: bytes = scope,
        scope_len: int | None = None,
        tid: bytes = b"tid",
        sid: bytes = b"",
        net: bytes = b"",
        uid: bytes = b"",
        tail: bytes = b"",
        seconds: int | None = None,
        kid: bytes = kid,
    ) -> bytes:
        out = bytes((version, len(kid))) + kid
        out += struct.pack(">QQH", t0 + 300, t0, len(scope) if scope_len is None else scope_len)
        out += scope
        for field in (tid, sid, net, uid):
            out += bytes((len(field),)) + field
        out += struct.pack(">IH", 0, 0)
        if seconds is not None:
            out += struct.pack(">I", seconds)
        return out + tail

    yield body()
    yield body(tail=b"\x00")
    yield body(version=2)
    yield body(version=2, seconds=0)
    yield body(version=2, seconds=60)
    yield body(version=3)
    yield body(version=0)
    yield body(scope=b"videos/demo/")
    yield body(scope=b"/videos/demo")
    yield body(scope=b"")
    yield body(scope=b"/")
    yield body(scope=b"/vid\xe9os/")
    yield body(scope=b"/vid\x01/")
    yield body(scope_len=100)
    yield body(scope_len=3)
    yield body(tid=b"")
    yield body(tid=b"t\x00d")
    yield body(tid=b"t\x7fd")
    yield body(tid=b"t\xffd")
    yield body(sid=b"s\nid")
    yield body(uid=b"u\x80")
    yield body(net=bytes((32, 127, 0, 0, 1)))
    yield body(net=bytes((33, 127, 0, 0, 1)))
    yield body(net=bytes((24, 127, 0, 0, 1)))
    yield body(net=bytes((0, 0, 0, 0, 0)))
    yield body(net=bytes((7, 254, 0, 0, 0)))
    yield body(net=bytes((7, 255, 0, 0, 0)))
    yield body(net=bytes((8, 1, 2, 3)))
    yield body(net=bytes((128,)) + bytes(15) + b"\x01")
    yield body(net=bytes((129,)) + bytes(15) + b"\x01")
    yield body(net=bytes((96,)) + bytes(10) + b"\xff\xff" + bytes(4))
    yield body(net=bytes((104,)) + bytes(10) + b"\xff\xff\x7f\x00\x00\x00")
    yield body(net=bytes((80,)) + bytes(16))
    yield body(net=bytes((64,)) + b"\x20\x01\x0d\xb8\x00\x01\x00\x02" + bytes(8))
    yield body(net=bytes((63,)) + b"\x20\x01\x0d\xb8\x00\x01\x00\x03" + bytes(8))
    yield body(net=b"\x00")
    yield body(kid=b"k\xe9")
    yield body(kid=b"")
    yield good[:-1]
    yield good + b"\x00"
    for cut in (2, 10, 20, 30, 40):
        yield good[:cut]


def _mutations(rng: random.Random, token: str) -> Iterator[str]:
    """Single-character changes, truncations, extensions, padding and other spellings."""
    n = len(token)
    for _ in range(4):
        i = rng.randrange(n)
        yield token[:i] + rng.choice(B64) + token[i + 1 :]
    i = rng.randrange(n)
    yield token[:i] + token[i + 1 :]
    yield token[: rng.randrange(n)]
    yield token + rng.choice(B64)
    yield token + "=="
    yield token.replace("-", "+").replace("_", "/")
    yield token[:-1] + rng.choice("+/=.~!*%")
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-n % 4)))
    j = rng.randrange(len(raw))
    raw[j] ^= 1 << rng.randrange(8)
    yield _b64(bytes(raw))


def cases(keyring: KeyRing, count: int, seed: int = 16, t0: int = T0) -> list[Case]:
    """About ``count`` requests, the same ones for the same seed."""
    rng = random.Random(seed)
    key_ids = keyring.key_ids
    # Same key ids, other secrets (and one id the edge does not know).
    other = KeyRing({"zz": b"Z" * 32, **{kid: b"Q" * 32 for kid in key_ids}})
    out: list[Case] = []

    def add(target: str | bytes, client: str | None = None, now: float | None = None) -> None:
        raw = target if isinstance(target, bytes) else target.encode("latin-1")
        out.append(
            Case(
                raw,
                client if client is not None else rng.choice(CLIENTS),
                now if now is not None else t0 + rng.choice([0, 1, 4, 5.5, 6, 299, 305, 306]),
            )
        )

    def place(token: str, session: bool) -> str:
        path = rng.choice(PATHS)
        form = rng.random()
        if form < 0.6:
            return f"{'/s/' if session else '/t/'}{token}{path}"
        if form < 0.8:
            return f"{path}?{'session' if session else 'token'}={token}"
        return rng.choice(QUERY_GAMES).format(path=path, tok=token)

    while len(out) < count:
        kid = rng.choice(key_ids)
        session = rng.random() < 0.3
        claims = _random_claims(rng, kid, t0)
        if session:
            claims = claims._replace(session_seconds=0, max_uses=0)
        token = _sealed(claims_bytes(claims), keyring, kid, session)
        add(place(token, session))
        # The request the token was made for: in scope, in time, from its network.
        inside = [c for c in CLIENTS if _holds(claims.client_network, c)]
        kind = "/s/" if session else "/t/"
        add(f"{kind}{token}{claims.scope}seg.ts", rng.choice(inside or [""]), claims.not_before)
        # The same token in the wrong place, under another key, or signed elsewhere.
        add(place(token, not session))
        add(place(_sealed(claims_bytes(claims), other, kid, session), session))
        swapped = claims._replace(key_id=rng.choice([*key_ids, "zz", "nope"]))
        if swapped.key_id in key_ids:
            add(place(_sealed(claims_bytes(swapped), keyring, kid, session), session))
        else:
            add(place(_sealed(claims_bytes(swapped), other, "zz", session), session))
        for mutated in _mutations(rng, token):
            add(place(mutated, session))
        for raw in _hand_made_bodies(rng, kid, t0):
            add(place(_sealed(raw, keyring, kid, session), session))
        attack = rng.choice(ATTACK_PATHS)
        add(f"/t/{token}{attack}")
        add(f"{attack}?token={token}".encode("latin-1"))
        add(f"/t/{'A' * 2049}/videos/demo/a.ts")
        add(f"/t/{'A' * 2048}/videos/demo/a.ts")
        add(f"/t/{token}/videos/demo/a.ts", now=claims.expires_at + rng.choice([4, 5, 6, 7]))
        add(f"/t/{token}/videos/demo/a.ts", now=claims.not_before - rng.choice([4, 5, 6, 7]))
    return out


def opening_cases(keyring: KeyRing, count: int, seed: int = 17, t0: int = T0) -> list[Case]:
    """About ``count`` start-token manifest requests, most of which open a playback session:
    path and query tokens, other query parameters, every kind of client, bound and unbound,
    sessions cut by the cap; and, mixed in, the general cases (which open none or few)."""
    rng = random.Random(seed)
    out: list[Case] = []
    while len(out) < count:
        claims = _random_claims(rng, rng.choice(keyring.key_ids), t0)._replace(
            scope="/videos/demo/",
            max_uses=rng.choice([0, 0, 0, 2]),
            max_streams=0,
            session_seconds=rng.choice([1, 30, 14400, 43200, 50000]),
            not_before=t0 - rng.choice([0, 10, 40000]),
        )
        claims = claims._replace(expires_at=claims.not_before + rng.choice([60, 3600]))
        token = _sealed(claims_bytes(claims), keyring, claims.key_id, False)
        path = rng.choice(["/videos/demo/master.m3u8", "/videos/demo/index.mpd"])
        query = rng.choice(["", "", "a=1", "a=1&b=%41&&c"])
        if rng.random() < 0.5:
            target = f"/t/{token}{path}" + (f"?{query}" if query else "")
        else:
            target = f"{path}?" + "&".join(p for p in (query, f"token={token}") if p)
            if query and rng.random() < 0.5:
                target = f"{path}?token={token}&{query}"
        inside = [c for c in CLIENTS if _holds(claims.client_network, c)]
        client = rng.choice(inside or CLIENTS)
        now = claims.not_before + rng.choice([0, 1, 59.5, 60, 3000])
        out.append(Case(target.encode("latin-1"), client, now))
    return out + cases(keyring, count // 4, seed=seed)


def hostile_cases(keyring: KeyRing, count: int, seed: int = 23, t0: int = T0) -> list[Case]:
    """About ``count`` requests an attacker would craft rather than mutate at random: integer
    fields at their limits (past 2**53, where Lua's numbers stop being exact), key ids that are
    ASCII but no key's, fields that run exactly to the end or one byte past it, tokens of
    exactly 2048 characters and one more, standard-base64 and padded spellings, escapes in the
    token and around the path, and query strings built to confuse the split."""
    rng = random.Random(seed)
    key_ids = keyring.key_ids
    out: list[Case] = []

    def add(target: str, now: float, client: str = "127.0.0.1") -> None:
        out.append(Case(target.encode("latin-1"), client, now))

    def raw(
        kid: bytes,
        expires_at: int,
        not_before: int,
        scope: bytes = b"/videos/demo/",
        fields: tuple[bytes, bytes, bytes, bytes] = (b"tid", b"", b"", b""),
        limits: tuple[int, int] = (0, 0),
        seconds: int | None = None,
        tail: bytes = b"",
    ) -> bytes:
        body = bytes((1 if seconds is None else 2, len(kid))) + kid
        body += struct.pack(">QQH", expires_at, not_before, len(scope)) + scope
        for field in fields:
            body += bytes((len(field),)) + field
        body += struct.pack(">IH", *limits)
        if seconds is not None:
            body += struct.pack(">I", seconds)
        return body + tail

    big = [2**64 - 1, 2**63, 2**53 + 1, 2**53, 2**53 - 1, 2**32, 2**32 - 1, 0, 1]
    while len(out) < count:
        kid = rng.choice(key_ids)
        k = kid.encode()
        session = rng.random() < 0.3
        now = t0 + rng.choice([0, 5, 5.000001, 4.999999, 3600, 3605, 3605.5, 3606])
        exp, nb = rng.choice(
            [
                (t0 + 3600, t0),
                (t0 + 3601, t0),
                (t0 + 3600, t0 + 5),
                (rng.choice(big), t0),
                (t0 + 60, rng.choice(big)),
                (rng.choice(big), rng.choice(big)),
                (2**53 + 3600, 2**53),
            ]
        )
        scope = rng.choice([b"/videos/demo/", b"/", b"/videos/a b/", b"/videos/a%20b/", b"//"])
        fields = rng.choice(
            [
                (b"tid", b"", b"", b""),
                (b"t" * 255, b"s" * 255, b"", b"u" * 255),
                (b"tid", b"sid", bytes((0, 0, 0, 0, 0)), b""),
                (b"tid", b"", bytes((32,)) + bytes((127, 0, 0, 1)), b""),
                (b"~", b" ", b"", b"}"),
            ]
        )
        limits = rng.choice([(0, 0), (2**32 - 1, 0), (0, 2**16 - 1)])
        seconds = rng.choice([None, None, 2**32 - 1, 1])
        body = raw(k, exp, nb, scope, fields, limits, seconds if not session else None)
        for variant in (
            body,
            body[:-1],
            body + b"\x00",
            raw(b"k y", exp, nb),  # ASCII, no key's
            raw(b"k\x01", exp, nb),
            raw(b"\x7f", exp, nb),
            raw(b"x" * 32, exp, nb),
            raw(k, exp, nb, fields=(b"tid", b"", b"", b"\xff")),
            raw(k, exp, nb, tail=b"\xff" * 4),
        ):
            token = _sealed(variant, keyring, kid, session)
            mark = "/s/" if session else "/t/"
            path = rng.choice(
                [
                    scope.decode("latin-1") + "seg.ts",
                    "/videos/a%20b/seg.ts",
                    "/videos/demo/master.m3u8",
                    "/videos/demo/MASTER.m3u8",
                    "/videos/demo/seg.ts/",
                    "/videos/demo/.../seg.ts",
                    "/videos/demo/seg.ts.",
                    "/videos/demo/%41",
                    "/videos/demo/%7e",
                    "/videos/demo/%2D",
                ]
            )
            param = "session" if session else "token"
            add(f"{mark}{token}{path}", now)
            add(f"{path}?{param}={token}", now)
            add(f"{path}?&&{param}={token}&", now)
            add(f"{path}?a=1;{param}={token}", now)
            add(f"{path}?{param}={token}={token}", now)
            add(f"{path}?{param}={token}%3D", now)
            add(f"{path}?{param}={token}" + "&x" * 500, now)
            add(f"{path}?{param}={token.replace('-', '+').replace('_', '/')}", now)
            add(f"{path}?{param}={token}" + "=" * (-len(token) % 4), now)
            add(f"{mark}%{token[1:]}{path}", now)
            add(f"{mark}{token}{path}?{param}=", now)
            add(f"{mark}{token}/t/{token}{path}", now)
        # Tokens of exactly 2048 characters (the most allowed) and 2049, sealed.
        for chars in (2047, 2048, 2049):
            target_bytes = chars * 3 // 4
            pad = target_bytes - len(raw(k, t0 + 60, t0, b"/")) - 32
            if pad > 0:
                long_scope = b"/" + b"a" * (pad - 1) + b"/"
                body = raw(k, t0 + 60, t0, long_scope[: pad + 1])
                token = _sealed(body, keyring, kid, False)[:chars]
                add(f"/t/{token}/{'a' * (pad - 1)}/seg.ts", t0)
    return out


def layout_cases(keyring: KeyRing, count: int, seed: int = 29, t0: int = T0) -> list[Case]:
    """About ``count`` requests aimed at the hot paths' shortcuts: authentic bodies whose
    optional-claim lengths make a field run into the next one (the session id over the network
    and user lengths, the user id over the limits, the limits over a version 2 allowance), a
    zero-length scope followed by a '/' byte (read ahead of the scope check), and tokens with
    '=' (which stops nginx's decoder short) at every kind of place, NULs, and other
    alphabets."""
    rng = random.Random(seed)
    key_ids = keyring.key_ids
    out: list[Case] = []
    printable_limits = b"AAAAAA"  # max_uses 0x41414141, max_streams 0x4141: printable bytes
    zero_limits = bytes(6)
    tails = [
        bytes((0, 0, 0)) + zero_limits,
        bytes((0, 0, 0)) + zero_limits[:-1],
        bytes((0, 0, 0)) + zero_limits + b"\x00",
        bytes((0, 0, 1)) + b"u" + zero_limits,
        bytes((0, 0, 6)) + zero_limits,  # the user id is the limits: none left
        bytes((0, 0, 6)) + printable_limits + zero_limits,
        bytes((0, 0, 6)) + printable_limits,
        bytes((2,)) + b"ab" + bytes((0, 0)) + zero_limits,
        bytes((3, 0, 0, 0)) + zero_limits,  # the session id is the next lengths
        bytes((3,)) + b"abc" + bytes((0, 0)) + zero_limits,
        bytes((3,)) + b"abc" + bytes((0,)) + zero_limits,
        bytes((0, 5, 32, 127, 0, 0, 1, 0)) + zero_limits,
        bytes((0, 5, 32, 127, 0, 0, 1)) + zero_limits,
        bytes((0, 0, 9)) + zero_limits,
        bytes((0, 1)) + zero_limits,
        bytes((6,)) + zero_limits + bytes((0, 0, 0)) + zero_limits,
        bytes((6,)) + printable_limits + bytes((0, 0)) + zero_limits,
        bytes((255,)) + b"s" * 255 + bytes((0, 0)) + zero_limits,
        bytes((255,)) + b"s" * 254 + bytes((0, 0)) + zero_limits,
        b"",
        bytes((0,)),
        bytes((0, 0)),
        bytes((0, 0, 0)),
    ]
    seconds_tails = [b"", struct.pack(">I", 0), struct.pack(">I", 60), b"\x00\x00\x3c"]

    def add(target: str, now: float) -> None:
        out.append(Case(target.encode("latin-1"), "127.0.0.1", now))

    while len(out) < count:
        kid = rng.choice(key_ids)
        k = kid.encode()
        session = rng.random() < 0.3
        version = 1 if session or rng.random() < 0.5 else 2
        scope = rng.choice([b"/videos/demo/", b"/", b"/videos/", b"/videos/demo"])
        head = bytes((version, len(k))) + k + struct.pack(">QQ", t0 + 3600, t0)
        tid = rng.choice([b"tid", b"/" * 47, b"t" * 255])
        after = bytes((len(tid),)) + tid + rng.choice(tails)
        if version == 2:
            after += rng.choice(seconds_tails)
        bodies = [
            head + struct.pack(">H", len(scope)) + scope + after,
            # No scope, and the next byte a '/': the token id's length is 47.
            head + struct.pack(">H", 0) + bytes((47,)) + b"/" * 47 + after[1 + len(tid) :],
            head + struct.pack(">H", len(scope) + 1) + scope + after,
            head + struct.pack(">H", len(scope) - 1) + scope + after,
        ]
        mark = "/s/" if session else "/t/"
        param = "session" if session else "token"
        path = rng.choice(["/videos/demo/seg.ts", "/videos/demo/master.m3u8", "/videos/demos/a"])
        for body in bodies:
            token = _sealed(body, keyring, kid, session)
            add(f"{mark}{token}{path}", t0)
            add(f"{path}?{param}={token}", t0)
        token = _sealed(bodies[0], keyring, kid, session)
        n = len(token)
        spots = {0, 1, n // 2, n - 3, n - 2, n - 1, rng.randrange(n)}
        for i in spots:
            for bad in ("=", "==", "\x00", "+", "/", "=A", "%3D"):
                add(f"{mark}{token[:i]}{bad}{token[i + 1 :]}{path}", t0)  # replacing one
                add(f"{path}?{param}={token[:i]}{bad}{token[i:]}", t0)  # inserted
        for pad in ("=", "==", "===", "A=", "AA==", "A===", "====", "=" + token[-3:]):
            add(f"{mark}{token}{pad}{path}", t0)
            add(f"{mark}{token[: -len(pad)]}{pad}{path}", t0)
            add(f"{path}?{param}={token}{pad}", t0)
    return out
