"""Setup on a fresh cloud VM: unattended-upgrades holds the dpkg lock while ./scripts/* run.

The tests hold apt's real lock files (fcntl locks, as apt and dpkg take them) and run the
scripts' ``apt_get`` against the real apt-get; ``apt-get check`` needs no network.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def held(lock: str, release_after: float | None = None) -> Iterator[None]:
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o640)
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    released = threading.Event()

    def release() -> None:
        if not released.is_set():
            released.set()
            os.close(fd)

    timer = threading.Timer(release_after, release) if release_after else None
    if timer:
        timer.start()
    try:
        yield
    finally:
        if timer:
            timer.cancel()
        release()


def apt_get(*args: str, timeout: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", 'source scripts/_common.sh && apt_get "$@"', "apt_get", *args],
        cwd=ROOT,
        env={**os.environ, "PLAYGATE_APT_LOCK_TIMEOUT": str(timeout)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_apt_get_waits_for_the_lock_and_says_so() -> None:
    with held("/var/lib/dpkg/lock-frontend", release_after=3):
        result = apt_get("check", "-qq", timeout=60)
    assert result.returncode == 0, result.stderr
    assert "holds the package lock; waiting up to 60 s" in result.stderr


def test_apt_get_gives_up_after_the_timeout_with_a_message() -> None:
    # `apt-get update` does not wait for its lock by itself: the script polls it.
    with held("/var/lib/apt/lists/lock"):
        result = apt_get("update", "-qq", timeout=4)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("apt-get update: another package manager still holds the dpkg")
    assert "PLAYGATE_APT_LOCK_TIMEOUT" in lines[-1]
    assert not [ln for ln in lines if ln.startswith("E: ")]  # no raw apt error
