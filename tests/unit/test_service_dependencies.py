"""Each host installs pullprint with only its service's extra (the Ansible roles' pullprint_common_extras):
everything the service's code imports, through pullprint's own modules, must come with that extra.

(A converge found the analyst failing to boot on a host: "No module named 'requests'", present in the
development virtualenv through other packages, missing from the analyst's extra.)
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OWN = {"analyst", "collector", "cups_backend", "email_gateway", "lb", "localcluster", "nodeserver",
       "printer_sim", "pullprint"}
# What each role installs (ansible/roles/*/meta/main.yml) and the code that runs on that host.
SERVICES = {
    "": ["cups_backend.backend", "lb", "pullprint.ca_cli"],  # the workstation's backend; the lb host's CLI
    "analyst": ["analyst"],
    "collector": ["collector", "cups_backend"],  # the print server installs the collector's extra
    "printer-sim": ["printer_sim"],
    "mail": ["email_gateway"],
}


def _module_file(name: str) -> Path | None:
    path = ROOT.joinpath(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _imports(path: Path) -> set[str]:
    """Every module `path` imports (at module level or inside functions), as absolute names."""
    # The package a relative import starts from: a module's parent (for a/b/__init__.py, a.b itself).
    parts = path.relative_to(ROOT).with_suffix("").parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*parts[: len(parts) - node.level + 1], *([base] if base else [])])
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def _third_party_imports(entries: list[str]) -> set[str]:
    """The top-level names of non-pullprint, non-stdlib modules reached from `entries`."""
    todo = []
    for entry in entries:
        path = _module_file(entry)
        assert path is not None, entry
        todo += sorted(path.parent.rglob("*.py")) if path.name == "__init__.py" else [path]
    seen: set[Path] = set()
    outside: set[str] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imports(path):
            top = name.split(".")[0]
            if top in OWN:
                if (found := _module_file(name)) is not None:
                    todo.append(found)
            elif top and top not in sys.stdlib_module_names and top != "__future__":
                outside.add(top)
    return outside


def _requirement_name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _installed_closure(names: set[str]) -> set[str]:
    """`names` and every distribution they require (as installed here), recursively."""
    closure, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in closure:
            continue
        closure.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        todo += [_requirement_name(r) for r in requires if "extra ==" not in r]
    return closure


def _extra(project: dict, extra: str) -> set[str]:
    wanted = {_requirement_name(r) for r in project["dependencies"]}
    for requirement in project["optional-dependencies"].get(extra, []) if extra else []:
        name = _requirement_name(requirement)
        if name == "pullprint":  # pullprint[a,b]: those extras too
            for inner in re.findall(r"[\w-]+", requirement.split("[", 1)[1]):
                wanted |= _extra(project, inner)
        else:
            wanted.add(name)
    return wanted


def _missing(project: dict, extra: str) -> dict[str, list[str]]:
    """What `extra`'s service imports that installing pullprint[extra] would not bring."""
    installed = _installed_closure(_extra(project, extra))
    providers = importlib.metadata.packages_distributions()
    missing = {}
    for top in sorted(_third_party_imports(SERVICES[extra])):
        distributions = {d.lower().replace("_", "-") for d in providers.get(top, [top])}
        if not distributions & installed:
            missing[top] = sorted(distributions)
    return missing


def _project() -> dict:
    return dict(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"])


@pytest.mark.parametrize("extra", sorted(SERVICES))
def test_a_service_needs_only_what_its_extra_installs(extra: str) -> None:
    missing = _missing(_project(), extra)
    assert not missing, f"pullprint[{extra}] does not install what its code imports: {missing}"


def test_the_check_sees_a_missing_requirement() -> None:
    # The analyst calls collectors through nodeserver.client (requests): without requests declared,
    # the check must say so.
    project = _project()
    extras = project["optional-dependencies"]
    extras["analyst"] = [r for r in extras["analyst"] if _requirement_name(r) != "requests"]
    assert _missing(project, "analyst") == {"requests": ["requests"]}
