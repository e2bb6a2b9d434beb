"""``playgate``: serve, sign offline, generate keys, explain a URL."""

from __future__ import annotations

import argparse
import dataclasses
import errno
import math
import os
import socket
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import urlsplit

from edge_validator.core.cat.keys import CatKeyRing, new_cat_keyring_json
from edge_validator.core.cat.verify import CatVerifier
from edge_validator.core.decision import (
    DEFAULT_LEEWAY,
    DEFAULT_MAX_TTL,
    DEFAULT_SESSION,
    MAX_LEEWAY,
    MAX_TTL_LIMIT,
    Verifier,
)
from edge_validator.core.errors import ConfigurationError, InvalidField, PlayGateError
from edge_validator.core.keyring import KeyRing, new_keyring_json
from edge_validator.env import Env, es256_factory
from edge_validator.formats.config import format_keys
from edge_validator.formats.keys import FormatKeys
from edge_validator.settings import max_session
from signer.api_keys import SCOPES, generate_api_key, hash_api_key, make_caller
from signer.issuing import FORMATS, PLAYGATE_FORMAT, CatIssuer, issue, parse_playback_request

from .explain import explain
from .logs import configure_logging
from .revoke_cli import add_commands as add_revocation_commands

if TYPE_CHECKING:
    from .nginx.config import EdgeConfig


class CliError(Exception):
    """A mistake the user can fix: ``main`` prints it as one line, ``playgate <command>: ...``."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line that says what to do (not the whole usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def moment(text: str) -> float:
    """``--at``: ISO 8601 with a zone, as explain prints it (2026-11-22T05:40:00Z), or unix time."""
    try:
        value = float(text)
    except ValueError:
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a time: give ISO 8601 (2026-11-22T05:40:00Z) or unix seconds"
            ) from None
        if when.tzinfo is None:
            raise argparse.ArgumentTypeError(
                f"{text!r} has no time zone: add Z for UTC (2026-11-22T05:40:00Z) or an offset"
            ) from None
        return when.timestamp()
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a unix time: give seconds since 1970")
    return value


def leeway(text: str) -> int:
    """``--leeway``: seconds, in the range validators accept (PLAYGATE_LEEWAY)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_LEEWAY:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give whole seconds from 0 to {MAX_LEEWAY}, as validators accept"
        )
    return value


def port(text: str) -> int:
    """``--port``: a TCP port (0: any free one), refused in one line before anything starts."""
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: give a port from 1 to 65535 (0: any free one)")
    return int(text)


def _check_listen(host: str, port: int) -> None:
    """Bind once before the workers start: a taken port or a wrong --host is one line saying
    what to do, not uvicorn's bare log line and exit status 3."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As uvicorn binds: SO_REUSEADDR, so only a port someone listens on is "taken".
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except socket.gaierror:
            raise CliError(
                f"--host {host!r} does not resolve: give an address of this machine "
                "(127.0.0.1, 0.0.0.0 for every interface, ::1)"
            ) from None
        except OSError as exc:
            fix = {
                errno.EADDRINUSE: "another program listens there: stop it or choose another --port",
                errno.EACCES: "ports below 1024 need root (or CAP_NET_BIND_SERVICE): "
                "choose a port from 1024",
                errno.EADDRNOTAVAIL: "--host is not an address of this machine: give one of "
                "its addresses (127.0.0.1, 0.0.0.0 for every interface)",
            }.get(exc.errno or 0, "choose another --host or --port")
            raise CliError(f"cannot listen on {host}:{port} ({exc.strerror}): {fix}") from None


def _write(path: Path, text: str, *, new: bool = False) -> None:
    """Write ``text`` to ``path``; a missing folder or an existing key ring is a CliError."""
    try:
        if new:
            # Created private from the start: a key ring must never be world-readable, even briefly.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
        else:
            path.write_text(text, encoding="utf-8")
    except FileExistsError:
        raise CliError(
            f"{path} already exists and is never overwritten: choose a new file"
        ) from None
    except FileNotFoundError:
        raise CliError(
            f"folder {path.parent} does not exist: create it (mkdir -p {path.parent}) first"
        ) from None
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror}") from None


def _keyring(path: str | None) -> KeyRing:
    """``--keyring FILE``, else the environment, as the servers read it."""
    return KeyRing.from_file(path) if path else Env(os.environ).keyring()


def _cat_keyring(path: str | None) -> CatKeyRing | None:
    """``--cat-keys FILE``, else PLAYGATE_CAT_KEYS(_FILE) from the environment, else None."""
    return CatKeyRing.from_file(path, es256_factory()) if path else Env(os.environ).cat_keyring()


def _cat_verifier(path: str | None) -> CatVerifier | None:
    keyring = _cat_keyring(path)
    return None if keyring is None else CatVerifier(keyring, Env(os.environ).cat_policy())


def _max_ttl() -> int:
    # The validators' PLAYGATE_MAX_TTL: the CLI signs and judges by the same bound.
    return Env(os.environ).integer("PLAYGATE_MAX_TTL", DEFAULT_MAX_TTL, low=1, high=MAX_TTL_LIMIT)


def _max_session() -> int:
    # The validators' PLAYGATE_MAX_SESSION, read as they read it.
    return max_session(Env(os.environ))


def cmd_keygen(args: argparse.Namespace) -> int:
    text = new_cat_keyring_json(args.key_id) if args.cat else new_keyring_json(args.key_id)
    if args.output:
        out = Path(args.output)
        _write(out, text, new=True)
        print(f"wrote key ring with active key {args.key_id!r} to {out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_api_key(args: argparse.Namespace) -> int:
    scopes = [s.strip() for s in args.scopes.split(",")] if args.scopes else list(SCOPES)
    caller = make_caller(args.name, scopes, args.video_prefix or "")
    key = generate_api_key()
    entry = f"{args.name}:{hash_api_key(key)}{caller.entry_suffix()}"
    print(f"API key (give to the app backend): {key}")
    print(f"PLAYGATE_API_KEYS entry (give to the signer): {entry}")
    return 0


# The request fields ``playgate sign`` fills, by the option (or argument) that sets each.
SIGN_OPTIONS = {
    "video_id": "VIDEO_ID",
    "ttl_seconds": "--ttl",
    "client_ip": "--client-ip",
    "session_id": "--session-id",
    "file": "--file",
    "session_seconds": "--session-seconds",
    "format": "--format",
    "cat_renewal": "--cat-renewal",
}


def cmd_sign(args: argparse.Namespace) -> int:
    # The key ring first: a broken ring is the first thing to report.
    keyring = _keyring(args.keyring) if args.format != "cat" else None
    doc = {k: v for k, v in vars(args).items() if k in SIGN_OPTIONS and v is not None}
    max_ttl = _max_ttl()
    default_ttl = min(300, max_ttl)
    cap = _max_session()
    env = Env(os.environ)
    default_session = env.integer(
        "PLAYGATE_DEFAULT_SESSION", min(DEFAULT_SESSION, cap), low=0, high=cap
    )
    try:
        req = parse_playback_request(
            doc,
            default_ttl=default_ttl,
            max_ttl=max_ttl,
            entry_file="master.m3u8",
            default_session=default_session,
            max_session=cap,
        )
    except InvalidField as exc:
        # The API's field names (ttl_seconds) mean nothing on a command line: name the option.
        field = exc.field or ""
        option = SIGN_OPTIONS.get(field)
        if option is None:
            raise
        raise CliError(f"{option}: {exc.message.removeprefix(field + ': ')}") from None
    base_url = args.base_url.rstrip("/")
    if req.format == "cat":
        cat_keyring = _cat_keyring(args.cat_keys)
        if cat_keyring is None:
            raise ConfigurationError("--format cat needs --cat-keys FILE or PLAYGATE_CAT_KEYS_FILE")
        cat = CatIssuer(cat_keyring, Env(os.environ).cat_policy())
        issued = cat.issue(req, time.time(), public_url=base_url, mode=args.mode)
    else:
        assert keyring is not None  # loaded above for every format but cat
        # A CDN format's keys: --format-keys FILE, else the signer's environment.
        keys = None
        if req.format != PLAYGATE_FORMAT:
            keys = (
                FormatKeys.from_file(args.format_keys)
                if args.format_keys
                else format_keys(Env(os.environ))
            )
        issued = issue(
            req, keyring, time.time(), public_url=base_url, mode=args.mode, format_keys=keys
        )
    print(issued.url)
    for name, value in (issued.cookies or {}).items():
        print(f"cookie {name}={value}")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    parts = urlsplit(args.url)
    if not (parts.scheme in ("http", "https") and parts.netloc) and not args.url.startswith("/"):
        raise CliError(
            f"{args.url!r} is not a URL: give the whole playback URL, in quotes "
            "(http://host/t/<token>/videos/<id>/master.m3u8)"
        )
    now = args.at if args.at is not None else time.time()
    verifier = Verifier(
        _keyring(args.keyring),
        max_ttl=_max_ttl(),
        leeway=args.leeway,
        max_session=_max_session(),
        cat=_cat_verifier(args.cat_keys),
    )
    accepted, lines = explain(args.url, verifier, now, args.client_ip)
    print("\n".join(lines))
    return 0 if accepted else 1


NO_API_KEYS = (
    "playgate serve-signer: no API keys (PLAYGATE_API_KEYS is empty), so every request gets 401: "
    "run `playgate api-key --name web` and set PLAYGATE_API_KEYS to the entry it prints"
)


def no_media_root(path: Path) -> str:
    return (
        f"playgate serve-validator: PLAYGATE_MEDIA_ROOT {path} is not a folder, so every media "
        "request gets 404: point it at the folder that holds videos/<id>/..."
    )


def cmd_serve_signer(args: argparse.Namespace) -> int:
    from signer.settings import SignerSettings

    from .workers import SIGNER_FACTORY, serve

    configure_logging()
    # Read before any worker starts: a bad setting is one line here, not a traceback per worker.
    settings = SignerSettings.from_env()
    if not settings.api_keys:
        print(NO_API_KEYS, file=sys.stderr, flush=True)
    _check_listen(args.host, args.port)
    return serve(SIGNER_FACTORY, args.host, args.port, args.workers)


def cmd_serve_validator(args: argparse.Namespace) -> int:
    from edge_validator.settings import ValidatorSettings

    from .workers import VALIDATOR_FACTORY, serve

    configure_logging()
    settings = ValidatorSettings.from_env()
    if settings.media_root is not None and not settings.media_root.is_dir():
        print(no_media_root(settings.media_root), file=sys.stderr, flush=True)
    _check_listen(args.host, args.port)
    return serve(VALIDATOR_FACTORY, args.host, args.port, args.workers)


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo.run import run_demo

    configure_logging()  # denials (reason, token id) and state warnings show in the terminal
    return run_demo(args)


def cmd_nginx_config(args: argparse.Namespace) -> int:
    from edge_validator.core.cors import CorsPolicy, parse_origins

    from .nginx.config import EdgeConfig, check_native, make_prefix, render

    env = Env(os.environ)
    cors = env.cors()  # PLAYGATE_CORS_ORIGINS, as the validator reads it
    if args.cors_origins is not None:
        cors = CorsPolicy(parse_origins(args.cors_origins, "--cors-origins"), cors.max_age)
    # Unset options come from the environment (the systemd unit's edge.env).
    origin_url = args.origin_url or env.text("PLAYGATE_EDGE_ORIGIN_URL")
    if origin_url is None:
        print(
            "playgate nginx-config: give --origin-url (or PLAYGATE_EDGE_ORIGIN_URL)",
            file=sys.stderr,
        )
        return 2
    tls_cert = args.tls_cert or env.text("PLAYGATE_EDGE_TLS_CERT")
    tls_key = args.tls_key or env.text("PLAYGATE_EDGE_TLS_KEY")
    # The native verifier reads the validators' key ring file; without one, auth_request only.
    keyring_file = args.keyring_file or env.text("PLAYGATE_KEYRING_FILE")
    native = args.native and env.flag("PLAYGATE_EDGE_NATIVE", True)
    config = EdgeConfig(
        listen=args.listen or env.text("PLAYGATE_EDGE_LISTEN") or "127.0.0.1:8088",
        validator_url=args.validator_url[0],
        more_validator_urls=tuple(args.validator_url[1:]),
        origin_url=origin_url,
        prefix=Path(args.prefix),
        workers=args.workers,
        daemon=args.daemon,
        user=args.user,
        cors=cors,
        tls_cert=Path(tls_cert) if tls_cert else None,
        tls_key=Path(tls_key) if tls_key else None,
        keyring_file=Path(keyring_file) if keyring_file else None,
        native=native,
        metrics_listen=args.metrics_listen or env.text("PLAYGATE_EDGE_METRICS_LISTEN"),
    )
    if config.native_active:
        check_native(config)
        if args.fast:
            config = _with_fast_path(config)
    text = render(config)
    try:
        make_prefix(config)  # nginx needs its temp and cache folders before `nginx -t`
    except OSError as exc:
        raise CliError(
            f"cannot create the prefix folders ({exc.strerror}: {exc.filename}); "
            "choose a writable --prefix"
        ) from None
    if args.output:
        _write(Path(args.output), text)
    else:
        sys.stdout.write(text)
    return 0


def _with_fast_path(config: EdgeConfig) -> EdgeConfig:
    """The native edge with its C fast path, built for this nginx; without it (and a line that
    says how to get it) when this machine cannot build it."""
    from .nginx.fast_module import built

    try:
        return dataclasses.replace(config, fast_module=built())
    except ConfigurationError as exc:
        print(f"playgate nginx-config: the C fast path is off: {exc.message}", file=sys.stderr)
        return config


def workers(text: str) -> int:
    from .workers import MAX_WORKERS

    if not text.isdigit() or not 1 <= int(text) <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"give a number of processes from 1 to {MAX_WORKERS}")
    return int(text)


def cmd_nginx_error_log(args: argparse.Namespace) -> int:
    from .nginx.error_log import main as filter_error_log

    return filter_error_log()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="playgate",
        description="PlayGate: serve, sign offline, generate keys, explain a URL (docs/api.md).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("keygen", help="generate a key ring with one new key")
    p.add_argument("--key-id", default="k1")
    p.add_argument("--output", "-o", help="write to this new file (mode 600)")
    p.add_argument("--cat", action="store_true", help="a CAT key ring (one HS256 key)")
    p.set_defaults(func=cmd_keygen)

    p = sub.add_parser("api-key", help="generate a caller API key and its stored hash")
    p.add_argument("--name", default="app")
    p.add_argument(
        "--scopes", help=f"comma-separated, of {','.join(SCOPES)} (default: all of them)"
    )
    p.add_argument("--video-prefix", help="limit the key to video ids starting with this")
    p.set_defaults(func=cmd_api_key)

    p = sub.add_parser("sign", help="sign a playback URL offline from a key ring file")
    p.add_argument("video_id")
    p.add_argument("--keyring")
    p.add_argument("--ttl", dest="ttl_seconds", type=int, help="start window, seconds")
    p.add_argument(
        "--session-seconds",
        type=int,
        help="playback session the URL opens (0: none; default PLAYGATE_DEFAULT_SESSION)",
    )
    p.add_argument("--client-ip")
    p.add_argument("--session-id")
    p.add_argument("--file")
    p.add_argument("--base-url", default="http://127.0.0.1:8081")
    p.add_argument("--mode", choices=("path", "query"), default="path")
    p.add_argument("--format", choices=FORMATS, default="playgate", help="docs/formats.md")
    p.add_argument("--cat-keys", help="CAT key ring file (else PLAYGATE_CAT_KEYS_FILE)")
    p.add_argument(
        "--cat-renewal",
        metavar="TYPE:EXPADD[:DEADLINE]",
        help="with --format cat: catr renewal at the edge, e.g. redirect:600:60 (docs/cat.md)",
    )
    p.add_argument("--format-keys", help="a CDN format's keys file (PLAYGATE_FORMAT_KEYS_FILE)")
    p.set_defaults(func=cmd_sign)

    p = sub.add_parser("explain", help="explain why a URL is accepted or rejected")
    p.add_argument("url")
    p.add_argument("--keyring")
    p.add_argument("--client-ip")
    p.add_argument(
        "--at", type=moment, help="judge at this time (ISO 8601 or unix seconds) instead of now"
    )
    p.add_argument(
        "--leeway", type=leeway, default=DEFAULT_LEEWAY, help=f"clock skew, 0-{MAX_LEEWAY} s"
    )
    p.add_argument("--cat-keys", help="CAT key ring file (else PLAYGATE_CAT_KEYS_FILE)")
    p.set_defaults(func=cmd_explain)

    for name, func, default_port in (
        ("serve-signer", cmd_serve_signer, 8080),
        ("serve-validator", cmd_serve_validator, 8081),
    ):
        p = sub.add_parser(
            name,
            help=f"run the {name[6:]} (settings from the environment)",
            description=f"Run the {name[6:]}; settings come from the environment "
            "(PLAYGATE_*, REDIS_URL: docs/configuration.md).",
        )
        p.add_argument("--host", default="127.0.0.1", help="address to listen on")
        p.add_argument("--port", type=port, default=default_port, help=f"default {default_port}")
        p.add_argument(
            "--workers",
            type=workers,
            default=1,
            help="worker processes (each with its own revocation view); SIGHUP reloads keys",
        )
        p.set_defaults(func=func)

    add_revocation_commands(sub)

    p = sub.add_parser("nginx-config", help="render the nginx edge config (infra/nginx)")
    p.add_argument(
        "--listen", help="nginx listen value (default: PLAYGATE_EDGE_LISTEN, else 127.0.0.1:8088)"
    )
    p.add_argument(
        "--validator-url",
        required=True,
        action="append",
        help="http://host:port of a validator (repeat for several)",
    )
    p.add_argument(
        "--origin-url", help="http://host:port of the media origin (or PLAYGATE_EDGE_ORIGIN_URL)"
    )
    p.add_argument(
        "--prefix", required=True, help="folder for nginx temp files, cache and logs (created)"
    )
    p.add_argument("--workers", default="auto")
    p.add_argument("--daemon", action="store_true", help="let nginx daemonize")
    p.add_argument("--user", help="user the workers run as when nginx starts as root")
    p.add_argument(
        "--cors-origins",
        help="'*' or comma-separated origins of web players (default: PLAYGATE_CORS_ORIGINS)",
    )
    p.add_argument("--tls-cert", help="HTTPS certificate chain, PEM (or PLAYGATE_EDGE_TLS_CERT)")
    p.add_argument("--tls-key", help="its private key, PEM (or PLAYGATE_EDGE_TLS_KEY)")
    p.add_argument(
        "--keyring-file",
        help="the validators' key ring file, for the native verifier (or PLAYGATE_KEYRING_FILE)",
    )
    p.add_argument(
        "--no-native",
        dest="native",
        action="store_false",
        help="send every request to the validator (auth_request), as before the native verifier",
    )
    p.add_argument(
        "--no-fast",
        dest="fast",
        action="store_false",
        help="no C fast path: the native verifier decides every request in Lua",
    )
    p.add_argument(
        "--metrics-listen",
        help="admin address where nginx serves the native verifier's counts at /metrics, "
        "e.g. 127.0.0.1:9146 (or PLAYGATE_EDGE_METRICS_LISTEN; default: not served)",
    )
    p.add_argument("--output", "-o", help="write here instead of stdout")
    p.set_defaults(func=cmd_nginx_config)

    p = sub.add_parser(
        "nginx-error-log",
        help="copy nginx's stderr (its error log) from stdin to stdout without request text",
    )
    p.set_defaults(func=cmd_nginx_error_log)

    p = sub.add_parser("demo", help="run signer and validator on loopback with the sample video")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--signer-port", type=port, default=0, help="default 8080 when free")
    p.add_argument("--edge-port", type=port, default=0, help="default 8081 when free")
    p.add_argument("--edge", choices=("shield", "nginx"), default="shield")
    p.add_argument("--origin", help="origin for the shield: a folder, http(s)://... or s3://...")
    p.add_argument(
        "--upload-samples",
        action="store_true",
        help="with an s3:// origin: create the bucket if needed and upload the sample video",
    )
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
        sys.stdout.flush()
    except PlayGateError as exc:
        print(f"playgate: {exc.reason}: {exc.message}", file=sys.stderr)
        return 2
    except CliError as exc:
        print(f"playgate {args.command}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `playgate explain ... | head`: the reader left; say nothing more (Python's recipe:
        # point stdout at devnull so the flush at exit does not raise again).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell tool killed by the closed pipe would exit
    return result


if __name__ == "__main__":
    raise SystemExit(main())
