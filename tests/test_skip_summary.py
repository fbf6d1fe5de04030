"""A SQLite run says in its summary that the PostgreSQL-only race tests were
skipped, and why (they used to vanish among the other skips)."""

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

from tests.conftest import POSTGRESQL_ONLY_REASON


def test_a_sqlite_run_names_the_skipped_race_tests_in_its_summary(tmp_path):
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "BPMOS_", "PYTEST_"))
        and key not in {"DATABASE_URL", "REDIS_URL"}
    }
    env["BPMOS_DATA_DIR"] = str(tmp_path)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-n",
            "0",
            "tests/test_stages_concurrency.py",
        ],
        cwd=Path(settings.BASE_DIR),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if "PostgreSQL-only" in line)
    assert lines[header].strip("= ") == "PostgreSQL-only tests skipped"
    assert lines[header + 1 : header + 4] == [
        "2 concurrency tests in 1 file were skipped: this run is on SQLite, and "
        f"each {POSTGRESQL_ONLY_REASON}.",
        "  (tests/test_stages_concurrency.py)",
        "  Run them with DATABASE_URL=postgres://... REDIS_URL=redis://... make test "
        "(CI's .ci/run does).",
    ]
    assert lines[-1].strip("= ").startswith("2 skipped in ")
