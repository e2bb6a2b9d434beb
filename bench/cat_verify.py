"""CAT (CTA-5007) verification next to PlayGate's own tokens and pyjwt, in one run, counted in
CPU instructions (valgrind callgrind), because wall-clock timings on a loaded machine are noise.

    .venv/bin/python bench/cat_verify.py            # every row, about a minute
    .venv/bin/python bench/cat_verify.py --row NAME --calls N   # one row (what the runner does)

Each row runs in its own interpreter under ``valgrind --tool=callgrind``, twice: with N calls
and with none; instructions per call = (Ir(N) - Ir(0)) / N, so start-up and set-up cancel out.
"first sight" verifies a token the verifier has not seen (decode, MAC, claims); "repeat" is
every later request with the same token (the memo of authenticated tokens).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOW = 1_800_000_000
PATH = "/videos/demo/hls/v0/seg_000.ts"
SECRET = b"s" * 32
# The RFC 8392 Appendix A.2.3 P-256 key, base64url.
ES256_KEY = {
    "alg": "ES256",
    "x": "FDMpzOeGjkFpJ1mc9lo0884v_aVafspp7YkZo5TULw8",
    "y": "YPfxp4DYp4O_t6LdayeW6BKNu87509Fo25Uplxo257k",
    "d": "bBOCdlrsU1jxF3M9KBwce9w5iE0EpFoebGfIWLwgbBk",
}


def _rows() -> dict[str, Callable[[], Callable[[], object]]]:
    """Each row: a set-up returning the call to count (imports stay inside, so Ir(0) has them)."""

    def playgate(memo: bool) -> Callable[[], object]:
        from edge_validator.core.addresses import ClientAddress
        from edge_validator.core.decision import Verifier
        from edge_validator.core.keyring import KeyRing
        from edge_validator.core.paths import Target
        from edge_validator.core.token import Claims, seal

        ring = KeyRing({"k1": SECRET}, "k1")
        token = seal(Claims("k1", NOW + 300, NOW, "/videos/demo/", "tIdAbCdEfGhIjKlMn"), ring)
        verifier = Verifier(ring, max_ttl=3600, memo_size=20_000 if memo else 0)
        target, client = Target(token, PATH, "", False), ClientAddress.parse("203.0.113.9")
        return lambda: verifier.judge(target, client, NOW)

    def cat(memo: bool, key_id: str = "c1") -> Callable[[], object]:
        from edge_validator.cat_es256 import load_es256
        from edge_validator.core.addresses import ClientAddress
        from edge_validator.core.cat.claims import CatPolicy, build_claims
        from edge_validator.core.cat.keys import ES256, HS256, CatKey, CatKeyRing
        from edge_validator.core.cat.verify import CatVerifier, seal_cat
        from edge_validator.core.decision import Verifier
        from edge_validator.core.keyring import KeyRing
        from edge_validator.core.paths import Target
        from edge_validator.core.token import Claims

        cat_ring = CatKeyRing(
            [
                CatKey("c1", HS256, secret=SECRET),
                CatKey("e1", ES256, public=load_es256("e1", ES256_KEY)),
            ]
        )
        claims = Claims(key_id, NOW + 300, NOW, "/videos/demo/", "0b71" * 8)
        token = seal_cat(build_claims(claims, issuer="bench"), cat_ring.get(key_id.encode()))  # type: ignore[arg-type]
        verifier = Verifier(
            KeyRing({"k1": SECRET}, "k1"),
            max_ttl=3600,
            memo_size=20_000 if memo else 0,
            cat=CatVerifier(cat_ring, CatPolicy(issuer="bench")),
        )
        target, client = Target(token, PATH, "", False), ClientAddress.parse("203.0.113.9")
        return lambda: verifier.judge(target, client, NOW)

    def renewal() -> Callable[[], object]:
        """A due catr renewal at the edge (core/cat/renewal.py): re-open, re-seal, handover."""
        from edge_validator.core.cat.claims import CATR, CatClaims, CatPolicy, build_claims
        from edge_validator.core.cat.keys import HS256, CatKey, CatKeyRing
        from edge_validator.core.cat.renewal import renew
        from edge_validator.core.cat.verify import CatVerifier, seal_cat
        from edge_validator.core.decision import Verifier
        from edge_validator.core.keyring import KeyRing
        from edge_validator.core.paths import Target
        from edge_validator.core.token import Claims

        cat_ring = CatKeyRing([CatKey("c1", HS256, secret=SECRET)])
        doc = build_claims(Claims("c1", NOW + 30, NOW, "/videos/demo/", "0b71" * 8), issuer="b")
        doc[CATR] = {0: 2, 1: 600, 2: 60}
        token = seal_cat(doc, cat_ring.get(b"c1"))  # type: ignore[arg-type]
        verifier = Verifier(
            KeyRing({"k1": SECRET}, "k1"),
            max_ttl=3600,
            cat=CatVerifier(cat_ring, CatPolicy(issuer="b")),
        )
        grant = verifier.judge(Target(token, PATH, "", False), None, NOW)
        claims = grant.claims
        assert isinstance(claims, CatClaims)
        return lambda: renew(claims, grant.target, cat_ring, NOW, max_session=43200)

    def pyjwt() -> Callable[[], object]:
        import jwt

        claims = {"exp": NOW + 300, "nbf": NOW, "scope": "/videos/demo/", "jti": "tId"}
        token = jwt.encode(claims, SECRET, algorithm="HS256")
        options = {"verify_exp": False, "verify_nbf": False}  # the clock here is NOW, fixed
        return lambda: jwt.decode(token, SECRET, algorithms=["HS256"], options=options)

    def raw_hmac() -> Callable[[], object]:
        import hashlib
        import hmac

        body = b"x" * 120
        return lambda: hmac.digest(SECRET, body, hashlib.sha256)

    return {
        "raw HMAC-SHA256 (120 B)": raw_hmac,
        "PlayGate v1, repeat token": lambda: playgate(True),
        "PlayGate v1, first sight": lambda: playgate(False),
        "CAT HS256, repeat token": lambda: cat(True),
        "CAT HS256, first sight": lambda: cat(False),
        "CAT ES256, first sight": lambda: cat(False, "e1"),
        "CAT HS256 catr renewal": renewal,
        "pyjwt HS256 decode": pyjwt,
    }


def run_row(name: str, calls: int) -> None:
    call = _rows()[name]()
    for _ in range(calls):
        call()


def instructions(name: str, calls: int, workdir: Path) -> int:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind is missing: apt-get install valgrind")
    out = workdir / f"cg.{time.monotonic_ns()}"
    done = subprocess.run(
        [
            valgrind,
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            __file__,
            "--row",
            name,
            "--calls",
            str(calls),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    match = re.search(r"Collected : (\d+)", done.stderr)
    if match is None:
        raise SystemExit(f"no instruction count from callgrind:\n{done.stderr[-2000:]}")
    return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--row")
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    if args.row is not None:
        run_row(args.row, args.calls)
        return
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in _rows():
            calls = 200 if "ES256" in name else args.calls
            base = instructions(name, 0, Path(tmp))
            total = instructions(name, calls, Path(tmp))
            results.append((name, (total - base) / calls))
    reference = dict(results)["PlayGate v1, first sight"]
    print(f"python {sys.version.split()[0]}, callgrind instructions per call")
    print(f"| {'what':<28} | instructions | vs PlayGate first sight |")
    print(f"|{'-' * 30}|--------------|-------------------------|")
    for name, count in results:
        print(f"| {name:<28} | {count:12,.0f} | {count / reference:22.2f}x |")


if __name__ == "__main__":
    main()
