"""Ledger checkpoints beside open appends, on PostgreSQL (passports/checkpoints.py).

The builder locks no passport row and does not wait for the audit chain's
lock: a checkpoint is written while an append holds both, and that append,
committed after an append with a higher event id, is covered by the next
checkpoint (coverage is per passport, not an event id range).
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from passports import checkpoints, ledger
from passports.models import EventKind, LedgerCheckpointLeaf, Passport, PassportEvent
from tests.factories_passports import make_passport
from tests.support import join_or_fail

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgresql_only]


def leaves(checkpoint) -> list[tuple[int, int]]:
    return list(
        LedgerCheckpointLeaf.objects.filter(checkpoint=checkpoint)
        .order_by("passport_id")
        .values_list("passport_id", "version")
    )


def test_an_append_open_during_a_checkpoint_is_in_the_next_one():
    slow = make_passport("pack", "warehoused")
    quick = make_passport("pack", "warehoused")
    checkpoints.checkpoint_build()
    appended, release, failed = threading.Event(), threading.Event(), []

    def open_append():
        try:
            with transaction.atomic():
                ledger.append(
                    passport=slow.pk,
                    kind=EventKind.TELEMETRY_SUMMARISED,
                    data={"samples": 1},
                    actor=None,
                )
                appended.set()
                assert release.wait(60)
        except Exception as exc:  # reported below
            failed.append(exc)
            appended.set()
        finally:
            connection.close()

    writer = threading.Thread(target=open_append, daemon=True)
    writer.start()
    try:
        assert appended.wait(60)
        later = ledger.append(
            passport=quick.pk,
            kind=EventKind.TELEMETRY_SUMMARISED,
            data={"samples": 2},
            actor=None,
        )
        # The slow append holds its row and (most likely) the audit chain's lock.
        second = checkpoints.checkpoint_build()
    finally:
        release.set()
        join_or_fail(writer)
    assert not failed
    assert leaves(second) == [(quick.pk, later.version)]
    slow_event = PassportEvent.objects.filter(passport=slow).order_by("-version")[0]
    assert slow_event.pk < later.pk  # its id was taken first, it committed last
    third = checkpoints.checkpoint_build()
    assert leaves(third) == [(slow.pk, Passport.objects.get(pk=slow.pk).version)]
    assert (third.first_event_id, third.last_event_id) == (slow_event.pk,) * 2
    assert checkpoints.checkpoints_verify().ok
