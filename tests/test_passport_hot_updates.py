"""The ledger's projection updates are HOT where they can be (docs/passports.md,
"HOT projection updates").

- No index of the passports reads a column every append writes (``version``,
  ``head_hash``, ``updated_at``) or one only the hold and custody events write
  (``hold_reason``, ``custodian_name``): PostgreSQL updates a row without
  touching its indexes (HOT) only when no indexed column changed, and a column
  in a partial index's key or condition counts.
- So an event that changes no state, hold or custody (a telemetry summary, a
  service) appended alone or in a batch is a HOT update on PostgreSQL, read
  from the transaction's own counters (``pg_stat_xact_user_tables``); a state
  change is not (the counters see the difference).
- The table keeps room on its pages for the new row versions (fillfactor 90).
- The supervisor's on-hold list is still every passport on hold, oldest
  ``updated_at`` first (then id), whatever was appended while on hold: the
  index now finds the rows and the list sorts them.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection

from passports import ledger, selectors
from passports.models import EventKind, Passport, State
from tests.factories_passports import make_passport, record

E = EventKind

needs_postgresql = pytest.mark.skipif(
    not settings.DB_IS_POSTGRES, reason="HOT updates and fillfactor are PostgreSQL's"
)

# What every append writes, and what only hold and custody events write.
ALWAYS_WRITTEN = {"version", "head_hash", "updated_at"}
HOLD_AND_CUSTODY_TEXT = {"hold_reason", "custodian_name"}


def _indexed_columns() -> dict[str, set[str]]:
    """Each index of the passports: the columns its key, INCLUDE, expressions
    and condition read."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, a.attname FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum > 0 "
            "AND NOT a.attisdropped AND (a.attnum = ANY(i.indkey) "
            "OR pg_get_expr(i.indexprs, i.indrelid) ~ ('\\m' || a.attname || '\\M') "
            "OR pg_get_expr(i.indpred, i.indrelid) ~ ('\\m' || a.attname || '\\M')) "
            "WHERE i.indrelid = %s::regclass",
            [Passport._meta.db_table],
        )
        found: dict[str, set[str]] = {}
        for index, column in cursor.fetchall():
            found.setdefault(index, set()).add(column)
    return found


def _updates() -> tuple[int, int]:
    """This transaction's passport row updates so far, and of those HOT."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables "
            "WHERE relid = %s::regclass",
            [Passport._meta.db_table],
        )
        return cursor.fetchone()


def _block(passport_id: int) -> int:
    """The heap page the passport's row is on."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (ctid::text::point)[0]::bigint FROM {Passport._meta.db_table} "
            "WHERE id = %s",
            [passport_id],
        )
        return cursor.fetchone()[0]


def _counted(append) -> tuple[int, int]:
    before = _updates()
    append()
    after = _updates()
    return after[0] - before[0], after[1] - before[1]


def _hot_on_its_page(passport_id: int, append) -> None:
    """``append`` (one update of the passport's row) is HOT. A HOT update needs
    room on the row's page; the rows this test wrote before (rolled-back tests'
    too) may have used it, and then the update moves the row to a page with
    the fillfactor's room (not HOT: a new index entry), so the next is HOT."""
    page = _block(passport_id)
    updates, hot = _counted(append)
    assert updates == 1
    if _block(passport_id) != page:
        assert hot == 0
        page = _block(passport_id)
        updates, hot = _counted(append)
        assert _block(passport_id) == page
    assert (updates, hot) == (1, 1)


@needs_postgresql
@pytest.mark.django_db
def test_no_passport_index_reads_a_column_an_append_always_writes():
    indexed = _indexed_columns()
    assert "passport_on_hold_idx" in indexed
    # The reading catches a condition's column and a key column.
    assert indexed["passport_on_hold_idx"] == {"id", "on_hold"}
    assert {"kind", "state"} <= indexed["passports_p_kind_f4648f_idx"]
    for index, columns in indexed.items():
        assert not columns & (ALWAYS_WRITTEN | HOLD_AND_CUSTODY_TEXT), index


@needs_postgresql
@pytest.mark.django_db
def test_the_passports_keep_room_for_hot_updates():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reloptions FROM pg_class WHERE oid = %s::regclass",
            [Passport._meta.db_table],
        )
        assert cursor.fetchone()[0] == ["fillfactor=90"]


@needs_postgresql
@pytest.mark.django_db
def test_an_event_that_changes_no_indexed_column_is_a_hot_update(make_user):
    boss = make_user("supervisor")
    passport = make_passport(state=State.IN_SERVICE, actor=boss)
    version = passport.version

    def telemetry():
        ledger.append(
            passport=passport.pk,
            kind=E.TELEMETRY_SUMMARISED,
            data={"sohPercent": 97.5, "samples": 60},
            actor=boss,
        )

    _hot_on_its_page(passport.pk, telemetry)
    _hot_on_its_page(
        passport.pk,
        lambda: ledger.append(
            passport=passport.pk, kind=E.SERVICED, data={"note": "fan"}, actor=boss
        ),
    )
    # A state change moves the row in (kind, state): never HOT, and counted so.
    other = make_passport(state=State.MANUFACTURED, actor=boss)
    assert _counted(
        lambda: ledger.append(passport=other.pk, kind=E.QA_PASSED, actor=boss)
    ) == (1, 0)
    passport.refresh_from_db()
    assert passport.version >= version + 2
    assert ledger.verify(passport_ids=[passport.pk]).ok


@needs_postgresql
@pytest.mark.django_db
def test_a_batchs_projection_of_such_an_event_is_a_hot_update(make_user):
    boss = make_user("supervisor")
    passport = make_passport(state=State.WAREHOUSED, actor=boss)
    events = [
        ledger.NewEvent(
            passport=passport.pk,
            kind=E.TELEMETRY_SUMMARISED,
            data={"sohPercent": 97.5, "samples": 60},
        )
    ]
    _hot_on_its_page(passport.pk, lambda: ledger.append_many(events=events, actor=boss))
    passport.refresh_from_db()
    assert ledger.verify(passport_ids=[passport.pk]).ok


@pytest.mark.django_db
def test_the_on_hold_list_is_every_held_passport_oldest_update_first(make_user):
    boss = make_user("supervisor")
    held = [make_passport(state=State.WAREHOUSED, on_hold=True) for _ in range(4)]
    make_passport(state=State.WAREHOUSED)  # not on hold: not listed
    # Appends while on hold move a passport's updated_at (and so its place).
    record(held[0], E.TELEMETRY_SUMMARISED, actor=boss)
    record(held[2], E.TELEMETRY_SUMMARISED, actor=boss)
    rows = list(
        Passport.objects.filter(on_hold=True).values(
            "id", "uuid", "serial", "hold_reason", "updated_at"
        )
    )
    expected = [
        {k: row[k] for k in ("uuid", "serial", "hold_reason", "updated_at")}
        for row in sorted(rows, key=lambda row: (row["updated_at"], row["id"]))
    ]
    assert len(expected) == 4
    assert selectors.passport_on_hold_list() == expected
    assert selectors.passport_on_hold_list(limit=2) == expected[:2]
    assert [row["serial"] for row in expected[-2:]] == [
        held[0].serial,
        held[2].serial,
    ]
    assert selectors.passport_hold_count() == 4
