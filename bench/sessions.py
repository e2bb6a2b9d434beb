"""What a playback session costs at the edge, in CPU instructions (valgrind callgrind).

    .venv/bin/python bench/sessions.py            # runs each case under callgrind, prints a table

Instruction counts, not times: they do not depend on what else the machine is running. Each
case runs ``N`` times in a fresh interpreter under ``valgrind --tool=callgrind``, and once with
0 iterations; the difference divided by ``N`` is the cost of one call. The cases are what the
validator's decision does per request (``Verifier.verify_target``), before any I/O:

- segment today: a start token (version 1), as every segment was judged before sessions;
- segment in a session: a session token (``/s/``), the common case during playback;
- playlist reload in a session: the same for a manifest (a live player reloads it every
  target duration);
- opening a session: a version 2 start token fetching the entry manifest, the session claims,
  one HMAC to seal the session token and the redirect location, once per playback.

"repeat" rows are a token the verifier has already authenticated (every request after a
player's first); "first sight" rows remember nothing (decode, MAC, parse every time).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from edge_validator.core.addresses import ClientAddress
from edge_validator.core.decision import Verifier
from edge_validator.core.keyring import KeyRing
from edge_validator.core.sessions import (
    opens_session,
    seal_session,
    session_claims,
    session_location,
)
from edge_validator.core.token import Claims, seal

SECRET = b"s" * 32
# A fixed clock: the same tokens, so the same instructions, in every run.
NOW = 1_900_000_000.0
SEGMENT = "/videos/demo/hls/v0/seg_000.ts"
PLAYLIST = "/videos/demo/hls/v0/index.m3u8"
MASTER = "/videos/demo/master.m3u8"
ITERATIONS = 2000
ROOT = Path(__file__).resolve().parent.parent


def cases() -> dict[str, Callable[[], object]]:
    """Each case as a zero-argument call, built once (tokens sealed, verifiers made)."""
    ring = KeyRing({"k1": SECRET}, "k1")
    base = Claims("k1", int(NOW) + 300, int(NOW), "/videos/demo/", "tIdAbCdEfGhIjKlMn")
    start_v1 = seal(base, ring)
    start_bound = seal(base._replace(client_network="203.0.113.0/24"), ring)
    start_v2 = seal(base._replace(session_seconds=14400), ring)
    repeat = Verifier(ring, max_ttl=3600)
    fresh = Verifier(ring, max_ttl=3600, memo_size=0)
    client = ClientAddress.parse("203.0.113.9")
    grant = repeat.verify_target(f"/t/{start_v2}{MASTER}", client, NOW)
    session = seal_session(
        session_claims(grant, client, max_session=43200, session_id="sid-1"), repeat.sessions
    )
    unbound = seal_session(
        session_claims(grant, client, max_session=43200, session_id="sid-1", narrow=False),
        repeat.sessions,
    )

    entry = f"/t/{start_v2}{MASTER}"
    targets = {
        "today": f"/t/{start_v1}{SEGMENT}",
        "today_bound": f"/t/{start_bound}{SEGMENT}",
        "session": f"/s/{session}{SEGMENT}",
        "session_unbound": f"/s/{unbound}{SEGMENT}",
        "reload": f"/s/{session}{PLAYLIST}",
    }

    def open_session() -> str:
        g = repeat.verify_target(entry, client, NOW)
        assert opens_session(g)
        claims = session_claims(g, client, max_session=43200, session_id="sid-1")
        return session_location(g, seal_session(claims, repeat.sessions))

    return {
        "segment today (start token), repeat": lambda: repeat.verify_target(
            targets["today"], client, NOW
        ),
        "segment today (start token, IP-bound), repeat": lambda: repeat.verify_target(
            targets["today_bound"], client, NOW
        ),
        "segment in a session (bound to the /24), repeat": lambda: repeat.verify_target(
            targets["session"], client, NOW
        ),
        "segment in a session (unbound), repeat": lambda: repeat.verify_target(
            targets["session_unbound"], client, NOW
        ),
        "playlist reload in a session, repeat": lambda: repeat.verify_target(
            targets["reload"], client, NOW
        ),
        "segment today (start token), first sight": lambda: fresh.verify_target(
            targets["today"], client, NOW
        ),
        "segment in a session (bound), first sight": lambda: fresh.verify_target(
            targets["session"], client, NOW
        ),
        "opening a session (entry manifest, once per playback)": open_session,
    }


def run_case(name: str, iterations: int) -> None:
    call = cases()[name]
    call()  # warm: the memo holds the token, as it does after a player's first request
    for _ in range(iterations):
        call()


def instructions(name: str, iterations: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(
            [
                "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                sys.executable, "-m", "bench.sessions", "--case", name, str(iterations),
            ],
            check=True, capture_output=True, cwd=ROOT, timeout=600,
            env={**os.environ, "PYTHONHASHSEED": "0"},  # the same str hashes in every run
        )  # fmt: skip
        text = out.read_text()
    match = re.search(r"^(?:summary|totals): (\d+)", text, re.MULTILINE)
    assert match is not None, "no totals in the callgrind output"
    return int(match.group(1))


def main() -> None:
    if sys.argv[1:2] == ["--case"]:
        run_case(sys.argv[2], int(sys.argv[3]))
        return
    print(f"python {sys.version.split()[0]}, {ITERATIONS} calls per case, callgrind Ir per call")
    print(f"| {'case':<54} | instructions |")
    print(f"|{'-' * 56}|--------------|")
    for name in cases():
        per_call = (instructions(name, ITERATIONS) - instructions(name, 0)) / ITERATIONS
        print(f"| {name:<54} | {per_call:12,.0f} |")


if __name__ == "__main__":
    main()
