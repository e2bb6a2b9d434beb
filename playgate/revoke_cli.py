"""``playgate revoke`` and ``playgate revocations``: talk to the signer API, like a backend.

Going through the API (not straight to Redis) keeps one audited path with API-key auth, the
same validation and the same retention rule; the CLI needs no Redis credentials.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TypeVar

import httpx

from edge_validator.state.revocations import KINDS

P = TypeVar("P", bound=argparse.ArgumentParser)


def _api_key(args: argparse.Namespace) -> str | None:
    # Never from argv: every local user reads a command line in `ps` and /proc.
    if args.api_key is not None:
        raise SystemExit(
            "playgate: --api-key would show the key in `ps`; "
            "set PLAYGATE_API_KEY or use --api-key-file FILE"
        )
    if args.api_key_file:
        try:
            text = Path(args.api_key_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SystemExit(f"playgate: cannot read {args.api_key_file}: {exc.strerror}") from None
        if not text:
            raise SystemExit(f"playgate: {args.api_key_file} is empty; put the API key in it")
        return text
    return os.environ.get("PLAYGATE_API_KEY") or None


NO_SIGNER = (
    "playgate: which signer? set PLAYGATE_SIGNER_URL or give --signer URL (with the demo: "
    "source its env file, the `Shell:` line it printed)"
)
NO_API_KEY = "playgate: no API key: set PLAYGATE_API_KEY or give --api-key-file FILE"


def _target(args: argparse.Namespace) -> tuple[str, str]:
    signer = args.signer or os.environ.get("PLAYGATE_SIGNER_URL")
    api_key = _api_key(args)
    # Each missing piece said alone: with the demo, both come from its env file (README's tour).
    if not signer:
        raise SystemExit(NO_SIGNER)
    if not signer.startswith(("http://", "https://")):
        raise SystemExit(f"playgate: the signer URL {signer!r} must start with http:// or https://")
    if not api_key:
        raise SystemExit(NO_API_KEY)
    return signer.rstrip("/"), api_key


STORE_DOWN_ADVICE = (
    " (the signer cannot reach Redis, so nothing was done: run it again once Redis is back, "
    "or give the signer PLAYGATE_REVOCATION_SPOOL to queue revocations; docs/redis.md)"
)


def _call(method: str, url: str, api_key: str, body: object = None) -> int:
    try:
        resp = httpx.request(
            method,
            url,
            json=body,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=10,
        )
    except httpx.HTTPError as exc:
        print(f"playgate: cannot reach the signer at {url}: {exc}", file=sys.stderr)
        return 2
    try:
        body = resp.json()
    except ValueError:
        body = None
    if resp.is_success and body is not None:
        print(json.dumps(body, indent=2))
        return 0
    # One line: the signer's reason and message (they differ for a missing and a wrong key).
    error = body.get("error", "") if isinstance(body, dict) else ""
    message = body.get("message", "") if isinstance(body, dict) else resp.text[:200]
    advice = {
        "unauthorized": " (check PLAYGATE_API_KEY or --api-key-file)",
        "store_unavailable": STORE_DOWN_ADVICE,
    }.get(error, "")
    print(
        f"playgate: the signer answered {resp.status_code} {error}: {message}{advice}",
        file=sys.stderr,
    )
    return 1


def cmd_revoke(args: argparse.Namespace) -> int:
    signer, api_key = _target(args)
    chosen = [(kind, getattr(args, kind)) for kind in KINDS if getattr(args, kind)]
    if len(chosen) != 1:
        options = ", ".join("--" + kind.replace("_", "-") for kind in KINDS)
        raise SystemExit(f"playgate revoke: give exactly one of {options}")
    return _call("POST", f"{signer}/v1/revocations", api_key, dict(chosen))


def cmd_revocations(args: argparse.Namespace) -> int:
    signer, api_key = _target(args)
    return _call("GET", f"{signer}/v1/revocations", api_key)


def add_commands(sub: argparse._SubParsersAction[P]) -> None:
    p = sub.add_parser("revoke", help="revoke a token, session, video or user via the signer")
    for kind in KINDS:
        p.add_argument("--" + kind.replace("_", "-"), dest=kind)
    _connection(p)
    p.set_defaults(func=cmd_revoke)
    p = sub.add_parser("revocations", help="list live revocations via the signer")
    _connection(p)
    p.set_defaults(func=cmd_revocations)


def _connection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--signer", help="signer base URL (or PLAYGATE_SIGNER_URL)")
    p.add_argument("--api-key-file", help="file holding the caller API key (or PLAYGATE_API_KEY)")
    # Refused with a hint: a key on the command line is visible to every local user.
    p.add_argument("--api-key", help=argparse.SUPPRESS)
