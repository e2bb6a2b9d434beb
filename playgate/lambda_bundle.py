"""Building the Lambda@Edge zip: the stdlib-only verification core, the handler, and the baked
verification key ring and policy.

Lambda@Edge functions have no environment variables, so the verification keys and the policy
(``PLAYGATE_MAX_TTL``, ``PLAYGATE_LEEWAY``) travel inside the bundle. Only verification keys are
baked (no active key: the edge never signs). The bundle ships ``edge_validator/core/`` whole,
``edge_validator/__init__.py`` and ``lambda_edge.py``, nothing else; it is reproducible (fixed
timestamps and order), created private (it holds secrets), and refused when over the
viewer-trigger limit.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import edge_validator
from edge_validator.core.cat.keys import CatKeyRing
from edge_validator.core.cors import CorsPolicy
from edge_validator.core.decision import (
    DEFAULT_LEEWAY,
    DEFAULT_MAX_SESSION,
    DEFAULT_MAX_TTL,
    MAX_LEEWAY,
    MAX_TTL_LIMIT,
)
from edge_validator.core.errors import ConfigurationError
from edge_validator.core.keyring import KeyRing
from edge_validator.env import Env
from edge_validator.formats.keys import FormatKeys
from edge_validator.formats.lambda_formats import VERIFIED
from edge_validator.settings import max_session

PACKAGE_DIR = Path(edge_validator.__file__).resolve().parent
BAKED_NAME = "edge_validator/baked_config.json"
MAX_ZIP_BYTES = 1024 * 1024  # the Lambda@Edge viewer-trigger limit
_EPOCH = (1980, 1, 1, 0, 0, 0)


# The formats the function verifies with the standard library (formats/lambda_formats.py).
LAMBDA_FORMAT_MODULES = ("__init__", "policy", "akamai", "secure_link", "lambda_formats")


def bundle_sources() -> list[Path]:
    """What the handler imports: the package's ``__init__``, ``core/`` whole, the handler, and
    the shared-secret formats (no ``cryptography``)."""
    core = sorted((PACKAGE_DIR / "core").rglob("*.py"))
    formats = [PACKAGE_DIR / "formats" / f"{name}.py" for name in LAMBDA_FORMAT_MODULES]
    return [PACKAGE_DIR / "__init__.py", *core, *formats, PACKAGE_DIR / "lambda_edge.py"]


def baked_formats(format_keys_file: Path) -> dict[str, Any]:
    """The shared-secret formats' keys (secure_link, Akamai), checked as the shield loads them;
    the public-key formats' entries stay out (the function refuses those formats by name)."""
    FormatKeys.from_file(str(format_keys_file))
    doc = json.loads(format_keys_file.read_text(encoding="utf-8"))
    return {name: doc[name] for name in VERIFIED if doc.get(name)}


def baked_config_json(
    keyring_file: Path,
    max_ttl: int,
    leeway: int,
    cat: dict[str, Any] | None = None,
    *,
    max_session: int = DEFAULT_MAX_SESSION,
    cors: CorsPolicy | None = None,
    formats: dict[str, Any] | None = None,
) -> str:
    """The key ring, checked as the validator loads it, reduced to its verification keys, and
    the policy (``cors``: PLAYGATE_CORS_ORIGINS, for the responses the function generates).

    The same keys mint session tokens at the edge (under the session MAC context), so the
    bundle also carries the session cap every validator enforces.
    """
    KeyRing.from_file(keyring_file)  # refuses bad JSON, non-canonical secrets and short keys
    keys = json.loads(keyring_file.read_text(encoding="utf-8"))["keys"]
    doc: dict[str, Any] = {
        "keys": keys,
        "max_ttl": max_ttl,
        "leeway": leeway,
        "max_session": max_session,
    }
    if cat is not None:
        doc["cat"] = cat
    if cors is not None and cors.enabled:
        doc["cors"] = {"origins": ",".join(cors.origins), "max_age": cors.max_age}
    if formats:
        doc["formats"] = formats
    return json.dumps(doc, sort_keys=True) + "\n"


def baked_cat(cat_keys_file: Path, env: Env) -> dict[str, Any]:
    """CAT keys and policy for the bundle: HS256 only, checked as the edge will load them.

    No ``cryptography`` ships in the bundle, so an ES256 key is refused here, at build time,
    with a message saying so, instead of failing every request at the edge.
    """
    CatKeyRing.from_file(cat_keys_file, es256=None)
    keys = json.loads(cat_keys_file.read_text(encoding="utf-8"))["keys"]
    policy = env.cat_policy()
    origin = None if policy.origin is None else "://".join(policy.origin)
    return {"keys": keys, "issuer": policy.issuer, "audience": policy.audience, "origin": origin}


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16  # readable by the Lambda runtime user
    return info


def build_zip(
    keyring_file: Path,
    max_ttl: int,
    leeway: int,
    cat: dict[str, Any] | None = None,
    *,
    max_session: int = DEFAULT_MAX_SESSION,
    cors: CorsPolicy | None = None,
    formats: dict[str, Any] | None = None,
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for source in bundle_sources():
            name = source.relative_to(PACKAGE_DIR.parent).as_posix()
            bundle.writestr(_entry(name), source.read_bytes())
        baked = baked_config_json(
            keyring_file, max_ttl, leeway, cat, max_session=max_session, cors=cors, formats=formats
        )
        bundle.writestr(_entry(BAKED_NAME), baked)
    return buffer.getvalue()


def write_bundle(
    keyring_file: Path,
    output: Path,
    *,
    max_ttl: int = DEFAULT_MAX_TTL,
    leeway: int = DEFAULT_LEEWAY,
    max_bytes: int = MAX_ZIP_BYTES,
    cat: dict[str, Any] | None = None,
    max_session: int = DEFAULT_MAX_SESSION,
    cors: CorsPolicy | None = None,
    formats: dict[str, Any] | None = None,
) -> int:
    """Write the zip to ``output`` and return its size; refuse (and write nothing) when too big."""
    data = build_zip(
        keyring_file, max_ttl, leeway, cat, max_session=max_session, cors=cors, formats=formats
    )
    if len(data) > max_bytes:
        raise ConfigurationError(f"the bundle is {len(data)} bytes; the limit is {max_bytes}")
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    partial.unlink(missing_ok=True)
    # Private from the first byte: it holds keys that can also sign.
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(partial, output)
    return len(data)


def main(argv: Sequence[str] | None = None) -> int:
    env = Env(os.environ)
    parser = argparse.ArgumentParser(prog="build-lambda", description=__doc__)
    parser.add_argument("keyring_file", type=Path)
    parser.add_argument("--output", "-o", type=Path, default=Path("dist/lambda-edge.zip"))
    parser.add_argument("--max-bytes", type=int, default=MAX_ZIP_BYTES)
    parser.add_argument("--cat-keys", type=Path, help="CAT key ring (HS256 keys only)")
    parser.add_argument(
        "--format-keys",
        type=Path,
        help="format keys (PLAYGATE_FORMAT_KEYS_FILE): its secure_link and akamai keys are baked",
    )
    try:
        max_ttl = env.integer("PLAYGATE_MAX_TTL", DEFAULT_MAX_TTL, low=1, high=MAX_TTL_LIMIT)
        leeway = env.integer("PLAYGATE_LEEWAY", DEFAULT_LEEWAY, low=0, high=MAX_LEEWAY)
        session_cap = max_session(env)
        args = parser.parse_args(argv)
        size = write_bundle(
            args.keyring_file,
            args.output,
            max_ttl=max_ttl,
            leeway=leeway,
            max_bytes=args.max_bytes,
            cat=None if args.cat_keys is None else baked_cat(args.cat_keys, env),
            max_session=session_cap,
            cors=env.cors(),
            formats=None if args.format_keys is None else baked_formats(args.format_keys),
        )
    except ConfigurationError as exc:
        print(f"build-lambda: {exc.reason}: {exc.message}", file=sys.stderr)
        return 1
    print(f"wrote {args.output} ({size} bytes; limit {args.max_bytes}; max TTL {max_ttl} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
