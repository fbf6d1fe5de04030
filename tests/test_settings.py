"""Production settings: pass `check --deploy`, refuse to start when incomplete.

Each case runs manage.py in a fresh process with a controlled environment (the
test run's own DJANGO_*/BPMOS_*/DATABASE_URL/REDIS_URL are removed first). No
server is contacted: `check` does not connect to the database or Redis. A local
.env file would fill in missing variables, so these cases assume there is none.
"""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

NO_ISSUES = "System check identified no issues (0 silenced)."


def _production_env(tmp_path, **changes: str | None) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "BPMOS_", "CELERY_", "PYTEST_"))
        and key not in {"DATABASE_URL", "REDIS_URL"}
    }
    env |= {
        "DJANGO_SETTINGS_MODULE": "bpmos.settings",
        "BPMOS_ENV": "production",
        "BPMOS_DATA_DIR": str(tmp_path),
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "DATABASE_URL": "postgres://bpmos:secret@db.plant.internal:5432/bpmos",
        "REDIS_URL": "redis://redis.plant.internal:6379/0",
        "DJANGO_ALLOWED_HOSTS": "mes.plant.example",
    }
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=Path(settings.BASE_DIR),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    return _manage(env, "check", "--deploy", "--fail-level", "WARNING")


def test_production_settings_pass_check_deploy(tmp_path):
    done = _check_deploy(_production_env(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == NO_ISSUES


_HEADERS = """
import json
from django.test import Client
client = Client(HTTP_HOST="mes.plant.example")
plain = client.get("/api/no-such-path/")
secure = client.get("/api/no-such-path/", secure=True)
names = ("Strict-Transport-Security", "X-Content-Type-Options",
         "Referrer-Policy", "X-Frame-Options", "Cross-Origin-Opener-Policy")
print(json.dumps({
    "plain": [plain.status_code, plain.headers.get("Location")],
    "secure": [secure.status_code, secure.json()["code"]],
    "headers": {name: secure.headers.get(name) for name in names},
}))
"""


def test_production_answers_carry_the_security_headers(tmp_path):
    """OWASP API8: what ``check --deploy`` checks in the settings, seen on an
    answer: plain HTTP is sent to HTTPS, and an HTTPS answer (here the 404
    envelope, which needs no database) carries HSTS (a year, subdomains,
    preload), ``nosniff``, the referrer policy, ``DENY`` framing and COOP."""
    done = _manage(_production_env(tmp_path), "shell", "-c", _HEADERS)
    assert done.returncode == 0, done.stdout + done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["plain"] == [301, "https://mes.plant.example/api/no-such-path/"]
    assert seen["secure"] == [404, "not_found"]
    assert seen["headers"] == {
        "Strict-Transport-Security": "max-age=31536000; includeSubDomains; preload",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
    }


def test_production_ignores_a_debug_flag(tmp_path):
    done = _check_deploy(_production_env(tmp_path, DJANGO_DEBUG="true"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == NO_ISSUES


def test_check_deploy_catches_a_weak_secret_key(tmp_path):
    # Shows the check above has teeth: a short key is reported and fails it.
    done = _check_deploy(_production_env(tmp_path, DJANGO_SECRET_KEY="too-short"))
    assert done.returncode == 1
    assert "security.W009" in done.stderr


@pytest.mark.parametrize(
    "missing",
    ["DJANGO_SECRET_KEY", "REDIS_URL", "DATABASE_URL", "DJANGO_ALLOWED_HOSTS"],
)
@pytest.mark.parametrize("how", ["unset", "empty"])
def test_production_refuses_to_start_without_a_required_variable(
    tmp_path, missing, how
):
    env = _production_env(tmp_path, **{missing: None if how == "unset" else ""})
    done = _manage(env, "check")
    assert done.returncode == 1
    assert (
        f"django.core.exceptions.ImproperlyConfigured: {missing} must be set "
        "when BPMOS_ENV=production"
    ) in done.stderr


def test_production_names_every_missing_variable_at_once(tmp_path):
    env = _production_env(tmp_path, DJANGO_SECRET_KEY=None, REDIS_URL=None)
    done = _manage(env, "check")
    assert done.returncode == 1
    assert (
        "ImproperlyConfigured: DJANGO_SECRET_KEY, REDIS_URL must be set "
        "when BPMOS_ENV=production"
    ) in done.stderr


def test_an_unknown_run_mode_is_refused(tmp_path):
    done = _manage(_production_env(tmp_path, BPMOS_ENV="prod"), "check")
    assert done.returncode == 1
    assert "BPMOS_ENV must be 'embedded' or 'production', not 'prod'" in done.stderr


def _documented_required(text: str) -> list[str]:
    """Variables .env.example marks REQUIRED: the assignment following each mark."""
    required, marked = [], False
    for line in text.splitlines()[5:]:  # after the header, which lists them
        if line.startswith("#"):
            marked = marked or "REQUIRED" in line
        elif "=" in line:
            if marked:
                required.append(line.split("=", 1)[0])
            marked = False
    return required


def test_env_example_and_readme_list_exactly_what_production_requires():
    from bpmos import settings as project_settings

    required = list(project_settings._REQUIRED_IN_PRODUCTION)
    base = Path(settings.BASE_DIR)
    example = (base / ".env.example").read_text()
    assert _documented_required(example) == required
    assert f"without them): {', '.join(required)}." in example.replace("\n# ", " ")
    readme = " ".join((base / "README.md").read_text().split())
    listed = ", ".join(f"`{name}`" for name in required[:-1])
    assert f"unless all four of {listed} and `{required[-1]}` are set" in readme


def test_embedded_broker_keeps_every_folder_under_the_data_dir(tmp_path):
    # kombu's filesystem transport puts any folder it is not given in the
    # working directory: `make run` left a "control" folder in the checkout.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "BPMOS_", "CELERY_"))
        # An xdist worker's name moves the data dir to xdist/<worker> (settings):
        # under `make test` (-n auto) the folders were not where this expects.
        and key not in {"DATABASE_URL", "REDIS_URL", "PYTEST_XDIST_WORKER"}
    } | {"DJANGO_SETTINGS_MODULE": "bpmos.settings", "BPMOS_DATA_DIR": str(tmp_path)}
    shown = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json; from django.conf import settings; "
            "print(json.dumps(settings.CELERY_BROKER_TRANSPORT_OPTIONS))",
        ],
        cwd=Path(settings.BASE_DIR),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    options = json.loads(shown.stdout)
    folders = {key: value for key, value in options.items() if key.endswith("folder")}
    assert sorted(folders) == ["control_folder", "processed_folder"]
    assert options["data_folder_in"] == options["data_folder_out"]
    folders["data_folder"] = options["data_folder_in"]
    broker = tmp_path / "broker"
    assert {key: Path(value).parent for key, value in folders.items()} == {
        "control_folder": broker,
        "processed_folder": broker,
        "data_folder": broker,
    }


@pytest.mark.django_db
def test_postgresql_sessions_run_without_jit_unless_asked():
    """JIT compilation is off for the app's PostgreSQL sessions (a short OLTP
    statement estimated past jit_above_cost paid the compile on every
    request); DATABASE_JIT=true leaves the server's setting."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has no JIT")
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"
    db = connection.settings_dict
    import psycopg

    # The server's own setting, as a session without our options sees it.
    with psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname=db["NAME"],
    ) as plain:
        server = plain.execute("SHOW jit").fetchone()[0]
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    probe = (
        "import django; django.setup(); from django.db import connection; "
        "c = connection.cursor(); c.execute('SHOW jit'); print(c.fetchone()[0])"
    )
    asked = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "DATABASE_URL": f"{url}/{db['NAME']}",
            "DATABASE_JIT": "true",
            "DJANGO_SETTINGS_MODULE": "bpmos.settings",
        },
        check=True,
        timeout=120,
    ).stdout.strip()
    assert asked == server
