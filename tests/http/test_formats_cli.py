"""``playgate sign --format``: the same policy in a CDN's format, offline."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from edge_validator.core.keyring import new_keyring_json
from edge_validator.formats import cloudfront, secure_link
from edge_validator.formats.keys import FormatKeys
from playgate.cli import main
from tests.support.formats import format_keys_json, secure_link_key


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    ring, keys = tmp_path / "ring.json", tmp_path / "formats.json"
    ring.write_text(new_keyring_json("k1"))
    keys.write_text(format_keys_json("https://cdn.example.com"))
    return ring, keys


def _sign(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    code = main(["sign", "demo", *argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def test_sign_in_the_secure_link_format(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    ring, keys = files
    code, lines, _ = _sign(
        capsys, "--keyring", str(ring), "--format", "secure_link", "--format-keys", str(keys),
        "--base-url", "https://edge.example.com",
    )  # fmt: skip
    assert code == 0
    path = lines[0].removeprefix("https://edge.example.com")
    access = secure_link.verify(path, None, (secure_link_key(),))
    assert access.scope == "/videos/demo/"
    assert access.expires_at <= time.time() + 301


def test_sign_in_the_cloudfront_format_prints_the_cookies(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    ring, keys = files
    code, lines, _ = _sign(
        capsys, "--keyring", str(ring), "--format", "cloudfront", "--format-keys", str(keys)
    )
    assert code == 0
    cookies = dict(line.removeprefix("cookie ").split("=", 1) for line in lines[1:])
    public = FormatKeys.from_json(keys.read_text()).public_only().cloudfront
    access = cloudfront.verify(
        "/videos/demo/hls/v0/seg_000.ts",
        "",
        cookies,
        public,
        "https://cdn.example.com",  # type: ignore[arg-type]
    )
    assert access.scope == "/videos/demo/"


def test_a_format_without_keys_is_one_line_saying_what_to_do(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PLAYGATE_FORMAT_KEYS", raising=False)
    monkeypatch.delenv("PLAYGATE_FORMAT_KEYS_FILE", raising=False)
    ring, _ = files
    code, lines, err = _sign(capsys, "--keyring", str(ring), "--format", "akamai")
    assert (code, lines) == (2, [])
    assert err == "playgate: invalid_field: format: this signer has no akamai key\n"
