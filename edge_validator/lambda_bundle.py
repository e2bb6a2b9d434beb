"""Building the Lambda@Edge zip: the stdlib-only verification modules and a baked key ring.

Lambda@Edge functions have no environment variables, so the verification keys travel inside the
bundle. Only verification keys are baked (no active key: the edge never signs). The zip is
reproducible (fixed timestamps and order) and refused when over the viewer-trigger limit.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

from .errors import ConfigurationError
from .keyring import KeyRing

PACKAGE_DIR = Path(__file__).resolve().parent
# What the handler imports, and nothing else: each of these uses the standard library only.
MODULES = ("__init__", "errors", "keyring", "token", "paths", "decision", "lambda_edge")
BAKED_NAME = "edge_validator/baked_keyring.json"
MAX_ZIP_BYTES = 1024 * 1024  # the Lambda@Edge viewer-trigger limit
_EPOCH = (1980, 1, 1, 0, 0, 0)


def baked_keyring_json(keyring_file: Path) -> str:
    """The key ring, checked as the validator loads it, reduced to its verification keys."""
    KeyRing.from_file(keyring_file)  # refuses bad JSON, non-canonical secrets and short keys
    keys = json.loads(keyring_file.read_text(encoding="utf-8"))["keys"]
    return json.dumps({"keys": keys}, sort_keys=True) + "\n"


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16  # readable by the Lambda runtime user
    return info


def build_zip(keyring_file: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for module in MODULES:
            source = (PACKAGE_DIR / f"{module}.py").read_bytes()
            bundle.writestr(_entry(f"edge_validator/{module}.py"), source)
        bundle.writestr(_entry(BAKED_NAME), baked_keyring_json(keyring_file))
    return buffer.getvalue()


def write_bundle(keyring_file: Path, output: Path, max_bytes: int = MAX_ZIP_BYTES) -> int:
    """Write the zip to ``output`` and return its size; refuse (and write nothing) when too big."""
    data = build_zip(keyring_file)
    if len(data) > max_bytes:
        raise ConfigurationError(f"the bundle is {len(data)} bytes; the limit is {max_bytes}")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(data)
    output.chmod(0o600)  # it holds the verification keys
    return len(data)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="build-lambda", description=__doc__)
    parser.add_argument("keyring_file", type=Path)
    parser.add_argument("--output", "-o", type=Path, default=Path("dist/lambda-edge.zip"))
    parser.add_argument("--max-bytes", type=int, default=MAX_ZIP_BYTES)
    args = parser.parse_args(argv)
    try:
        size = write_bundle(args.keyring_file, args.output, args.max_bytes)
    except ConfigurationError as exc:
        print(f"build-lambda: {exc.reason}: {exc.message}", file=sys.stderr)
        return 1
    print(f"wrote {args.output} ({size} bytes; limit {args.max_bytes})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
