"""How the docs test reads commands out of fenced blocks."""

from __future__ import annotations

from pathlib import Path

from tests.support.doc_commands import (
    BENCH_MARK,
    CLOUD_MARK,
    SERVER_MARK,
    Block,
    blocks,
    classify,
    commands,
)


def _commands(body: str) -> list[tuple[str, str, int]]:
    found = commands(Block(Path("docs/x.md"), 10, "bash", body))
    return [(c.kind, c.code, c.expected_status) for c in found]


def test_blocks_keep_language_and_line(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# T\n\n```bash\necho hi\n```\n\ntext\n```\nplain\n```\n")
    found = blocks(page)
    assert [(b.line, b.language, b.body) for b in found] == [
        (3, "bash", "echo hi\n"),
        (8, "", "plain\n"),
    ]


def test_continuations_comments_and_expected_status() -> None:
    body = (
        "# a comment line\n"
        "curl -s -X POST \\\n  -d '{\"a\": 1}' http://x   # trailing comment\n"
        '.venv/bin/playgate explain "$URL"   # REJECTED, exits 1\n'
        "echo '# not a comment'\n"
    )
    assert _commands(body) == [
        ("run", "curl -s -X POST \\\n  -d '{\"a\": 1}' http://x", 0),
        ("run", '.venv/bin/playgate explain "$URL"', 1),
        ("run", "echo '# not a comment'", 0),
    ]


def test_servers_suite_and_cloud_commands() -> None:
    assert classify("x", "./scripts/demo --edge nginx").ready_output == "Press Ctrl-C"
    assert classify("x", ".venv/bin/playgate serve-signer --port 8090").ready_port == 8090
    assert classify("x", ".venv/bin/moto_server -H 127.0.0.1 -p 5000 &").ready_port == 5000
    nginx = classify("x", "nginx -p edge -c edge.conf", "--listen 127.0.0.1:8088 \\")
    assert (nginx.kind, nginx.ready_port) == ("server", 8088)
    assert classify("x", "./scripts/test   # the suite").kind == "suite"
    assert classify("x", f"aws s3 cp a s3://b/c {CLOUD_MARK}").kind == "cloud"
    assert classify("x", f"valgrind python -m bench.x {BENCH_MARK}").kind == "bench"
    assert classify("x", f"useradd --system edge {SERVER_MARK}").kind == "server-admin"
    assert classify("x", "sleep 5 &").code == "sleep 5"


def test_prints_comment_names_the_expected_output() -> None:
    cmd = classify("x", 'curl -s "$URL"   # prints 403 revoked, after the revocation')
    assert (cmd.kind, cmd.code, cmd.expected_output) == ("run", 'curl -s "$URL"', "403 revoked")
    assert classify("x", "echo hi").expected_output is None
