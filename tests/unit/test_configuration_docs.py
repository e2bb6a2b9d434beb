"""docs/configuration.md cannot drift: its one table names exactly the variables the code reads.

A variable is any string constant in edge_validator/, signer/ or playgate/ that is a whole
environment variable name (``PLAYGATE_*``, ``REDIS_URL``, ``AWS_*``): every read goes through
``Env`` (or ``os.environ.get`` in the CLI) with the name written out (``Env.json_or_file("X")``
reads ``X`` and ``X_FILE``). When a read passes a
default right after the name, the table's default column must show it.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "configuration.md"
PACKAGES = ("edge_validator", "signer", "playgate")
NAME = re.compile(r"(PLAYGATE_[A-Z0-9_]*[A-Z0-9]|REDIS_URL|AWS_[A-Z0-9_]*[A-Z0-9])")
ROW = re.compile(r"^\| `([A-Z0-9_]+)` \| ([^|]*) \| ([^|]*) \|")


def documented() -> dict[str, str]:
    """Variable -> its default cell, from the table's rows."""
    rows = [ROW.match(line) for line in DOC.read_text(encoding="utf-8").splitlines()]
    return {m.group(1): m.group(3).strip() for m in rows if m}


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _literal(node: ast.expr, path: Path) -> object:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):  # a named constant: read it from the module
        return getattr(importlib.import_module(_module(path)), node.id, None)
    return None  # computed (``ttl // 2``, ``cls.public_url``): the prose says it


def read_by_code() -> dict[str, list[tuple[str, object]]]:
    """Variable -> [(where, literal default or None)] for every read in the packages."""
    reads: dict[str, list[tuple[str, object]]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call):
                    continue
                for i, arg in enumerate(node.args):
                    if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                        continue
                    if NAME.fullmatch(arg.value):
                        after = node.args[i + 1] if i + 1 < len(node.args) else None
                        default = _literal(after, path) if after is not None else None
                        where = f"{path.relative_to(ROOT)}:{node.lineno}"
                        reads.setdefault(arg.value, []).append((where, default))
                        if _reads_file_too(node):
                            reads.setdefault(f"{arg.value}_FILE", []).append((where, None))
    return reads


def _reads_file_too(call: ast.Call) -> bool:
    """``env.json_or_file("X")`` reads ``X`` and ``X_FILE``."""
    return isinstance(call.func, ast.Attribute) and call.func.attr == "json_or_file"


def _shown(default: object) -> str:
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(default)


def test_the_table_names_every_variable_the_code_reads_and_nothing_else() -> None:
    table, code = documented(), read_by_code()
    missing = {name: code[name][0][0] for name in sorted(set(code) - set(table))}
    assert not missing, f"add a row to docs/configuration.md for each (read at): {missing}"
    extra = sorted(set(table) - set(code))
    assert not extra, f"docs/configuration.md lists variables no code reads: {extra}"


def test_the_table_shows_the_code_defaults() -> None:
    table = documented()
    wrong = [
        (name, where, _shown(default), table[name])
        for name, reads in sorted(read_by_code().items())
        for where, default in reads
        if default not in (None, "") and _shown(default) not in table.get(name, "")
    ]
    assert not wrong, f"default in code vs docs/configuration.md: {wrong}"
