"""The Lambda@Edge zip: built by the script, small, self-contained, working from a clean path."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from edge_validator.core.keyring import KeyRing, new_keyring_json
from playgate.lambda_bundle import LAMBDA_FORMAT_MODULES, MAX_ZIP_BYTES, write_bundle
from tests.support import factories
from tests.support.factories import ROOT

EVENTS = ROOT / "tests" / "events"
CORE = ROOT / "edge_validator" / "core"
# The core folder whole (no hand-kept list), the package's __init__ and the handler.
EXPECTED = {
    *(f"edge_validator/core/{p.relative_to(CORE).as_posix()}" for p in CORE.rglob("*.py")),
    "edge_validator/__init__.py",
    "edge_validator/lambda_edge.py",
    "edge_validator/baked_config.json",
    # The shared-secret formats, verified at the edge (formats/lambda_formats.py).
    *(f"edge_validator/formats/{name}.py" for name in LAMBDA_FORMAT_MODULES),
}
# Runs inside the unzipped bundle with -I -S: no site-packages, no environment, no cwd on the path.
RUNNER = """
import json, sys
sys.path.insert(0, sys.argv[1])
from edge_validator.lambda_edge import handler
import edge_validator
assert edge_validator.__file__.startswith(sys.argv[1]), edge_validator.__file__
results = [handler(event, None) for event in json.load(sys.stdin)]
foreign = sorted(
    name for name in sys.modules
    if name.partition(".")[0] not in sys.stdlib_module_names | {"edge_validator", "__main__"}
)
json.dump({"results": results, "foreign": foreign}, sys.stdout)
"""


def run_bundle(folder: Path, events: list[dict[str, Any]]) -> dict[str, Any]:
    """The handler of an unzipped bundle on ``events``, in a fresh ``python -I -S``."""
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", RUNNER, str(folder)],
        input=json.dumps(events),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    return out


def build(keyring_file: Path, output: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(ROOT / "scripts" / "build-lambda"),
            str(keyring_file),
            "--output",
            str(output),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def keyring_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "keyring.json"
    doc = json.loads(new_keyring_json("edge1"))
    doc["keys"]["old0"] = json.loads(new_keyring_json("old0"))["keys"]["old0"]
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture(scope="module")
def bundle(keyring_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("dist") / "lambda-edge.zip"
    done = build(keyring_file, output)
    assert done.returncode == 0, done.stderr
    return output


def event(token: str, name: str = "viewer-request-path-token.json") -> Any:
    return json.loads((EVENTS / name).read_text().replace("__TOKEN__", token))


def test_bundle_is_small_and_holds_only_the_verification_modules(bundle: Path) -> None:
    assert bundle.stat().st_size <= MAX_ZIP_BYTES
    with zipfile.ZipFile(bundle) as zf:
        assert set(zf.namelist()) == EXPECTED
        baked = json.loads(zf.read("edge_validator/baked_config.json"))
    # The key ring without its active key (the edge signs no start token) and the policy.
    # The keys also mint session tokens there (under the session MAC context), capped as
    # every validator caps them.
    assert set(baked) == {"keys", "max_ttl", "leeway", "max_session"}
    assert sorted(baked["keys"]) == ["edge1", "old0"]
    assert (baked["max_ttl"], baked["leeway"]) == (3600, 5)


def test_build_is_reproducible(keyring_file: Path, bundle: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.zip"
    assert build(keyring_file, again).returncode == 0
    assert again.read_bytes() == bundle.read_bytes()


def test_build_fails_over_the_size_limit(keyring_file: Path, tmp_path: Path) -> None:
    output = tmp_path / "big.zip"
    done = build(keyring_file, output, "--max-bytes", "1000")
    assert done.returncode != 0
    assert "limit is 1000" in done.stderr
    assert not output.exists()


def test_build_refuses_a_short_key(tmp_path: Path) -> None:
    weak = tmp_path / "weak.json"
    weak.write_text(json.dumps({"keys": {"k1": "c2hvcnQ"}}))
    done = build(weak, tmp_path / "out.zip")
    assert done.returncode != 0
    assert "key_too_short" in done.stderr


def test_unzipped_bundle_runs_with_the_standard_library_only(
    bundle: Path, keyring_file: Path, tmp_path: Path
) -> None:
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(tmp_path / "task")
    keyring = KeyRing.from_file(keyring_file)
    now = int(time.time())
    good = factories.token(keyring, now=now - 5, key_id="old0", token_id="tid-b")
    v6 = factories.token(
        keyring, now=now - 5, key_id="edge1", token_id="tid-6", client_network="2001:db8:85a3::/48"
    )
    events = [
        event(good),
        event(good, "viewer-request-query-token.json"),
        event(v6, "viewer-request-ipv6.json"),
        event(factories.tampered(good)),
        event(good.replace("A", "B", 1)),
    ]
    out = run_bundle(tmp_path / "task", events)
    assert out["foreign"] == []
    allowed, query, ipv6, bad1, bad2 = out["results"]
    assert allowed["uri"] == "/videos/demo/master.m3u8"
    assert query["uri"] == "/videos/demo/hls/v0/seg_000.ts"
    assert query["querystring"] == "lang=en&cmcd=br%3D800"
    assert ipv6["uri"] == "/videos/demo/dash/manifest.mpd"
    for denied in (bad1, bad2):
        assert denied["status"] == "403"
        assert denied["headers"]["cache-control"][0]["value"] == "no-store"


def cat_keys_file(tmp_path: Path, *, es256: bool = False) -> Path:
    import base64

    secret = base64.urlsafe_b64encode(factories.CAT_SECRET).rstrip(b"=").decode()
    keys: dict[str, Any] = {"c1": {"alg": "HS256", "k": secret}}
    if es256:
        keys["e1"] = {k: v for k, v in factories.CAT_ES256.items() if k != "d"}
    path = tmp_path / ("cat-es.json" if es256 else "cat.json")
    path.write_text(json.dumps({"keys": keys}))
    return path


def test_hs256_cat_runs_in_the_bundle_with_the_standard_library_only(
    keyring_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAYGATE_CAT_ISSUER", factories.CAT_ISSUER)
    output = tmp_path / "cat.zip"
    done = build(keyring_file, output, "--cat-keys", str(cat_keys_file(tmp_path)))
    assert done.returncode == 0, done.stderr
    assert output.stat().st_size <= MAX_ZIP_BYTES
    with zipfile.ZipFile(output) as zf:
        zf.extractall(tmp_path / "task")
        assert (
            json.loads(zf.read("edge_validator/baked_config.json"))["cat"]["issuer"]
            == "playgate-test"
        )
    now = int(time.time())
    good = factories.cat_token(now=now - 5)
    events = [
        event(good),
        event(good, "viewer-request-query-token.json"),
        event(factories.tampered(good)),
    ]
    out = run_bundle(tmp_path / "task", events)
    assert out["foreign"] == []
    allowed, query, bad = out["results"]
    assert allowed["uri"] == "/videos/demo/master.m3u8"
    assert query["uri"] == "/videos/demo/hls/v0/seg_000.ts"
    assert bad["status"] == "403"


def test_an_es256_cat_key_is_refused_at_build_time(keyring_file: Path, tmp_path: Path) -> None:
    output = tmp_path / "es.zip"
    done = build(keyring_file, output, "--cat-keys", str(cat_keys_file(tmp_path, es256=True)))
    assert done.returncode != 0
    assert "ES256" in done.stderr
    assert "HS256 only" in done.stderr
    assert not output.exists()


def test_the_bundle_is_never_readable_by_others(
    keyring_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It holds the key ring, which can also sign: private from its first byte, whatever the
    umask (the file was once created world-readable and made 0600 only after the secret)."""
    modes: list[int] = []
    real_fdopen = os.fdopen

    def watching_fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
        modes.append(stat.S_IMODE(os.fstat(fd).st_mode))  # before a byte is written
        return real_fdopen(fd, *args, **kwargs)

    monkeypatch.setattr(os, "fdopen", watching_fdopen)
    monkeypatch.setattr(os, "chmod", lambda *a, **k: modes.append(-1))  # no repair afterwards
    previous = os.umask(0)
    try:
        write_bundle(keyring_file, tmp_path / "lambda-edge.zip")
    finally:
        os.umask(previous)
    assert modes == [0o600]
    assert stat.S_IMODE((tmp_path / "lambda-edge.zip").stat().st_mode) == 0o600


def test_the_bundle_carries_the_cors_policy(keyring_file: Path, tmp_path: Path) -> None:
    """PLAYGATE_CORS_ORIGINS at build time: the function's denials and preflight answers let
    the listed page read them (Lambda@Edge has no environment of its own)."""
    output = tmp_path / "cors.zip"
    env = {**os.environ, "PLAYGATE_CORS_ORIGINS": "https://app.example"}
    done = subprocess.run(
        [str(ROOT / "scripts" / "build-lambda"), str(keyring_file), "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(output) as zf:
        zf.extractall(tmp_path / "task")
    denied = event("not-a-token")
    request = denied["Records"][0]["cf"]["request"]
    request["headers"]["origin"] = [{"key": "Origin", "value": "https://app.example"}]
    preflight = json.loads(json.dumps(denied))
    pre_request = preflight["Records"][0]["cf"]["request"]
    pre_request["method"] = "OPTIONS"
    pre_request["headers"]["access-control-request-method"] = [
        {"key": "Access-Control-Request-Method", "value": "GET"}
    ]
    ran = subprocess.run(
        [sys.executable, "-I", "-S", "-c", RUNNER, str(tmp_path / "task")],
        input=json.dumps([denied, preflight]),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    refused, answered = json.loads(ran.stdout)["results"]
    assert refused["status"] in ("401", "403")
    allow = refused["headers"]["access-control-allow-origin"][0]["value"]
    assert allow == "https://app.example"
    assert answered["status"] == "204"
