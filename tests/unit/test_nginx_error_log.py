"""The nginx error-log filter keeps no request-borne text, by structure."""

from __future__ import annotations

import base64
import io

from edge_validator.core.protocol import LOGGED_SEGMENT_CHARS, SHORTEST_TOKEN_CHARS
from edge_validator.core.token import MAC_BYTES
from playgate.nginx.error_log import pipe, redact
from tests.support import factories

TOKEN = factories.token()
CRIT = (
    '2026/01/01 10:00:00 [crit] 7#7: *3 open() "/p/cache/media/1/ab/0000001" failed '
    "(2: No such file or directory) while reading upstream, client: 127.0.0.1, server: _, "
    f'request: "GET /t/{TOKEN}/videos/demo/seg.ts HTTP/1.1", upstream: "http://o/videos/demo/'
    f'seg.ts", host: "edge"\n'
)


def test_shortest_token_and_logged_segment_bounds_follow_the_token_format() -> None:
    shortest = base64.urlsafe_b64encode(bytes(2 + MAC_BYTES)).rstrip(b"=")
    assert len(shortest) == SHORTEST_TOKEN_CHARS
    assert LOGGED_SEGMENT_CHARS < SHORTEST_TOKEN_CHARS


def test_a_cache_error_keeps_its_cause_and_loses_the_request() -> None:
    assert redact(CRIT) == (
        '2026/01/01 10:00:00 [crit] 7#7: *3 open() "…" (2: No such file or directory)'
    )


def test_request_text_never_survives_whatever_it_holds() -> None:
    lines = [
        # A quote inside the request line cannot end the masking early.
        f'... [error] 7#7: *1 upstream timed out, client: 1.2.3.4, request: "GET /a"{TOKEN} x"',
        # An unterminated quote (nginx cuts lines at 2 KB) masks to the end.
        f'... [error] 7#7: *1 rewrite cycle while processing "/t/{TOKEN}',
        # Text that looks like an errno but is not the system's words is dropped.
        f'... [crit] 7#7: *1 open() "x" (2: {TOKEN})',
        # An unquoted token-length run is masked anyway.
        f"... [alert] 7#7: *1 odd {TOKEN} text",
    ]
    for line in lines:
        kept = redact(line)
        assert TOKEN not in kept
        assert TOKEN[:SHORTEST_TOKEN_CHARS] not in kept


def test_pipe_redacts_line_by_line() -> None:
    out = io.StringIO()
    pipe(io.BytesIO(CRIT.encode() + b"2026/01/01 10:00:01 [notice] 7#7: signal 15\n"), out)
    assert out.getvalue().splitlines()[1] == "2026/01/01 10:00:01 [notice] 7#7: signal 15"
    assert TOKEN not in out.getvalue()
