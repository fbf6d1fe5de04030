"""Staged audit records (``elog.audit``, docs/security.md "Staged audit
records"): a ledger writer that finds the audit chain's lock taken writes its
records to ``AuditPending`` with a MAC and chains them right after its commit,
so writers no longer queue on the lock through each other's commits. On
PostgreSQL (advisory locks); SQLite serialises whole transactions and always
chains at once."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction

from elog import audit
from elog.models import AuditPending, AuditRecord
from elog.services import audit_chain_verify
from passports import ledger
from passports.models import EventKind, PassportEvent
from tests.factories_passports import make_passport
from tests.support import join_or_fail

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgresql_only]


class _LockHolder:
    """Another connection holding the audit chain's lock until released."""

    def __init__(self) -> None:
        self.taken, self.release = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._hold, daemon=True)

    def _hold(self) -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(%s)", [audit._CHAIN_LOCK_KEY]
                )
                self.taken.set()
                self.release.wait(timeout=60)
        finally:
            connections.close_all()

    def __enter__(self):
        self.thread.start()
        assert self.taken.wait(timeout=30)
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        join_or_fail(self.thread)


def _telemetry(pk: int, n: int):
    return ledger.append(
        passport=pk,
        kind=EventKind.TELEMETRY_SUMMARISED,
        data={"sample": n},
        actor=None,
    )


def test_a_writer_that_finds_the_lock_taken_stages_and_is_chained_after_commit():
    pack = make_passport("pack", "warehoused")
    records = AuditRecord.objects.count()
    staged: dict[str, object] = {}
    with _LockHolder():
        with transaction.atomic():
            _telemetry(pack.pk, 1)
            # Staged in the writer's transaction, not chained: the lock is taken.
            staged["pending"] = list(AuditPending.objects.values("action", "after"))
            staged["records"] = AuditRecord.objects.count()
        # Committed while the lock is still held: the seal after commit gave
        # up waiting (SEAL_LOCK_TIMEOUT_MS), the records stay pending.
        assert PassportEvent.objects.filter(passport=pack).count() == 5
        assert AuditPending.objects.count() == 1
    assert staged["records"] == records
    assert [row["action"] for row in staged["pending"]] == [
        "passport.telemetry_summarised"
    ]
    # The holder released, a seal (the beat sweep's call) chains it.
    audit.seal_pending()
    assert not AuditPending.objects.exists()
    newest = AuditRecord.objects.order_by("-seq").first()
    assert newest.action == "passport.telemetry_summarised"
    assert newest.after == staged["pending"][0]["after"]
    assert AuditRecord.objects.count() == records + 1
    assert audit_chain_verify().ok


def test_a_pending_record_changed_in_the_table_is_never_chained():
    pack = make_passport("pack", "warehoused")
    with _LockHolder():
        _telemetry(pack.pk, 1)  # its own transaction; the seal after it waits
    audit.seal_pending()
    with _LockHolder():
        _telemetry(pack.pk, 2)
        row = AuditPending.objects.get()
        with connection.cursor() as cursor:  # tampering: the table is writable
            cursor.execute(
                "UPDATE elog_auditpending SET actor_username = 'mallory' WHERE id = %s",
                [row.pk],
            )
    before = AuditRecord.objects.count()
    assert audit.seal_pending() == 0
    assert AuditRecord.objects.count() == before
    assert AuditPending.objects.filter(pk=row.pk).exists()  # left for the auditor
    assert audit_chain_verify().ok


def test_four_writers_lose_no_record_and_fork_no_chain():
    packs = [make_passport("pack", "warehoused") for _ in range(4)]
    start = AuditRecord.objects.order_by("-seq").values_list("seq", flat=True)[0]
    per_writer = 15
    barrier = threading.Barrier(len(packs))
    errors: list[BaseException] = []

    def write(pk: int) -> None:
        try:
            barrier.wait(timeout=30)
            for n in range(per_writer):
                _telemetry(pk, n)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(p.pk,), daemon=True) for p in packs]
    for thread in threads:
        thread.start()
    join_or_fail(*threads, timeout=300)
    assert not errors
    audit.seal_pending()  # what the sweep would do for a seal that lost a race
    assert not AuditPending.objects.exists()
    records = AuditRecord.objects.filter(seq__gt=start)
    assert records.filter(action="passport.telemetry_summarised").count() == (
        per_writer * len(packs)
    )
    for pack in packs:  # one audit record per event, per passport
        assert records.filter(target_id=str(pack.pk)).count() == per_writer
        assert list(
            PassportEvent.objects.filter(passport=pack)
            .order_by("version")
            .values_list("version", flat=True)
        ) == list(range(1, 5 + per_writer))
    seqs = list(AuditRecord.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))  # no gap, no fork
    assert audit_chain_verify().ok
    assert ledger.verify().ok
