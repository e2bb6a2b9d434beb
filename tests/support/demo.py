"""``playgate demo`` run as a user runs it: start it, read what it prints, stop it with Ctrl-C."""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

from tests.support.servers import free_port

REQUIRED = {"Signer", "API key", "Playback URL", "DASH URL", "New URL", "Key ring"}


@contextlib.contextmanager
def running_demo(
    command: Sequence[str],
    *extra: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    stop: signal.Signals = signal.SIGINT,
) -> Iterator[dict[str, str]]:
    """Yield the demo's printed ``Name: value`` lines; it must stop cleanly on ``stop`` (Ctrl-C's
    SIGINT, or SIGHUP: its terminal closed)."""
    ports = ["--signer-port", str(free_port()), "--edge-port", str(free_port())]
    proc = subprocess.Popen(
        [*command, "demo", *ports, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=cwd,
        env=env,
    )
    lines: dict[str, str] = {}
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            name, _, value = line.rstrip("\n").partition(": ")
            lines[name] = value
            if line.startswith("Press Ctrl-C"):
                break
        assert set(lines) >= REQUIRED, lines
        yield lines
    finally:
        proc.send_signal(stop)
        code = proc.wait(15)
        if proc.stdout is not None:
            proc.stdout.close()
    assert code == 0
    # Its temporary key ring folder goes with it.
    ring = lines["Key ring"].removesuffix(" (removed when the demo stops)")
    assert not Path(ring).parent.exists(), ring
