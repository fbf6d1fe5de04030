"""What the database role the app runs as can do to the append-only tables.

The audit log, the shift log, the passport ledgers and the exceptions' journal
refuse UPDATE and DELETE by a row trigger (``bpmos/appendonly.py``). A role
that is a superuser, that owns one of those tables (or is a member of its
owner), can disable or drop the trigger; one with TRUNCATE can empty a table
without firing it; one with TRIGGER can add a trigger of its own. The app's
production role should have none of these: it then cannot rewrite history,
and only the hash chains' verification remains to catch whoever can (the
owner, a superuser). ``manage.py check_db_role`` runs ``db_role_problems`` and
exits 1 if it finds any (docs/security.md, the operator's checklist).
"""

from __future__ import annotations

from bpmos.appendonly import APPEND_ONLY_TABLES


def db_role_problems(cursor) -> list[str]:
    """What the connection's role could do to bypass the append-only tables,
    one sentence each; empty when nothing. PostgreSQL only."""
    cursor.execute(
        "SELECT current_user, rolsuper, rolbypassrls FROM pg_roles "
        "WHERE rolname = current_user"
    )
    role, superuser, _ = cursor.fetchone()
    problems = []
    if superuser:
        problems.append(
            f"Role {role} is a superuser: it can disable every trigger "
            "(session_replication_role) and rewrite any table."
        )
    for table, noun in APPEND_ONLY_TABLES.items():
        cursor.execute(
            "SELECT c.relowner::regrole::text, "
            "pg_has_role(current_user, c.relowner, 'MEMBER'), "
            "has_table_privilege(current_user, c.oid, 'TRUNCATE'), "
            "has_table_privilege(current_user, c.oid, 'TRIGGER') "
            "FROM pg_class c WHERE c.oid = to_regclass(%s)",
            [table],
        )
        row = cursor.fetchone()
        if row is None:
            problems.append(f"Table {table} ({noun}s) does not exist: migrate first.")
            continue
        owner, member, truncate, trigger = row
        if member:
            problems.append(
                f"Role {role} owns {table} ({noun}s)"
                + ("" if owner == role else f" through role {owner}")
                + ": it can disable or drop its append-only trigger."
            )
        if truncate:
            problems.append(
                f"Role {role} may TRUNCATE {table}, which fires no row trigger."
            )
        if trigger:
            problems.append(f"Role {role} may create triggers on {table}.")
        cursor.execute(
            "SELECT tgenabled FROM pg_trigger "
            "WHERE tgrelid = to_regclass(%s) AND tgname = %s",
            [table, f"{table}_append_only_guard"],
        )
        state = cursor.fetchone()
        if state is None:
            problems.append(f"{table} has no append-only trigger.")
        elif state[0] == "D":
            problems.append(f"The append-only trigger of {table} is disabled.")
    return problems
