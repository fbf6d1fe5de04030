"""The apps' import graph keeps its shape (docs/architecture.md).

The contracts are import-linter's, in pyproject.toml; ``make lint`` and CI run
them too, and this test makes ``make test`` fail on a new cycle as well.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bpmos import audit as audit_port
from elog import audit
from elog.models import AuditRecord
from elog.services import audit_chain_verify

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = [
    sys.executable,
    "-c",
    "from importlinter.cli import lint_imports_command; lint_imports_command()",
    "--no-cache",
]
CONTRACTS = (
    "Apps are layered: each imports only the layers below it (no cycles) KEPT",
    "bpmos imports the apps only from bpmos.dashboards and the project wiring KEPT",
    "The audit log (elog) knows no domain app KEPT",
    "Inventory never reaches into passports KEPT",
    "Lines do not know where readings come from (scada) KEPT",
    "Exceptions do not know alarms' source (scada) KEPT",
)


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        LINT_IMPORTS, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_import_contracts_are_kept():
    result = _lint_imports(ROOT)

    assert result.returncode == 0, result.stdout + result.stderr
    for line in CONTRACTS:
        assert line in result.stdout
    assert "Contracts: 6 kept, 0 broken." in result.stdout


def _scratch_copy(tmp_path: Path) -> Path:
    apps = ["bpmos", "elog", "runbooks", "lines", "inventory", "exceptions"]
    apps += ["passports", "scada", "compliance", "plant_generator"]
    copy = tmp_path / "tree"
    copy.mkdir()
    shutil.copy(ROOT / "pyproject.toml", copy)
    for app in apps:
        shutil.copytree(
            ROOT / app, copy / app, ignore=shutil.ignore_patterns("__pycache__")
        )
    return copy


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # runbooks -> exceptions closes a cycle (exceptions reads runbooks).
        (
            "runbooks/selectors.py",
            "from exceptions import models",
            "runbooks is not allowed to import exceptions",
        ),
        # The core importing a domain app outside bpmos/dashboards.
        (
            "bpmos/adminkit.py",
            "from elog import audit",
            "bpmos is not allowed to import elog",
        ),
        ("elog/services.py", "import runbooks.models", "elog is not allowed"),
        ("inventory/services.py", "import passports.models", "inventory is not"),
        ("lines/services.py", "import scada", "lines is not allowed to import scada"),
        ("exceptions/services.py", "import scada", "exceptions is not allowed"),
    ],
)
def test_a_forbidden_import_breaks_the_contracts(tmp_path, module, line, broken):
    tree = _scratch_copy(tmp_path)
    path = tree / module
    path.write_text(path.read_text() + f"\n{line}  # noqa\n")

    result = _lint_imports(tree)

    assert result.returncode == 1
    assert broken in result.stdout


@pytest.mark.django_db
def test_bpmos_audit_port_writes_through_elog(make_user):
    """One audit writer: the core's port forwards to ``elog.audit.record``."""
    assert audit_port._writer is audit.record
    admin = make_user("admin")

    entry = audit_port.record(
        actor=admin, action="user.role_changed", target=admin, after={"x": 1}
    )

    assert isinstance(entry, AuditRecord)
    assert list(AuditRecord.objects.values_list("action", "actor_id", "after")) == [
        ("user.role_changed", admin.pk, {"x": 1})
    ]
    assert audit_chain_verify().ok is True
