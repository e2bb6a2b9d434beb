"""The folders are the architecture: what each package may import, checked, not hoped for."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from playgate.lambda_bundle import LAMBDA_FORMAT_MODULES
from tests.support.factories import ROOT

CORE = ROOT / "edge_validator" / "core"


def imports_of(path: Path) -> set[str]:
    """Absolute module names a file imports (relative imports resolved against its package)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                found.add(".".join([*base, *(node.module.split(".") if node.module else [])]))
            else:
                found.add(node.module or "")
    return found


def test_the_core_imports_only_the_standard_library_and_itself() -> None:
    """The core and what the Lambda@Edge bundle ships with it (the shared-secret formats)."""
    formats = [ROOT / "edge_validator" / "formats" / f"{n}.py" for n in LAMBDA_FORMAT_MODULES]
    bundled = {f"edge_validator.formats.{n}" for n in LAMBDA_FORMAT_MODULES}
    for path in [*CORE.glob("*.py"), ROOT / "edge_validator" / "lambda_edge.py", *formats]:
        for name in imports_of(path):
            top = name.partition(".")[0]
            allowed = name.startswith("edge_validator.core") or top in sys.stdlib_module_names
            allowed = allowed or name in bundled or name == "edge_validator.formats"
            assert allowed or top == "__future__", f"{path.name} imports {name}"


def test_importing_the_core_loads_nothing_outside_the_standard_library() -> None:
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
        "import edge_validator, edge_validator.lambda_edge\n"
        "import edge_validator.core.cors, edge_validator.core.protocol\n"
        "print(sorted(m for m in sys.modules if m.partition('.')[0] not in "
        "sys.stdlib_module_names | {'edge_validator', '__main__'}))"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("edge_validator", ("signer", "playgate")), ("signer", ("playgate",))],
)
def test_dependencies_point_one_way(package: str, forbidden: tuple[str, ...]) -> None:
    """signer imports edge_validator, playgate imports both; never the reverse."""
    for path in (ROOT / package).rglob("*.py"):
        for name in imports_of(path):
            assert name.partition(".")[0] not in forbidden, f"{path} imports {name}"


def test_only_the_redis_backend_imports_redis() -> None:
    for path in (ROOT / "edge_validator").rglob("*.py"):
        if path.name in ("redis_store.py", "rate_batch.py"):  # the backend, and its batching
            continue
        assert not any(n.partition(".")[0] == "redis" for n in imports_of(path)), path


def test_bench_never_imports_the_tests() -> None:
    for path in (ROOT / "bench").rglob("*.py"):
        assert not any(n.partition(".")[0] == "tests" for n in imports_of(path)), path
