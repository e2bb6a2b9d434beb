"""The docs point at things that exist: links, anchors, file paths, and README's package map."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *ROOT.glob("*/*.md")]
LINK = re.compile(r"\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`\s]+)`")
TOP = ("edge_validator/", "signer/", "playgate/", "infra/", "tests/", "bench/", "scripts/", "docs/")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
    return {_slug(h) for h in re.findall(r"^#+ (.+)$", text, re.M)}


def _prose(page: Path) -> str:
    """The page without its fenced blocks (commands there are run by test_docs_commands)."""
    return re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)


def test_links_and_anchors_resolve() -> None:
    broken = []
    for page in PAGES:
        for target in LINK.findall(_prose(page)):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, broken


def test_file_paths_in_prose_exist() -> None:
    missing = []
    for page in PAGES:
        for text in CODE.findall(_prose(page)):
            path = text.split(":")[0]
            named = path.startswith(TOP) and not re.search(r"[<>{}*$]", path)
            if named and not (ROOT / path).exists():
                missing.append(f"{page.relative_to(ROOT)}: `{text}`")
    assert not missing, f"paths named in the docs that do not exist: {missing}"


def _package_map() -> dict[str, str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Architecture", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([^`]+/)` \| (.+) \|$", section, re.M)
    return {folder: cell for folder, cell in rows}


def test_readme_package_map_matches_the_folders() -> None:
    rows = _package_map()
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    top = {p.split("/", 1)[0] + "/" for p in tracked if "/" in p and not p.startswith(".")}
    packages = {
        str(p.parent.relative_to(ROOT)) + "/"
        for name in ("edge_validator", "signer", "playgate")
        for p in (ROOT / name).rglob("__init__.py")
        if "samples" not in p.parts
    }
    for folder in sorted(top - {"docs/"}):
        assert folder in rows, f"README's package map has no row for {folder}"
    for package in sorted(packages):
        parent, _, short = package.rstrip("/").rpartition("/")
        assert package in rows or f"`{short}/`" in rows.get(parent + "/", ""), (
            f"README's package map does not mention {package}"
        )
    for folder, cell in rows.items():
        assert (ROOT / folder).is_dir(), f"README's package map names a missing folder {folder}"
        for name in re.findall(r"`([\w.-]+\.py)`", cell):
            assert (ROOT / folder / name).is_file(), f"README's package map: {folder}{name}"
