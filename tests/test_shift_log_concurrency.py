"""Races on the shift log (PostgreSQL: row locks do nothing on SQLite): many
supervisors acknowledging one handover at once make exactly one
acknowledgement; writers racing keep the audit chain whole."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from bpmos.errors import Conflict
from bpmos.roles import Role
from elog import shiftlog, shifts
from elog.models import AuditRecord, ShiftLogEntry
from elog.models import ShiftLogEntryType as T
from elog.services import audit_chain_verify
from tests.support import run_together

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgresql_only]

WORKERS = 6


def test_racing_acknowledgements_of_one_handover_make_one(make_user):
    outgoing = make_user(Role.SUPERVISOR)
    start, _ = shifts.shift_of(at=timezone.now())
    handover = shiftlog.entry_write(
        actor=outgoing,
        plant_id=shiftlog.this_plant_id(),
        operator_id=outgoing.pk,
        operator_name="out",
        entry_type=T.HANDOVER,
        body="Line A on rework.",
        now=start - timedelta(minutes=5),
    )
    incoming = [make_user(Role.SUPERVISOR) for _ in range(WORKERS)]

    results = run_together(
        [
            lambda user=user: shiftlog.handover_acknowledge(
                handover_id=handover.pk, actor=user
            )
            for user in incoming
        ]
    )

    kinds = Counter(type(result).__name__ for result in results)
    assert kinds == {"ShiftLogEntry": 1, "Conflict": WORKERS - 1}
    assert all(
        result.code == "already_acknowledged"
        for result in results
        if isinstance(result, Conflict)
    )
    assert ShiftLogEntry.objects.filter(acknowledges=handover).count() == 1
    assert (
        AuditRecord.objects.filter(action="shift_log.handover_acknowledged").count()
        == 1
    )


def test_racing_writers_keep_the_audit_chain_whole(make_user):
    writers = [make_user(Role.OPERATOR) for _ in range(WORKERS)]

    results = run_together(
        [
            lambda user=user: shiftlog.entry_write(
                actor=user,
                plant_id=shiftlog.this_plant_id(),
                operator_id=user.pk,
                operator_name=user.username,
                entry_type=T.NOTE,
                body=f"note by {user.username}",
            )
            for user in writers
        ]
    )

    assert all(isinstance(result, ShiftLogEntry) for result in results), results
    assert ShiftLogEntry.objects.count() == WORKERS
    assert audit_chain_verify().ok is True
