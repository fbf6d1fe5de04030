"""The database side of the audit trail's trust (PostgreSQL only): the app's
role cannot bypass the append-only tables (``manage.py check_db_role``), and a
``pg_dump`` / ``pg_restore`` round trip gives a database whose audit chain and
ledgers verify and whose tables are still append-only (docs/security.md)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from bpmos.appendonly import APPEND_ONLY_TABLES
from bpmos.dbrole import db_role_problems
from elog import audit
from elog.models import AuditRecord
from passports.models import EventKind, PassportEvent
from tests.factories_passports_api import append, register

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"),
        reason="database roles and pg_dump are PostgreSQL's",
    ),
]


def _params(**overrides) -> dict:
    db = settings.DATABASES["default"]
    params = {
        "dbname": db["NAME"],
        "user": db["USER"],
        "host": db["HOST"] or "127.0.0.1",
        "port": db["PORT"] or 5432,
    }
    if db.get("PASSWORD"):
        params["password"] = db["PASSWORD"]
    return params | overrides


@pytest.fixture
def app_role():
    """A login role granted what the app needs (rows, sequences), nothing more."""
    name = f"bpmos_app_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE ROLE "{name}" LOGIN')
        cursor.execute(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public "
            f'TO "{name}"'
        )
        cursor.execute(
            f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{name}"'
        )
    yield name
    with connection.cursor() as cursor:
        cursor.execute(f'DROP OWNED BY "{name}"')
        cursor.execute(f'DROP ROLE "{name}"')


def _problems_as(role: str) -> list[str]:
    with psycopg.connect(**_params(user=role)) as conn, conn.cursor() as cursor:
        return db_role_problems(cursor)


def test_a_role_with_row_rights_only_cannot_bypass(app_role):
    assert _problems_as(app_role) == []
    # and indeed: its UPDATE is refused by the trigger
    audit.record(actor=None, action="user.login_failed", after={"username": "x"})
    with (
        psycopg.connect(**_params(user=app_role)) as conn,
        conn.cursor() as cursor,
        pytest.raises(psycopg.errors.IntegrityConstraintViolation),
    ):
        cursor.execute("UPDATE elog_auditrecord SET action = 'forged'")


def test_truncate_and_trigger_rights_are_named(app_role):
    with connection.cursor() as cursor:
        cursor.execute(
            f'GRANT TRUNCATE, TRIGGER ON passports_passportevent TO "{app_role}"'
        )
    assert _problems_as(app_role) == [
        f"Role {app_role} may TRUNCATE passports_passportevent, which fires no row "
        "trigger.",
        f"Role {app_role} may create triggers on passports_passportevent.",
    ]


def test_owning_through_a_group_is_named(app_role):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relowner::regrole::text FROM pg_class "
            "WHERE oid = 'elog_auditrecord'::regclass"
        )
        (owner,) = cursor.fetchone()
        group = f"{app_role}_owners"
        cursor.execute(f'CREATE ROLE "{group}"')
        cursor.execute(f'ALTER TABLE elog_auditrecord OWNER TO "{group}"')
        cursor.execute(f'GRANT "{group}" TO "{app_role}"')
    try:
        # an owner holds every privilege of its table
        assert _problems_as(app_role) == [
            f"Role {app_role} owns elog_auditrecord (audit records) through role "
            f"{group}: it can disable or drop its append-only trigger.",
            f"Role {app_role} may TRUNCATE elog_auditrecord, which fires no row "
            "trigger.",
            f"Role {app_role} may create triggers on elog_auditrecord.",
        ]
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'ALTER TABLE elog_auditrecord OWNER TO "{owner}"')
            cursor.execute(f'DROP ROLE "{group}"')


def test_a_disabled_trigger_is_named(app_role):
    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE exceptions_exceptionevent "
            "DISABLE TRIGGER exceptions_exceptionevent_append_only_guard"
        )
    try:
        assert _problems_as(app_role) == [
            "The append-only trigger of exceptions_exceptionevent is disabled."
        ]
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                "ALTER TABLE exceptions_exceptionevent "
                "ENABLE TRIGGER exceptions_exceptionevent_append_only_guard"
            )


def test_the_command_fails_for_the_test_runs_superuser():
    """The suite connects as a superuser that owns every table: the command
    says so, for each table, and exits 1."""
    out = io.StringIO()
    with pytest.raises(CommandError) as failed:
        call_command("check_db_role", stdout=out)
    assert failed.value.returncode == 1
    text = out.getvalue()
    assert "is a superuser" in text
    for table in APPEND_ONLY_TABLES:
        assert f"owns {table}" in text


# --- backup and restore -------------------------------------------------------------


def _manage(*args: str, database_url: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "BPMOS_AUDIT_KEY": settings.BPMOS_AUDIT_KEY,
        "BPMOS_JWT_SIGNING_KEY": settings.SIMPLE_JWT["SIGNING_KEY"],
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_dump_and_restore_verifies_and_stays_append_only(make_user, tmp_path):
    supervisor = make_user("supervisor")
    for serial in ("BK-00001", "BK-00002"):
        pack = register(supervisor, serial)
        append(supervisor, pack, EventKind.QA_PASSED)
    audits, events = AuditRecord.objects.count(), PassportEvent.objects.count()
    assert audits > 0
    assert events > 0

    source = _params()
    dump = tmp_path / "plant.dump"
    base = ["-h", str(source["host"]), "-p", str(source["port"]), "-U", source["user"]]
    subprocess.run(
        ["pg_dump", *base, "-Fc", "-f", str(dump), source["dbname"]],
        check=True,
        timeout=300,
        env={**os.environ, "PGPASSWORD": source.get("password", "")},
    )
    restored = f"{source['dbname']}_restored_{uuid.uuid4().hex[:6]}"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{restored}"')
    try:
        subprocess.run(
            ["pg_restore", *base, "-d", restored, "--exit-on-error", str(dump)],
            check=True,
            timeout=300,
            env={**os.environ, "PGPASSWORD": source.get("password", "")},
        )
        url = (
            f"postgres://{source['user']}@{source['host']}:{source['port']}/{restored}"
        )
        audit_check = _manage("verify_audit", database_url=url)
        assert audit_check.returncode == 0, audit_check.stdout + audit_check.stderr
        assert f"{audits} records checked" in audit_check.stdout
        ledger_check = _manage("verify_ledger", database_url=url)
        assert ledger_check.returncode == 0, ledger_check.stdout + ledger_check.stderr
        assert f"{events} events checked" in ledger_check.stdout
        with psycopg.connect(**_params(dbname=restored)) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT tgrelid::regclass::text FROM pg_trigger "
                "WHERE tgname LIKE '%%append_only_guard' AND tgenabled <> 'D' "
                "ORDER BY 1"
            )
            assert [row[0] for row in cur.fetchall()] == sorted(APPEND_ONLY_TABLES)
            for table in ("elog_auditrecord", "passports_passportevent"):
                with pytest.raises(psycopg.errors.IntegrityConstraintViolation):
                    cur.execute(f"DELETE FROM {table}")
                conn.rollback()
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{restored}" WITH (FORCE)')
