"""The ``playgate`` CLI: keys, offline signing, and explaining a URL."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from edge_validator.core.decision import Verifier
from edge_validator.core.keyring import KeyRing, new_keyring_json
from edge_validator.core.sessions import seal_session, session_claims, session_location
from playgate.cli import NO_API_KEYS, main, no_media_root
from playgate.demo.origin import create_origin_app
from signer.api_keys import ApiKeys, hash_api_key
from tests.support import factories
from tests.support.servers import free_port, run_process, serve_app


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def ring_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    path = tmp_path / "ring.json"
    assert run(capsys, "keygen", "--key-id", "main", "-o", str(path))[0] == 0
    return path


def test_keygen_writes_private_loadable_ring(ring_file: Path) -> None:
    assert stat.S_IMODE(ring_file.stat().st_mode) == 0o600
    assert KeyRing.from_file(ring_file).active.key_id == "main"


def test_keygen_refuses_to_overwrite_in_one_line(
    ring_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = ring_file.read_text()
    code, _, err = run(capsys, "keygen", "-o", str(ring_file))
    assert code == 2
    assert err == (
        f"playgate keygen: {ring_file} already exists and is never overwritten: choose a new file\n"
    )
    assert ring_file.read_text() == before


@pytest.mark.parametrize("command", ["keygen", "nginx-config"])
def test_output_into_a_missing_folder_is_one_line(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "missing" / "edge.conf"
    urls = ["--validator-url", "http://127.0.0.1:1", "--origin-url", "http://127.0.0.1:2"]
    extra = [*urls, "--prefix", str(tmp_path)] if command == "nginx-config" else []
    code, _, err = run(capsys, command, *extra, "-o", str(out))
    assert code == 2
    assert err == (
        f"playgate {command}: folder {out.parent} does not exist: "
        f"create it (mkdir -p {out.parent}) first\n"
    )


def test_api_key_prints_key_and_its_hash(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "api-key", "--name", "web")
    key = out.split("backend): ")[1].split()[0]
    assert f"web:{hash_api_key(key)}" in out


def test_api_key_with_scopes_and_a_video_prefix(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["api-key", "--name", "cms", "--scopes", "sign,revoke", "--video-prefix", "tenant-a-"]
    _, out, _ = run(capsys, *argv)
    key = out.split("backend): ")[1].split()[0]
    entry = out.split("signer): ")[1].strip()
    assert entry == f"cms:{hash_api_key(key)}:sign+revoke:tenant-a-"
    caller = ApiKeys.parse(entry).caller(key)
    assert caller is not None
    assert (caller.name, caller.scopes, caller.video_prefix) == (
        "cms",
        frozenset({"sign", "revoke"}),
        "tenant-a-",
    )
    code, _, err = run(capsys, "api-key", "--scopes", "sign,admin")
    assert code == 2
    assert err.startswith("playgate: bad_configuration: API key 'app': scopes are one or more of")


def test_sign_then_explain_accepts(ring_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, url, _ = run(
        capsys,
        "sign",
        "v42",
        "--keyring",
        str(ring_file),
        "--ttl",
        "60",
        "--session-id",
        "s1",
        "--base-url",
        "https://cdn.example/",
    )
    assert code == 0
    assert url.startswith("https://cdn.example/t/")
    assert url.strip().endswith("/videos/v42/master.m3u8")
    code, out, _ = run(capsys, "explain", url.strip(), "--keyring", str(ring_file))
    assert code == 0
    assert out.startswith("ACCEPTED: serves /videos/v42/master.m3u8")
    assert "session id:     s1" in out
    secret = json.loads(ring_file.read_text())["keys"]["main"]
    assert secret not in out


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda u: u.replace("/videos/v42/", "/videos/v43/"), "out_of_scope"),
        (lambda u: u.replace("/t/", "/t/A"), "malformed"),
        (lambda u: u.split("/t/")[0] + "/videos/v42/master.m3u8", "missing"),
        (lambda u: u.replace("master.m3u8", "../v43/master.m3u8"), "bad_path"),
    ],
)
def test_explain_names_the_reason(
    ring_file: Path, capsys: pytest.CaptureFixture[str], mutate: object, reason: str
) -> None:
    _, url, _ = run(capsys, "sign", "v42", "--keyring", str(ring_file))
    bad = mutate(url.strip())  # type: ignore[operator]
    code, out, _ = run(capsys, "explain", bad, "--keyring", str(ring_file))
    assert code == 1
    assert out.startswith(f"REJECTED: {reason}")
    assert "hint:" in out


def test_explain_expired_shows_claims(ring_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, url, _ = run(
        capsys,
        "sign",
        "v42",
        "--keyring",
        str(ring_file),
        "--ttl",
        "30",
        "--client-ip",
        "203.0.113.4",
    )
    later = str(int(time.time()) + 120)
    code, out, _ = run(
        capsys,
        "explain",
        url.strip(),
        "--keyring",
        str(ring_file),
        "--at",
        later,
        "--client-ip",
        "203.0.113.4",
    )
    assert code == 1
    assert out.startswith("REJECTED: expired")
    assert "client network: 203.0.113.4/32" in out
    assert " s ago)" in out
    assert "ago s" not in out


def _explain_at(
    ring_file: Path, capsys: pytest.CaptureFixture[str], at: str
) -> tuple[int, str, str]:
    _, url, _ = run(capsys, "sign", "v42", "--keyring", str(ring_file), "--ttl", "60")
    return run(capsys, "explain", url.strip(), "--keyring", str(ring_file), "--at", at)


def test_explain_at_takes_the_iso_dates_it_prints(
    ring_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, url, _ = run(capsys, "sign", "v42", "--keyring", str(ring_file), "--ttl", "60")

    def explain_at(at: str) -> tuple[int, str, str]:
        # One URL throughout: signing again could land in the next second.
        return run(capsys, "explain", url.strip(), "--keyring", str(ring_file), "--at", at)

    code, out, _ = explain_at("2000-01-01T00:00:00Z")
    assert code == 1
    assert out.startswith("REJECTED: not_yet_valid")
    # 27 years ahead reads in days, not as a nine-digit count of seconds.
    not_before = out.split("not before:")[1].splitlines()[0]
    assert not_before.endswith(" days)"), not_before
    assert int(not_before.split("(in ")[1].removesuffix(" days)")) > 9000
    # Its own output, pasted back: the expiry it printed, with a zone.
    expires = out.split("expires:")[1].split()[0]
    code, out, _ = explain_at(expires)
    assert code == 0
    assert "(in 0 s)" in out
    code, out, _ = _explain_at(ring_file, capsys, str(int(time.time())))
    assert code == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--at", "2026-11-22T05:40:00"], "has no time zone: add Z for UTC"),
        (["--at", "yesterday"], "is not a time: give ISO 8601"),
        (["--at", "nan"], "is not a unix time"),
        (["--leeway", "999"], "give whole seconds from 0 to 60, as validators accept"),
        (["--leeway", "-1"], "give whole seconds from 0 to 60"),
    ],
)
def test_explain_refuses_bad_options_in_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["explain", "http://cdn.example/t/x/videos/v/m.m3u8", *argv])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("playgate explain: argument --")
    assert message in lines[0]
    assert lines[0].endswith("(see playgate explain --help)")


@pytest.mark.parametrize("text", ["not a url", "cdn.example/t/x/videos/v/m.m3u8", ""])
def test_explain_says_what_a_url_is(
    text: str, ring_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "explain", text, "--keyring", str(ring_file))
    assert code == 2
    assert out == ""
    assert err.startswith(f"playgate explain: {text!r} is not a URL: give the whole playback URL")
    assert "dot segments" not in err


def test_explain_into_a_closed_pipe_is_quiet(ring_file: Path) -> None:
    # `playgate explain ... | head`: the reader is gone before explain writes.
    url = subprocess.run(
        [sys.executable, "-m", "playgate.cli", "sign", "v42", "--keyring", str(ring_file)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    explain = f"{sys.executable} -m playgate.cli explain '{url}' --keyring {ring_file}"
    done = subprocess.run(
        ["bash", "-c", f"{explain} | true; echo ${{PIPESTATUS[0]}}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stderr == ""
    assert done.stdout.strip() in ("0", "141")


def test_bad_input_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"keys": {"k": "c2hvcnQ"}}')
    code, _, err = run(capsys, "sign", "v1", "--keyring", str(bad))
    assert code == 2
    assert "key_too_short" in err
    code, _, err = run(capsys, "sign", "../x", "--keyring", str(tmp_path / "missing.json"))
    assert code == 2
    assert "cannot read key ring" in err


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["v1", "--ttl", "999999"], "playgate sign: --ttl: must be an integer from 1 to 3600"),
        (["../x"], "playgate sign: VIDEO_ID: required; 1-128 characters of A-Z a-z 0-9 _ -"),
        (["v1", "--client-ip", "nope"], "playgate sign: --client-ip: must be an IPv4 or IPv6"),
    ],
)
def test_sign_names_the_option_that_is_wrong(
    argv: list[str], line: str, ring_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The API's field names (ttl_seconds) are not what the user typed (--ttl)."""
    code, out, err = run(capsys, "sign", *argv, "--keyring", str(ring_file))
    assert (code, out) == (2, "")
    assert err.startswith(line)
    assert err.count("\n") == 1


def test_explain_judges_the_lifetime_as_validators_do(
    ring_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAYGATE_MAX_TTL", str(7 * 86400))
    _, url, _ = run(capsys, "sign", "v42", "--keyring", str(ring_file), "--ttl", str(7 * 86400))
    monkeypatch.delenv("PLAYGATE_MAX_TTL")
    code, out, _ = run(capsys, "explain", url.strip(), "--keyring", str(ring_file))
    assert code == 1
    assert out.startswith("REJECTED: lifetime_exceeded")
    # Longer than the configured maximum is refused at signing too.
    code, _, err = run(capsys, "sign", "v42", "--keyring", str(ring_file), "--ttl", "7200")
    assert code == 2
    assert "--ttl: must be an integer from 1 to 3600" in err


def test_key_ring_from_the_environment(
    ring_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAYGATE_KEYRING", ring_file.read_text())
    code, url, _ = run(capsys, "sign", "v42")
    assert code == 0
    assert run(capsys, "explain", url.strip())[0] == 0


def test_serve_signer_without_api_keys_says_so_at_start(tmp_path: Path) -> None:
    keyring_file = tmp_path / "keyring.json"
    keyring_file.write_text(new_keyring_json("k1"))
    env = {**os.environ, "PLAYGATE_KEYRING_FILE": str(keyring_file)}
    env.pop("PLAYGATE_API_KEYS", None)
    env.pop("REDIS_URL", None)
    log = tmp_path / "signer.log"
    port = free_port()
    argv = [sys.executable, "-m", "playgate.cli", "serve-signer", "--port", str(port)]
    with run_process(argv, port=port, env=env, log=log):
        pass
    assert NO_API_KEYS in log.read_text()


def _serve(
    command: str, tmp_path: Path, *argv: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """``playgate serve-*`` that must stop before serving: its exit status and output."""
    keyring_file = tmp_path / "keyring.json"
    keyring_file.write_text(new_keyring_json("k1"))
    full_env = {**os.environ, "PLAYGATE_KEYRING_FILE": str(keyring_file), **env}
    full_env.pop("REDIS_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "playgate.cli", command, *argv],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("value", ["99999", "-1", "http"])
def test_a_bad_port_is_one_line(value: str, tmp_path: Path) -> None:
    done = _serve("serve-validator", tmp_path, "--port", value)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"playgate serve-validator: argument --port: {value!r}: give a port from 1 to 65535 "
        "(0: any free one) (see playgate serve-validator --help)"
    ]


@pytest.mark.parametrize(
    ("command", "host", "needle"),
    [
        ("serve-signer", "127.0.0.1", "another program listens there: stop it or choose another"),
        ("serve-validator", "127.0.0.1", "another program listens there"),
        ("serve-validator", "no-such-host.invalid", "does not resolve: give an address"),
        ("serve-validator", "192.0.2.1", "is not an address of this machine"),
    ],
)
def test_a_port_it_cannot_listen_on_is_one_line(
    command: str, host: str, needle: str, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = str(taken.getsockname()[1])
        done = _serve(command, tmp_path, "--host", host, "--port", port, PLAYGATE_API_KEYS="")
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if not line.startswith(NO_API_KEYS)]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"playgate {command}: ")
    assert needle in lines[0]


def test_serve_validator_says_when_its_media_root_is_no_folder(tmp_path: Path) -> None:
    keyring_file = tmp_path / "keyring.json"
    keyring_file.write_text(new_keyring_json("k1"))
    missing = tmp_path / "media"  # a typo in the unit file: every request would be a 404
    env = {**os.environ, "PLAYGATE_KEYRING_FILE": str(keyring_file)}
    env["PLAYGATE_MEDIA_ROOT"] = str(missing)
    env.pop("REDIS_URL", None)
    log = tmp_path / "validator.log"
    port = free_port()
    argv = [sys.executable, "-m", "playgate.cli", "serve-validator", "--port", str(port)]
    with run_process(argv, port=port, env=env, log=log):
        pass
    assert no_media_root(missing) in log.read_text()
    missing.mkdir()
    log.unlink()
    with run_process(argv, port=port, env=env, log=log):
        pass
    assert "PLAYGATE_MEDIA_ROOT" not in log.read_text()


@pytest.mark.parametrize(
    ("command", "env", "needle"),
    [
        ("serve-validator", {"PLAYGATE_LOG_LEVEL": "verbose"}, "PLAYGATE_LOG_LEVEL"),
        ("serve-signer", {"PLAYGATE_LOG_LEVEL": "verbose"}, "PLAYGATE_LOG_LEVEL"),
        ("serve-validator", {"PLAYGATE_LEEWAY": "999"}, "PLAYGATE_LEEWAY"),
        ("serve-validator", {"PLAYGATE_KEYRING": ""}, "PLAYGATE_KEYRING_FILE"),
        ("serve-validator", {"REDIS_URL": "redis://127.0.0.1:notaport/0"}, "REDIS_URL"),
        ("serve-signer", {"REDIS_URL": "redis://127.0.0.1:6379/x"}, "database number"),
        ("serve-validator", {"PLAYGATE_GRANT_CACHE_SECONDS": "30"}, "was removed"),
    ],
)
def test_a_bad_setting_stops_a_server_with_one_line(
    command: str, env: dict[str, str], needle: str, tmp_path: Path
) -> None:
    keyring_file = tmp_path / "keyring.json"
    keyring_file.write_text(new_keyring_json("k1"))
    base = {"PLAYGATE_KEYRING_FILE": str(keyring_file), "PLAYGATE_MEDIA_ROOT": str(tmp_path)}
    if env.get("PLAYGATE_KEYRING") == "":
        base.pop("PLAYGATE_KEYRING_FILE")
    inherited = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    full_env = {**inherited, **base, **env}
    done = subprocess.run(
        [sys.executable, "-m", "playgate.cli", command, "--port", "0"],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("playgate: bad_configuration:")
    assert needle in lines[0]


def test_explain_tells_start_and_session_urls_apart(
    ring_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # As docs/sessions.md shows it: a 10 s start window that opens a 4 h session.
    _, url, _ = run(
        capsys, "sign", "film", "--keyring", str(ring_file), "--ttl", "10",
        "--session-seconds", "14400",
    )  # fmt: skip
    url = url.strip()
    code, out, _ = run(capsys, "explain", url, "--keyring", str(ring_file))
    assert code == 0
    assert "start token (start window" in out
    assert "opens a session of up to 14400 s" in out
    assert "redirect to a new session URL" in out

    later = str(int(time.time()) + 60)
    code, out, _ = run(capsys, "explain", url, "--keyring", str(ring_file), "--at", later)
    assert code == 1
    assert out.startswith("REJECTED: expired")
    assert "the start window is over" in out

    # The session URL the edge would answer with, judged an hour later.
    ring = KeyRing.from_file(ring_file)
    verifier = Verifier(ring, max_ttl=3600)
    grant = verifier.verify_target(url.split("8081", 1)[1], None, time.time())
    session = seal_session(session_claims(grant, None, max_session=43200), verifier.sessions)
    session_url = "http://127.0.0.1:8081" + session_location(grant, session)
    hour = str(int(time.time()) + 3600)
    code, out, _ = run(capsys, "explain", session_url, "--keyring", str(ring_file), "--at", hour)
    assert code == 0, out
    assert "session token (playback session, " in out
    code, out, _ = run(
        capsys, "explain", session_url, "--keyring", str(ring_file), "--at",
        str(int(time.time()) + 14400 + 60),
    )  # fmt: skip
    assert code == 1
    assert "the playback session is over" in out


def test_sign_without_a_session(ring_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, url, _ = run(capsys, "sign", "clip", "--keyring", str(ring_file), "--session-seconds", "0")
    code, out, _ = run(capsys, "explain", url.strip(), "--keyring", str(ring_file))
    assert code == 0
    assert "start token without a session" in out


def test_nginx_error_log_filter_keeps_no_request_text() -> None:
    tok = factories.token()
    line = f'2026/01/01 10:00:00 [error] 7#7: *1 x, client: 1.2.3.4, request: "GET /t/{tok}/v"\n'
    done = subprocess.run(
        [sys.executable, "-m", "playgate.cli", "nginx-error-log"],
        input=line,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout == '2026/01/01 10:00:00 [error] 7#7: *1 x, client: 1.2.3.4, request: "…"\n'


def _validator_env(tmp_path: Path, **extra: str) -> tuple[dict[str, str], KeyRing]:
    text = new_keyring_json("k1")
    env = {**os.environ, "PLAYGATE_KEYRING": text, **extra}
    env.pop("REDIS_URL", None)
    return env, KeyRing.from_json(text)


def test_origin_url_with_a_password_is_refused(tmp_path: Path) -> None:
    env, _ = _validator_env(tmp_path, PLAYGATE_ORIGIN_URL="http://cdn:s3cret@127.0.0.1:9")
    done = subprocess.run(
        [sys.executable, "-m", "playgate.cli", "serve-validator", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("playgate: bad_configuration: PLAYGATE_ORIGIN_URL must not")
    assert "s3cret" not in done.stderr


def test_origin_requests_are_not_logged_by_httpx(tmp_path: Path) -> None:
    log = tmp_path / "validator.log"
    with serve_app(create_origin_app(factories.SAMPLES)) as origin:
        env, ring = _validator_env(tmp_path, PLAYGATE_ORIGIN_URL=origin, PLAYGATE_LOG_LEVEL="debug")
        port = free_port()
        argv = [sys.executable, "-m", "playgate.cli", "serve-validator", "--port", str(port)]
        with run_process(argv, port=port, env=env, log=log):
            target = factories.target(factories.token(ring), "/videos/demo/hls/v0/seg_000.ts")
            assert httpx.get(f"http://127.0.0.1:{port}{target}", timeout=10).status_code == 200
    text = log.read_text()
    assert "tid-test" in text  # PlayGate's own debug line about the allowed request
    assert "HTTP Request" not in text, text
    assert "httpcore" not in text, text
