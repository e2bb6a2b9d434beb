"""Every command the docs show runs here, as a reader would type it (see doc_commands)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.doc_commands import (
    COMMAND_LANGUAGES,
    HOW_TO,
    blocks,
    commands,
    page_name,
    session_script,
)

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _sandbox(tmp_path: Path) -> Path:
    """A fresh folder that looks like the checkout: its top-level entries, linked."""
    work = tmp_path / "work"
    work.mkdir()
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in sorted({p.split("/", 1)[0] for p in tracked} | {".venv"}):
        (work / name).symlink_to(ROOT / name)
    return work


def test_every_code_block_says_what_it_holds() -> None:
    unlabelled = [
        f"{page_name(b.path)}:{b.line}" for page in PAGES for b in blocks(page) if not b.language
    ]
    assert not unlabelled, f"fenced blocks without a language: {unlabelled}. {HOW_TO}"


def test_blocks_tested_elsewhere_name_a_test_that_runs_them() -> None:
    """``<!-- tested: NAME -->`` is a promise: a test under tests/e2e reads that block."""
    tests = "".join(p.read_text() for p in (ROOT / "tests" / "e2e").glob("test_*.py"))
    for page in PAGES:
        for block in blocks(page):
            if block.tested_by is not None:
                assert f'"{block.tested_by}"' in tests, (
                    f"{page_name(page)}:{block.line}: no test runs the block '{block.tested_by}'"
                )


@pytest.mark.timeout(900)
@pytest.mark.parametrize("page", PAGES, ids=page_name)
def test_doc_commands_run(page: Path, tmp_path: Path) -> None:
    shown = [c for b in blocks(page) if b.language in COMMAND_LANGUAGES for c in commands(b)]
    if not shown:
        return
    work = _sandbox(tmp_path)
    (tmp_path / "tmp").mkdir()
    logs = tmp_path / "logs"
    logs.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLAYGATE_", "REDIS_URL"))}
    env["TMPDIR"] = str(tmp_path / "tmp")
    done = subprocess.run(
        ["bash", "-c", session_script(shown, logs)],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=840,
    )
    assert done.returncode == 0, (
        f"{done.stderr[-3000:]}\n--- stdout ---\n{done.stdout[-2000:]}\n--- {HOW_TO}"
    )
