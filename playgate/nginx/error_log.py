"""nginx's error log, kept free of tokens: ``playgate nginx-error-log`` and the runner's pipe.

nginx's error lines cannot be formatted. In a request's context they quote the request line
(``request: "GET /t/<token>/..."``), the upstream URL, the Host and the Referer, and some
messages quote the URI (``... while processing "/t/<token>/..."``), so any error that a request
can cause (a full disk under the cache, a missing cache folder, an unreachable validator) would
write the viewer's token. The edge template sends the error log to stderr only; this filter sits
between nginx's stderr and the file.

What survives is decided by structure, never by spotting token spellings: a line keeps its time,
level, process and connection ids, and the message up to the first double quote (nginx's fixed
text, the client address and the server name: everything request-borne is quoted). From the
first quote on, the line is replaced by ``"…"`` followed by the system error descriptions it
named (``(2: No such file or directory)``), kept only when they are exactly the text
``os.strerror`` gives for that number. As a second lock, any run of token characters long
enough to be a token is masked in what is kept.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from typing import IO, TextIO

from edge_validator.core.protocol import SHORTEST_TOKEN_CHARS, TOKEN_CHARS

_ERRNO = re.compile(r"\((\d{1,3}): ([^()]{1,80})\)")
_TOKEN_RUN = re.compile(f"[{TOKEN_CHARS}]{{{SHORTEST_TOKEN_CHARS},}}")
MASK = "…"


def _known_errors(tail: str) -> list[str]:
    kept = []
    for number, text in _ERRNO.findall(tail):
        if os.strerror(int(number)) == text:
            kept.append(f"({number}: {text})")
    return kept


def redact(line: str) -> str:
    """The line as it may be stored: nothing that came from a request but the client address."""
    line = line.rstrip("\r\n")
    head, quote, tail = line.partition('"')
    if quote:
        head = " ".join([head + f'"{MASK}"', *_known_errors(tail)])
    return _TOKEN_RUN.sub(MASK, head)


def pipe(source: IO[bytes], sink: TextIO) -> None:
    """Copy ``source`` to ``sink`` line by line, redacted, until ``source`` ends."""
    for raw in iter(source.readline, b""):
        sink.write(redact(raw.decode("utf-8", errors="replace")) + "\n")
        sink.flush()


def pipe_in_thread(source: IO[bytes], path: os.PathLike[str] | str) -> threading.Thread:
    """Redact ``source`` (nginx's stderr) into the file at ``path`` from a daemon thread."""

    def run() -> None:
        with open(path, "a", encoding="utf-8") as sink:
            pipe(source, sink)
        source.close()

    thread = threading.Thread(target=run, name="nginx-error-log", daemon=True)
    thread.start()
    return thread


def main() -> int:
    """``playgate nginx-error-log``: stdin to stdout, redacted."""
    pipe(sys.stdin.buffer, sys.stdout)
    return 0
