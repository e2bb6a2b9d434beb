"""Regenerate tests/vectors/tokens.json. The committed file is the contract: run this only when
the format changes on purpose (new version), never to make a failing test pass."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from edge_validator.core.keyring import SESSION_CONTEXT, KeyRing, encode_secret
from edge_validator.core.token import Claims, claims_bytes, seal

SECRETS = {"k1": bytes(range(32)), "rot-2026": bytes(range(100, 148))}
KEYRING = KeyRing(SECRETS, "k1")
T0 = 1_790_000_000

VALID = [
    ("minimal", Claims("k1", T0 + 300, T0, "/videos/demo/", "tid-minimal")),
    (
        "all_claims_ipv4",
        Claims(
            "k1",
            T0 + 600,
            T0 - 10,
            "/videos/v-42/",
            "tid-all",
            "sess-9",
            "203.0.113.0/24",
            "user-7",
            3,
            2,
        ),
    ),
    (
        "ipv6_host",
        Claims("rot-2026", T0 + 60, T0, "/videos/x_y/", "tid-v6", None, "2001:db8::1/128"),
    ),
    ("session_only", Claims("k1", T0 + 3600, T0, "/videos/abc/", "t", "s")),
    # Version 2: a start token that opens a playback session of up to 4 h.
    (
        "start_with_session",
        Claims("k1", T0 + 10, T0, "/videos/film/", "tid-start", session_seconds=14400),
    ),
]
# Session tokens: version 1 bodies MACed under the session context (TOKEN_FORMAT.md).
SESSIONS = [
    (
        "session_narrowed",
        Claims("k1", T0 + 14400, T0, "/videos/film/", "tid-start", "sid-1", "203.0.113.0/24"),
    ),
]
SESSION_KEYRING = KEYRING.with_context(SESSION_CONTEXT)


def _raw_token(body: bytes, key_id: str = "k1") -> str:
    """Sign arbitrary bytes: for vectors whose MAC is right but whose structure is wrong."""
    key = KEYRING.get(key_id)
    assert key is not None
    return base64.urlsafe_b64encode(body + key.mac(body)).rstrip(b"=").decode()


def invalid_vectors() -> list[dict[str, object]]:
    minimal = seal(VALID[0][1], KEYRING)
    ip_bound = seal(VALID[1][1], KEYRING)
    body = claims_bytes(VALID[0][1])
    other = KeyRing({"k1": bytes(range(1, 33))}, "k1")
    path = "/videos/demo/master.m3u8"
    flipped = minimal[:20] + ("A" if minimal[20] != "A" else "B") + minimal[21:]
    cases: list[tuple[str, str, str, str | None, int, str]] = [
        ("tampered_char", flipped, path, None, T0 + 1, "bad_signature"),
        ("other_secret", seal(VALID[0][1], other), path, None, T0 + 1, "bad_signature"),
        (
            "unknown_key",
            _raw_token(body.replace(b"\x02k1", b"\x02k9")),
            path,
            None,
            T0,
            "unknown_key",
        ),
        ("expired", minimal, path, None, T0 + 306, "expired"),
        ("not_yet_valid", minimal, path, None, T0 - 6, "not_yet_valid"),
        ("out_of_scope_prefix", minimal, "/videos/demo2/master.m3u8", None, T0 + 1, "out_of_scope"),
        ("out_of_scope_dir", minimal, "/videos/demo", None, T0 + 1, "out_of_scope"),
        ("ip_mismatch", ip_bound, "/videos/v-42/a.ts", "198.51.100.7", T0 + 1, "ip_mismatch"),
        ("ip_missing", ip_bound, "/videos/v-42/a.ts", None, T0 + 1, "ip_mismatch"),
        ("trailing_byte", _raw_token(body + b"\x00"), path, None, T0 + 1, "malformed"),
        ("version_2", _raw_token(b"\x02" + body[1:]), path, None, T0 + 1, "malformed"),
        ("non_canonical_b64", minimal[:-1] + "b", path, None, T0 + 1, "malformed"),
        ("padded_b64", minimal + "==", path, None, T0 + 1, "malformed"),
        (
            "standard_b64_alphabet",
            minimal.replace("-", "+").replace("_", "/"),
            path,
            None,
            T0 + 1,
            "malformed" if ("-" in minimal or "_" in minimal) else "bad_signature",
        ),
        ("too_long", "A" * 2052, path, None, T0 + 1, "malformed"),
        ("empty", "", path, None, T0 + 1, "missing"),
    ]
    vectors = [
        {"name": n, "token": t, "path": p, "client_ip": ip, "now": now, "reason": r}
        for n, t, p, ip, now, r in cases
    ]
    return vectors + session_invalid_vectors()


def session_invalid_vectors() -> list[dict[str, object]]:
    """Vectors for the two token kinds; ``kind`` says how the token travels (/t/ or /s/)."""
    start = seal(VALID[4][1], KEYRING)
    session = seal(SESSIONS[0][1], SESSION_KEYRING)
    film = "/videos/film/index.m3u8"
    v2_body = claims_bytes(VALID[4][1])
    too_long = Claims("k1", T0 + 12 * 3600 + 1, T0, "/videos/film/", "tid-start", "sid-1")
    cases: list[tuple[str, str, str, str, str | None, int, str]] = [
        ("start_token_as_session", "session", start, film, None, T0 + 1, "bad_signature"),
        ("session_token_as_start", "start", session, film, "203.0.113.9", T0 + 1, "bad_signature"),
        (
            "version_2_without_session",
            "start",
            _raw_token(v2_body[:-4] + b"\x00\x00\x00\x00"),
            film,
            None,
            T0 + 1,
            "malformed",
        ),
        (
            "session_outlives_the_cap",
            "session",
            seal(too_long, SESSION_KEYRING),
            film,
            None,
            T0 + 1,
            "lifetime_exceeded",
        ),
        ("session_other_network", "session", session, film, "198.51.100.9", T0 + 1, "ip_mismatch"),
        ("session_expired", "session", session, film, "203.0.113.9", T0 + 14406, "expired"),
    ]
    return [
        {"name": n, "kind": k, "token": t, "path": p, "client_ip": ip, "now": now, "reason": r}
        for n, k, t, p, ip, now, r in cases
    ]


def main() -> None:
    doc = {
        "description": (
            "PlayGate token test vectors (v1, v2; start and session tokens); "
            "see edge_validator/TOKEN_FORMAT.md"
        ),
        "keyring": {"active": "k1", "keys": {k: encode_secret(v) for k, v in SECRETS.items()}},
        "valid": [
            {
                "name": name,
                "claims": claims._asdict(),
                "body_hex": claims_bytes(claims).hex(),
                "token": seal(claims, KEYRING),
            }
            for name, claims in VALID
        ],
        "sessions": [
            {
                "name": name,
                "claims": claims._asdict(),
                "body_hex": claims_bytes(claims).hex(),
                "token": seal(claims, SESSION_KEYRING),
            }
            for name, claims in SESSIONS
        ],
        "invalid": invalid_vectors(),
    }
    out = Path(__file__).with_name("tokens.json")
    out.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
