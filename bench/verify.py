"""Full token verification next to pyjwt HS256 and itsdangerous, on this machine, in one run.

    .venv/bin/python bench/verify.py

Prints median microseconds per call (median of 15 batches). Each contender does the work a
validator must do: decode, check the MAC, check expiry, and (PlayGate) check scope and path.
"repeat token" is the common case (every segment after a player's first request): the verifier
remembers authenticated tokens, so only expiry, scope, path and address are judged again.
"first sight" uses a verifier that remembers nothing. The adapter parses the viewer's address
once per request (``ClientAddress.parse``, its own row) and hands it to the verifier.
"""

from __future__ import annotations

import hashlib
import hmac
import statistics
import sys
import time
import timeit
from collections.abc import Callable

import itsdangerous
import jwt

from edge_validator.core.addresses import ClientAddress
from edge_validator.core.decision import Verifier
from edge_validator.core.keyring import KeyRing
from edge_validator.core.paths import Target
from edge_validator.core.token import Claims, seal

SECRET = b"s" * 32
NOW = time.time()
PATH = "/videos/demo/hls/v0/seg_000.ts"


def median_us(fn: Callable[[], object], number: int = 20000, repeat: int = 15) -> float:
    fn()
    runs = timeit.repeat(fn, number=number, repeat=repeat)
    return statistics.median(runs) / number * 1e6


def main() -> None:
    ring = KeyRing({"k1": SECRET}, "k1")
    base = Claims("k1", int(NOW) + 300, int(NOW), "/videos/demo/", "tIdAbCdEfGhIjKlMn")
    token = seal(base, ring)
    bound = seal(base._replace(client_network="203.0.113.0/24", session_id="s-1"), ring)
    target = f"/t/{token}{PATH}"
    claims = {"exp": int(NOW) + 300, "nbf": int(NOW), "scope": "/videos/demo/", "jti": "tId"}
    jwt_token = jwt.encode(claims, SECRET, algorithm="HS256")
    its = itsdangerous.URLSafeTimedSerializer(SECRET, salt="playback")
    its_token = its.dumps(claims)
    body = b"x" * 70

    verifier = Verifier(ring, max_ttl=3600)
    forgetful = Verifier(ring, max_ttl=3600, memo_size=0)  # decode, MAC and parse every time
    ip = "203.0.113.9"

    client = ClientAddress.parse(ip)

    def judge(v: Verifier, tok: str) -> Callable[[], object]:
        split = Target(tok, PATH, "", False)
        return lambda: v.judge(split, client, NOW)

    rows = [
        ("raw HMAC-SHA256 (hmac.digest, 70 B)", lambda: hmac.digest(SECRET, body, hashlib.sha256)),
        ("PlayGate verify, repeat token", judge(verifier, token)),
        ("PlayGate verify, first sight of token", judge(forgetful, token)),
        ("PlayGate verify, first sight, IP-bound", judge(forgetful, bound)),
        (
            "PlayGate verify_target, repeat (split + verify)",
            lambda: verifier.verify_target(target, client, NOW),
        ),
        ("client address parse (once per request)", lambda: ClientAddress.parse(ip)),
        ("pyjwt HS256 decode", lambda: jwt.decode(jwt_token, SECRET, algorithms=["HS256"])),
        ("itsdangerous URLSafeTimedSerializer.loads", lambda: its.loads(its_token, max_age=300)),
    ]
    results = [(name, median_us(fn)) for name, fn in rows]
    playgate = results[1][1]  # repeat token
    print(f"python {sys.version.split()[0]}, token {len(token)} chars, jwt {len(jwt_token)} chars")
    print(f"| {'what':<48} | median µs | vs PlayGate |")
    print(f"|{'-' * 50}|-----------|-------------|")
    for name, us in results:
        print(f"| {name:<48} | {us:9.2f} | {us / playgate:10.1f}x |")


if __name__ == "__main__":
    main()
