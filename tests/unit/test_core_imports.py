"""The core imports nothing above it: `pullprint/` may use the standard library, `cryptography` and itself."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "pullprint"
ALLOWED_THIRD_PARTY = {"cryptography"}


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module an import statement in `path` names, at any depth (function-level ones too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_core_module_imports_only_the_standard_library_cryptography_and_the_core(path: Path) -> None:
    wrong = [f"{path.name}:{line} imports {name}" for line, name in _imports(path)
             if (top := name.split(".")[0]) != "pullprint" and top not in ALLOWED_THIRD_PARTY
             and top not in sys.stdlib_module_names and top != "__future__"]
    assert wrong == []


def test_the_rule_catches_a_hidden_function_level_import(tmp_path: Path) -> None:
    module = tmp_path / "sneaky.py"
    module.write_text("def f():\n    from collector.node import Node\n    import lb.haproxy\n")
    assert [name for _, name in _imports(module)] == ["collector.node", "lb.haproxy"]
