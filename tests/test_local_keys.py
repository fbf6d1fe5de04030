"""The embedded mode signs with a key of its own, never with one written in the code.

Each case loads the settings in a fresh process with a controlled environment
(no DJANGO_*/BPMOS_* variables from the test run, a temporary data dir) and
prints the three keys: Django's, the JWT signing key and the audit chain's.
"""

import ast
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from bpmos.localkeys import local_secret_key
from tests.support import map_in_threads

_SCRIPT = """
import json, django
django.setup()
import pytest
from django.conf import settings
print(json.dumps({
    "secret": settings.SECRET_KEY,
    "jwt": settings.SIMPLE_JWT["SIGNING_KEY"],
    "audit": settings.BPMOS_AUDIT_KEY,
}))
"""


def _keys(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "BPMOS_", "PYTEST_"))
        and key not in {"DATABASE_URL", "REDIS_URL"}
    }
    env |= {
        "DJANGO_SETTINGS_MODULE": "bpmos.settings",
        "BPMOS_DATA_DIR": str(data_dir),
        **extra,
    }
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        cwd=Path(settings.BASE_DIR),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_two_fresh_data_dirs_get_different_random_keys(tmp_path):
    first = _keys(tmp_path / "one")
    second = _keys(tmp_path / "two")
    assert first["secret"] != second["secret"]
    assert len(first["secret"]) >= 80
    # The JWT and audit keys follow the secret key unless set on their own.
    assert first["jwt"] == first["audit"] == first["secret"]
    assert second["jwt"] == second["audit"] == second["secret"]


def test_the_same_data_dir_keeps_its_key_owner_readable_only(tmp_path):
    first = _keys(tmp_path)
    again = _keys(tmp_path)
    assert again == first
    key_file = tmp_path / "secret_key"
    assert key_file.read_text().strip() == first["secret"]
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_set_keys_win_and_empty_ones_count_as_unset(tmp_path):
    given = _keys(
        tmp_path,
        DJANGO_SECRET_KEY="s" * 60,
        BPMOS_JWT_SIGNING_KEY="j" * 60,
        BPMOS_AUDIT_KEY="a" * 60,
    )
    assert given == {"secret": "s" * 60, "jwt": "j" * 60, "audit": "a" * 60}
    assert not (tmp_path / "secret_key").exists()
    # .env.example lists the keys empty: a copy of it must not sign with "".
    empty = _keys(
        tmp_path, DJANGO_SECRET_KEY="", BPMOS_JWT_SIGNING_KEY="", BPMOS_AUDIT_KEY=""
    )
    stored = (tmp_path / "secret_key").read_text().strip()
    assert empty == {"secret": stored, "jwt": stored, "audit": stored}


def test_a_race_of_first_starts_ends_with_one_key(tmp_path):
    # make run starts daphne, the worker and beat at once on a fresh data dir.
    keys = {local_secret_key(tmp_path) for _ in range(3)}
    assert len(keys) == 1
    (tmp_path / "secret_key").unlink()
    keys = set(map_in_threads(lambda _: local_secret_key(tmp_path), list(range(16))))
    assert len(keys) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret_key"]


def test_the_test_run_uses_a_generated_key():
    if os.environ.get("DJANGO_SECRET_KEY"):
        pytest.skip("DJANGO_SECRET_KEY is set for this run")
    stored = (settings.DATA_DIR / "secret_key").read_text().strip()
    assert stored == settings.SECRET_KEY


_KEY_NAMES = ("SECRET_KEY", "SIGNING_KEY", "AUDIT_KEY")


def _literal_keys(path: Path) -> list[str]:
    """Non-empty string constants given to a key: assigned to a name ending in
    one of _KEY_NAMES, or passed as the default of env.str("..._KEY")."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            if (
                any(n.endswith(_KEY_NAMES) for n in names)
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
                and node.value.value
            ):
                found.append(f"{path}:{node.lineno}")
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if (
                    isinstance(key, ast.Constant)
                    and str(key.value).endswith(_KEY_NAMES)
                    and isinstance(value, ast.Constant)
                    and isinstance(value.value, str)
                    and value.value
                ):
                    found.append(f"{path}:{node.lineno}")
        if (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and str(node.args[0].value).endswith(_KEY_NAMES)
        ):
            defaults = [kw.value for kw in node.keywords if kw.arg == "default"]
            defaults += node.args[1:2]
            for value in defaults:
                if (
                    isinstance(value, ast.Constant)
                    and isinstance(value.value, str)
                    and value.value
                ):
                    found.append(f"{path}:{node.lineno}")
    return sorted(found)


def test_no_key_is_written_in_the_code():
    base = Path(settings.BASE_DIR)
    sources = [
        p
        for p in base.rglob("*.py")
        if not {".venv", "var", "tests"} & set(p.relative_to(base).parts)
    ]
    assert base / "bpmos" / "settings.py" in sources
    assert [hit for path in sources for hit in _literal_keys(path)] == []


def test_the_literal_finder_finds_a_literal(tmp_path):
    # The check above has teeth: the old embedded default is reported.
    sample = tmp_path / "sample.py"
    sample.write_text(
        'SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="embedded-insecure")\n'
        'OTHER_SECRET_KEY = "abc"\n'
        'SIMPLE_JWT = {"SIGNING_KEY": "xyz"}\n'
    )
    assert _literal_keys(sample) == [
        f"{sample}:1",
        f"{sample}:2",
        f"{sample}:3",
    ]


def test_production_makes_no_key_of_its_own(tmp_path):
    secret = "p" * 64
    keys = _keys(
        tmp_path,
        BPMOS_ENV="production",
        DJANGO_SECRET_KEY=secret,
        DJANGO_ALLOWED_HOSTS="mes.plant.example",
        DATABASE_URL="postgres://bpmos:secret@db.plant.internal:5432/bpmos",
        REDIS_URL="redis://redis.plant.internal:6379/0",
    )
    assert keys == {"secret": secret, "jwt": secret, "audit": secret}
    assert not (tmp_path / "secret_key").exists()
