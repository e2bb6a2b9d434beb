"""First-sight and repeat verification costs of every format, in instructions (callgrind).

Timings mean nothing on a loaded machine; instruction counts do. Run under callgrind with
instrumentation off at start; the script switches it on around each measured loop::

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/pg.%p \\
        .venv/bin/python -m bench.formats_verify

and prints instructions per verification: "first" with the memo off (every request pays the
signature check), "repeat" with a warm memo (what every segment after the first costs).
Without valgrind it prints wall-clock microseconds instead (noisy).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from edge_validator.core.decision import Verifier
from edge_validator.core.keyring import KeyRing
from edge_validator.core.token import Claims, seal
from edge_validator.formats.accept import ForeignVerifier
from edge_validator.formats.emit import emit
from edge_validator.formats.policy import Policy
from playgate.demo.formats import demo_format_keys

N = int(os.environ.get("PG_BENCH_N", "200"))
NOW = 1_767_200_000
CDN = "https://cdn.example.com"
UNDER_VALGRIND = (
    "valgrind" in os.environ.get("LD_PRELOAD", "")
    or Path("/proc/self/maps").read_text().count("vgpreload") > 0
)


def measure(label: str, run: Callable[[], object]) -> None:
    run()  # warm: imports, caches
    if UNDER_VALGRIND:
        pid = str(os.getpid())
        subprocess.run(["callgrind_control", "-z", pid], check=True, capture_output=True)
        subprocess.run(["callgrind_control", "-i", "on", pid], check=True, capture_output=True)
        for _ in range(N):
            run()
        subprocess.run(["callgrind_control", "-i", "off", pid], check=True, capture_output=True)
        out = subprocess.run(
            ["callgrind_control", "-d", label, pid], check=True, capture_output=True
        )
        del out
        return
    start = time.perf_counter()
    for _ in range(N):
        run()
    print(f"{label:28s} {(time.perf_counter() - start) / N * 1e6:9.1f} µs")


def main() -> None:
    # The demo's keys: CloudFront ECDSA P-256, JWT EdDSA, Media CDN Ed25519.
    keys = demo_format_keys(CDN, Path(tempfile.mkdtemp()) / "formats.json")
    policy = Policy("/videos/demo/", NOW + 300, NOW, "tid-bench")
    ring = KeyRing({"k1": b"B" * 32}, "k1")
    token = seal(Claims("k1", NOW + 300, NOW, "/videos/demo/", "tid-bench"), ring)
    target = f"/t/{token}/videos/demo/hls/v0/seg_001.ts"
    for memo, mode in ((0, "first"), (20_000, "repeat")):
        verifier = Verifier(ring, max_ttl=3600, memo_size=memo)
        measure(f"playgate {mode}", lambda v=verifier: v.verify_target(target, None, NOW))
    for name in ("jwt", "cloudfront", "mediacdn", "akamai", "secure_link"):
        issued = emit(name, policy, keys, CDN)
        path = issued.url.removeprefix(CDN)
        for memo, mode in ((0, "first"), (20_000, "repeat")):
            foreign = ForeignVerifier(keys, (name,), memo_size=memo)
            measure(
                f"{name} {mode}",
                lambda f=foreign, p=path, c=issued.cookies: f.authorize(p, c, None, NOW),
            )


if __name__ == "__main__":
    main()
