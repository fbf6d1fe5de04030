"""What the running system imports is installed by ``requirements.txt``.

``make run`` installs ``requirements.txt`` only; the tests run with
``requirements-dev.txt`` on top of it, so a package the code imports but only the
dev file brings (an HTTP client the tests also use) passes every test and breaks
the first command of the README. This walks the imports of every module outside
``tests/`` and ``bench/`` and checks each third-party one is provided by a
distribution that ``requirements.txt`` installs, directly or as a dependency.
"""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
SKIP_DIRS = {"tests", "bench", ".venv", "var", "node_modules", ".git"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _top_level_requirements(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(_norm(Requirement(line).name))
    return names


def _closure(names: set[str]) -> set[str]:
    """The distributions ``names`` install: them and their dependencies (extras
    and environment markers that do not apply here left out)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for spec in requires:
            req = Requirement(spec)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            todo.append(_norm(req.name))
    return seen


def _imported_top_levels() -> dict[str, str]:
    """Top-level module name -> one file importing it, over the project's code."""
    found: dict[str, str] = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).parts
        if parts[0] in SKIP_DIRS or "migrations" in parts:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def test_every_third_party_import_is_installed_by_requirements_txt():
    local = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()}
    providers = metadata.packages_distributions()
    installed = _closure(_top_level_requirements(ROOT / "requirements.txt"))
    missing = {}
    for module, where in _imported_top_levels().items():
        if module in local or module in sys.stdlib_module_names:
            continue
        dists = {_norm(d) for d in providers.get(module, [])}
        if not dists & installed:
            missing[module] = (where, sorted(dists) or "not installed at all")
    assert missing == {}


def test_the_check_sees_a_dev_only_package():
    # pytest is installed (by requirements-dev.txt) but not by requirements.txt.
    installed = _closure(_top_level_requirements(ROOT / "requirements.txt"))
    assert "pytest" not in installed
    assert {"django", "asgiref", "httpx", "asyncua"} <= installed
