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

import httpx

from edge_validator.state.revocations import KINDS


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


def _target(args: argparse.Namespace) -> tuple[str, str]:
    signer = args.signer or os.environ.get("PLAYGATE_SIGNER_URL")
    api_key = _api_key(args)
    if not signer or not api_key:
        raise SystemExit(
            "playgate: give --signer URL (or PLAYGATE_SIGNER_URL) and the API key in "
            "PLAYGATE_API_KEY or --api-key-file FILE"
        )
    return signer.rstrip("/"), api_key


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
        print(f"playgate: cannot reach the signer: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(resp.json(), indent=2))
    return 0 if resp.is_success else 1


def cmd_revoke(args: argparse.Namespace) -> int:
    signer, api_key = _target(args)
    chosen = [(kind, getattr(args, kind)) for kind in KINDS if getattr(args, kind)]
    if len(chosen) != 1:
        raise SystemExit("playgate revoke: give exactly one of --token-id, --session-id, ...")
    return _call("POST", f"{signer}/v1/revocations", api_key, dict(chosen))


def cmd_revocations(args: argparse.Namespace) -> int:
    signer, api_key = _target(args)
    return _call("GET", f"{signer}/v1/revocations", api_key)


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
