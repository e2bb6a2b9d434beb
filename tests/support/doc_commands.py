"""Commands shown in the docs, read from their fenced blocks, and turned into a bash session.

The rule (COMMON standards): every command in a ```bash or ```sh block of README.md or
docs/*.md runs in a test (tests/e2e/test_docs_commands.py), or is marked as needing a real
cloud account. A page is one session: its blocks run in order in one shell, as a reader types
them, so variables and files carry over; servers it starts keep running until the page ends.

How a command is treated:
- ends with ``# needs a real AWS account``: not run (checked to be marked, nothing else);
- ends with ``# benchmark, run by hand``: not run (benchmarks are never part of the suite);
- ends with ``# on a real server, as root``: not run here (it installs packages, creates users
  or starts system services); the production path's tested blocks stand in for it;
- in a block preceded by ``<!-- tested: NAME -->``: run by the test that names that block
  (tests/e2e/test_production_path.py, test_docs_nginx.py), with folders and ports replaced;
- ``./scripts/test``: not run (it is the suite that runs this test);
- a server (``./scripts/demo``, ``playgate demo``, ``serve-signer``/``serve-validator --port N``,
  ``moto_server -p N``, ``nginx -p ...``, or any command ending with ``&``): started in the
  background, awaited (``Press Ctrl-C`` for the demo, else its port), stopped when the page ends;
- anything else: must exit 0, or the status its comment names (``# ... exits 1``), and when
  its comment says ``# prints TEXT`` (up to a comma or the end), its output must contain TEXT.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

COMMAND_LANGUAGES = ("bash", "sh", "shell")
CLOUD_MARK = "# needs a real AWS account"
# Benchmarks are run by hand, never by the suite (timings on a shared machine mean nothing).
BENCH_MARK = "# benchmark, run by hand"
SERVER_MARK = "# on a real server, as root"
_TESTED = re.compile(r"<!-- tested: ([a-z-]+) -->\s*$")
HOW_TO = (
    "Every command in a ```bash/```sh block of README.md and docs/*.md runs in "
    "tests/e2e/test_docs_commands.py (a fresh folder with the checkout's scripts and .venv, "
    "a private TMPDIR, real servers on loopback). Make it run as written there, or end the "
    f"command's line with `{CLOUD_MARK}` if it needs a real cloud account (or "
    f"`{BENCH_MARK}` for a benchmark, `{SERVER_MARK}` for system administration; a block "
    "preceded by `<!-- tested: NAME -->` is run by the test that names it). Servers are "
    "recognized (see tests/support/doc_commands.py); a command that must fail names its "
    "status in its comment (`# ... exits 1`). Output and diagrams go in ```text blocks."
)

_FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
_EXITS = re.compile(r"#.*\bexits (\d+)\b")
_PRINTS = re.compile(r"#.*\bprints ([^,]+)")
_PORT = re.compile(r"(?:--port|-p)\s+(\d+)\b")
_LISTEN = re.compile(r"--listen\s+[\w.]+:(\d+)")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    language: str
    body: str
    tested_by: str | None = None  # ``<!-- tested: NAME -->`` just above: another test runs it


@dataclass(frozen=True)
class Command:
    where: str  # "docs/api.md:42"
    text: str  # the command as shown, continuation lines joined with their backslashes
    kind: str  # "run", "server", "cloud", "suite", "bench", "server-admin", "elsewhere"
    expected_status: int = 0
    expected_output: str | None = None  # ``# prints TEXT``: the output contains TEXT
    ready_output: str | None = None  # a server is ready when its output shows this...
    ready_port: int | None = None  # ...or when this port accepts connections

    @property
    def code(self) -> str:
        """The command without a trailing comment or ``&``."""
        code = _strip_comment(self.text)
        return code[:-1].rstrip() if code.endswith("&") else code


def blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    found = []
    for m in _FENCE.finditer(text):
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        tested = _TESTED.match(before)
        line = text[: m.start()].count("\n") + 1
        found.append(Block(path, line, m.group(1), m.group(2), tested.group(1) if tested else None))
    return found


def page_name(path: Path) -> str:
    return f"docs/{path.name}" if path.parent.name == "docs" else path.name


def _strip_comment(text: str) -> str:
    """Drop a trailing ``# comment`` that is outside quotes (shlex knows where they are)."""
    out = text
    quote: str | None = None
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1] in " \t"):
            out = text[:i]
            break
    return out.rstrip()


def commands(block: Block) -> list[Command]:
    found: list[Command] = []
    lines = block.body.splitlines()
    i = 0
    while i < len(lines):
        start = i
        text = lines[i]
        while _strip_comment(text).endswith("\\") and i + 1 < len(lines):
            i += 1
            text += "\n" + lines[i]
        i += 1
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        where = f"{page_name(block.path)}:{block.line + 1 + start}"
        if block.tested_by is not None:
            found.append(Command(where, text, "elsewhere"))
            continue
        found.append(classify(where, text, block.body))
    return found


def classify(where: str, text: str, context: str = "") -> Command:
    code = _strip_comment(text)
    if CLOUD_MARK in text:
        return Command(where, text, "cloud")
    if BENCH_MARK in text:
        return Command(where, text, "bench")
    if SERVER_MARK in text:
        return Command(where, text, "server-admin")
    if re.match(r"\./scripts/test(\s|$)", code):
        return Command(where, text, "suite")
    if re.search(r"(^|\s)(\./scripts/demo|(\S*/)?playgate demo)(\s|$)", code):
        return Command(where, text, "server", ready_output="Press Ctrl-C")
    port = _PORT.search(code)
    if re.search(r"\bserve-(signer|validator)\b|\bmoto_server\b", code) and port:
        return Command(where, text, "server", ready_port=int(port.group(1)))
    if re.match(r"(\S*/)?nginx\s", code):
        listen = _LISTEN.search(context)
        return Command(where, text, "server", ready_port=int(listen.group(1)) if listen else None)
    if code.endswith("&"):
        return Command(where, text, "server", ready_port=int(port.group(1)) if port else None)
    comment = text[len(code) :]
    exits = _EXITS.search(comment)
    prints = _PRINTS.search(comment)
    return Command(
        where,
        text,
        "run",
        expected_status=int(exits.group(1)) if exits else 0,
        expected_output=prints.group(1).strip() if prints else None,
    )


def session_script(page: list[Command], logs: Path) -> str:
    """One bash script that runs a page's commands in order and stops its servers at the end."""
    out = [
        "set -u",
        "__servers=()",
        '__stop() { for p in "${__servers[@]}"; do kill -INT -- "-$p" 2>/dev/null; done;'
        ' for p in "${__servers[@]}"; do for _ in $(seq 100); do kill -0 "$p" 2>/dev/null'
        ' || break; sleep 0.1; done; kill -KILL -- "-$p" 2>/dev/null; done; return 0; }',
        "trap __stop EXIT",
        '__fail() { printf \'DOC COMMAND FAILED at %s: %s\\n\' "$1" "$2" >&2; exit 97; }',
        '__wait_output() { for _ in $(seq 1800); do grep -q -- "$2" "$1" && return 0;'
        ' kill -0 "$3" 2>/dev/null || return 1; sleep 0.1; done; return 1; }',
        # A port shown in the docs may be busy with another run of these tests: wait a while.
        '__port_free() { for _ in $(seq 1200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null'
        " || return 0; sleep 0.1; done; return 1; }",
        '__wait_port() { for _ in $(seq 600); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null'
        ' && return 0; kill -0 "$2" 2>/dev/null || return 1; sleep 0.1; done; return 1; }',
    ]
    for n, cmd in enumerate(page):
        where = shlex.quote(cmd.where)
        if cmd.kind in ("cloud", "suite", "bench", "server-admin", "elsewhere"):
            out.append(f": skipped {cmd.kind} {where}")
            continue
        if cmd.kind == "server":
            log = logs / f"server-{n}.log"
            if cmd.ready_port:
                busy = shlex.quote(f"port {cmd.ready_port} is taken by another program")
                out.append(f"__port_free {cmd.ready_port} || __fail {where} {busy}")
            out.append(f"setsid bash -c {shlex.quote(cmd.code)} >{log} 2>&1 &")
            out.append('__servers+=("$!")')
            if cmd.ready_output:
                wait = f"__wait_output {log} {shlex.quote(cmd.ready_output)} $!"
            elif cmd.ready_port:
                wait = f"__wait_port {cmd.ready_port} $!"
            else:
                wait = "sleep 2"
            out.append(f"{wait} || {{ cat {log} >&2; __fail {where} 'the server did not start'; }}")
            continue
        if cmd.expected_output is None:
            out.append(cmd.code)
        else:
            # In this shell (not a subshell: `source` and assignments must stick), output kept.
            out.append(f"{cmd.code} >{logs}/out 2>&1")
        out.append(
            f'__s=$?; [ "$__s" -eq {cmd.expected_status} ] || '
            f'__fail {where} "exit status $__s, expected {cmd.expected_status}"'
        )
        if cmd.expected_output is not None:
            wanted = shlex.quote(cmd.expected_output)
            out.append(f"cat {logs}/out")
            out.append(
                f"grep -qF -- {wanted} {logs}/out || "
                f"__fail {where} {shlex.quote('its output lacks ' + repr(cmd.expected_output))}"
            )
    return "\n".join(out) + "\n"
