"""Stopping the child processes PlayGate starts (nginx in the demo; servers in tests and bench)."""

from __future__ import annotations

import subprocess


def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    """Ask politely (SIGTERM), then insist (SIGKILL) after ``timeout``; always reap it."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
