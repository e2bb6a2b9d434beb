"""Verification cost in CPU instructions (valgrind callgrind), stable on a loaded machine.

    .venv/bin/python bench/verify_instructions.py [--tree OTHER_CHECKOUT] [--calls 2000]

Wall-clock microseconds on a shared 2-core machine swing by 30 % from run to run; instruction
counts repeat to within a fraction of a percent. Each contender runs ``--calls`` times in a fresh
``python`` under callgrind, once with the loop and once without; the difference divided by the
number of calls is the cost of one call. ``--tree`` measures another checkout of PlayGate (for
example the commit before a refactor) with the same snippets, side by side.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SETUP = """
import time, hmac, hashlib
NOW = int(time.time())
PATH = "/videos/demo/hls/v0/seg_000.ts"
SECRET = b"s" * 32
try:
    from edge_validator.core.decision import Verifier
    from edge_validator.core.keyring import KeyRing
    from edge_validator.core.paths import Target
    from edge_validator.core.token import Claims, seal
    NEW = True
except ImportError:  # the layout before the refactor
    from edge_validator.decision import verify, verify_target
    from edge_validator.keyring import KeyRing
    from edge_validator.token import Claims, seal
    NEW = False
ring = KeyRing({"k1": SECRET}, "k1")
base = Claims("k1", NOW + 300, NOW, "/videos/demo/", "tIdAbCdEfGhIjKlMn")
token = seal(base, ring)
bound = seal(base._replace(client_network="203.0.113.0/24"), ring)
fresh = [seal(base._replace(token_id=f"t{i:08d}"), ring) for i in range(CALLS)]
target = "/t/" + token + PATH
if NEW:
    v = Verifier(ring, max_ttl=3600)
    v.verify_target(target, None, NOW)
    def repeat(i): return v.verify_target(target, None, NOW)
    def first(i): return v.verify_target("/t/" + fresh[i] + PATH, None, NOW)
    def bound_first(i):
        return Verifier(ring, max_ttl=3600, memo_size=0).verify_target(
            "/t/" + bound + PATH, "203.0.113.9", NOW)
else:
    verify_target(target, None, NOW, ring, max_lifetime=3600)
    def repeat(i): return verify_target(target, None, NOW, ring, max_lifetime=3600)
    def first(i): return verify_target("/t/" + fresh[i] + PATH, None, NOW, ring, max_lifetime=3600)
    def bound_first(i):
        ring.authenticated.clear()
        return verify_target("/t/" + bound + PATH, "203.0.113.9", NOW, ring, max_lifetime=3600)
import jwt
jwt_token = jwt.encode({"exp": NOW + 300, "nbf": NOW, "scope": "/videos/demo/"}, SECRET, "HS256")
def pyjwt(i):
    return jwt.decode(jwt_token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
def raw_hmac(i): return hmac.digest(SECRET, b"x" * 70, hashlib.sha256)
"""

CONTENDERS = {
    "PlayGate verify_target, repeat token": "repeat",
    "PlayGate verify_target, first sight": "first",
    "PlayGate verify_target, first sight, IP-bound": "bound_first",
    "pyjwt HS256 decode": "pyjwt",
    "raw HMAC-SHA256 (70 B)": "raw_hmac",
}


def instructions(tree: Path, body: str, calls: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "run.py"
        script.write_text(f"CALLS = {calls}\n{SETUP}\n{body}\n")
        out = Path(tmp) / "callgrind.out"
        env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0"}
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, script],
            env=env,
            cwd=tmp,
            capture_output=True,
            check=True,
        )
        summary = re.search(r"^summary: (\d+)", out.read_text(), re.MULTILINE)
        assert summary is not None
        return int(summary.group(1))


def per_call(tree: Path, name: str, calls: int) -> float:
    loop = f"for i in range(CALLS): {name}(i)"
    return (instructions(tree, loop, calls) - instructions(tree, "pass", calls)) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tree", type=Path, help="another checkout to measure side by side")
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    trees = {"this tree": ROOT, **({str(args.tree): args.tree.resolve()} if args.tree else {})}
    header = " | ".join(f"{name} (instructions)" for name in trees)
    print(f"| what | {header} |")
    print("|---|" + "---:|" * len(trees))
    for label, name in CONTENDERS.items():
        cells = " | ".join(f"{per_call(tree, name, args.calls):,.0f}" for tree in trees.values())
        print(f"| {label} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
