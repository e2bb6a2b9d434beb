"""What a validator with a wrong clock does to fresh URLs, with and without the not-before margin.

    .venv/bin/python bench/clock_skew.py [--ttl 8] [--offsets -12,-8,-4,0,4,8]

Starts a real redis-server and one ``playgate serve-validator`` per clock offset under
libfaketime (``faketime -f <offset>s``, wall clock only), signs a URL with a ``--ttl`` second
start window from signers with margin 0 and with the default 5 s, then polls every validator
every 0.1 s from the moment of signing until the URL expires everywhere. Prints, per offset and
margin, when each validator first and last accepted the URL (seconds after signing; the real
window is 0 to ttl) and the offset it measured against Redis ``TIME``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge_validator.core.keyring import KeyRing, new_keyring_json
from edge_validator.state import StateSettings
from playgate.processes import (
    LOOPBACK,
    clock_offset_env,
    free_port,
    serve_app,
    stop_process,
    wait_for_port,
)
from playgate.redis_server import redis_server
from signer.api_keys import ApiKeys, generate_api_key, hash_api_key
from signer.app import create_app as create_signer
from signer.settings import SignerSettings

ADMIN = "bench-admin-key-0123456789abcdef"


@contextlib.contextmanager
def late_validators(offsets: list[int], keyring: str, redis_url: str) -> Iterator[dict[int, str]]:
    """One validator process per offset (seconds its wall clock is ahead; negative: behind)."""
    with contextlib.ExitStack() as stack:
        media = stack.enter_context(tempfile.TemporaryDirectory(prefix="playgate-bench-"))
        urls = {}
        for offset in offsets:
            port = free_port()
            env = {
                **os.environ,
                "PLAYGATE_KEYRING": keyring,
                "PLAYGATE_MEDIA_ROOT": media,
                "PLAYGATE_ADMIN_KEY_HASH": hash_api_key(ADMIN),
                "REDIS_URL": redis_url,
                "PLAYGATE_LOG_LEVEL": "error",
                **clock_offset_env(offset),
            }
            argv = [sys.executable, "-m", "playgate.cli", "serve-validator", "--port", str(port)]
            proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)
            stack.callback(stop_process, proc)
            wait_for_port(port, proc=proc)
            urls[offset] = f"http://{LOOPBACK}:{port}"
        yield urls


def sign(keyring: KeyRing, state: StateSettings, margin: int, ttl: int) -> tuple[str, float]:
    """A URL for a video that does not exist (404 once allowed), and when it was signed."""
    api_key = generate_api_key()
    settings = SignerSettings(
        keyring=keyring,
        api_keys=ApiKeys({"bench": hash_api_key(api_key)}),
        state=state,
        not_before_margin=margin,
    )
    with serve_app(create_signer(settings)) as signer:
        body = {"video_id": "bench", "ttl_seconds": ttl, "session_seconds": 0}
        headers = {"Authorization": f"Bearer {api_key}"}
        signed_at = time.time()
        resp = httpx.post(f"{signer}/v1/playback-urls", json=body, headers=headers, timeout=10)
    resp.raise_for_status()
    token: str = resp.json()["token"]
    return f"/t/{token}/videos/bench/master.m3u8", signed_at


def accepted(reply: httpx.Response) -> bool:
    """Allowed: the token passed (the video does not exist, so an allowed request is a 404)."""
    return reply.status_code not in (401, 403)


def window(validators: dict[int, str], path: str, signed_at: float, ttl: int) -> dict[int, str]:
    seen: dict[int, list[float]] = {offset: [] for offset in validators}
    with httpx.Client(timeout=5) as client:
        while time.time() < signed_at + ttl + 15:
            for offset, base in validators.items():
                if accepted(client.get(base + path)):
                    seen[offset].append(time.time() - signed_at)
            time.sleep(0.1)
    return {
        offset: f"{min(times):5.1f} to {max(times):5.1f}" if times else "never"
        for offset, times in seen.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ttl", type=int, default=8)
    parser.add_argument("--offsets", default="-12,-8,-4,0,4,8")
    args = parser.parse_args()
    offsets = [int(o) for o in args.offsets.split(",")]
    text = new_keyring_json("k1")
    ring = KeyRing.from_json(text)
    with redis_server() as redis, late_validators(offsets, text, redis.url) as validators:
        state = StateSettings(redis_url=redis.url)
        time.sleep(1)  # every validator's first clock check
        measured = {}
        for offset, base in validators.items():
            health = httpx.get(
                f"{base}/admin/health", headers={"Authorization": f"Bearer {ADMIN}"}
            ).json()
            measured[offset] = health["state"]["clock_offset_seconds"]
        results = {}
        for margin in (0, 5):
            path, signed_at = sign(ring, state, margin, args.ttl)
            results[margin] = window(validators, path, signed_at, args.ttl)
    print(f"start window {args.ttl} s, leeway 5 s; accepted from .. to (s after signing)")
    print("| validator clock | measured vs Redis | margin 0 | margin 5 (default) |")
    print("|---|---|---|---|")
    for offset in offsets:
        print(
            f"| {offset:+d} s | {measured[offset]:+.2f} s | {results[0][offset]} "
            f"| {results[5][offset]} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
