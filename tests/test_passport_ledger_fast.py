"""The ledger's fast paths keep its guarantees (PostgreSQL, real Redis).

- One append writes its event and its passport's projection in one statement
  (``ledger._event_and_projection``): the same rows and chain as a batch
  (``append_many``, ``bulk_create`` and the projection UPDATE), the stale
  ``expected_version`` still a 409 with nothing written.
- ``verify`` reads events with one raw query and hashes them with
  ``ledger._row_digest``, which must equal ``compute_hash`` byte for byte,
  whatever the data's numbers, text and the event's time.
- The live events are committed with the event and delivered after commit by
  the process's delivery thread; a rolled-back append leaves no event, no
  outbox row and no audit record.
- A staged audit record is chained by the process's sealing thread after its
  writer commits, with no call to ``seal_pending``.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from bpmos.errors import Conflict
from bpmos.events import services
from bpmos.events.models import OutboxEvent
from elog import audit
from elog.models import AuditPending, AuditRecord
from elog.services import audit_chain_verify
from passports import ledger
from passports.models import EventKind, PassportEvent
from tests.factories_passports import make_passport
from tests.support import join_or_fail

pytestmark = [pytest.mark.postgresql_only]

TELEMETRY = EventKind.TELEMETRY_SUMMARISED


@pytest.fixture
def supervisor(make_user):
    return make_user("supervisor")


def _row_of(event: PassportEvent) -> ledger._Row:
    (row,) = [r for r in ledger._rows_of([event.passport_id]) if r.pk == event.pk]
    return row


@pytest.mark.django_db
@pytest.mark.parametrize(
    "data",
    [
        {},
        {"sohPercent": 97.5, "samples": 60},
        {"big": 2**53, "bigger": -(2**60), "float": 1e20, "small": 2**53 - 1},
        {"serial": "1234567890123456789", "nested": {"b": [1, 2.5, None], "a": True}},
        {"note": "Zelle \u2013 \u96fb\u6c60 \u2713", "quote": 'a "b" \\ c'},
    ],
)
@pytest.mark.parametrize("microsecond", [0, 123456])
def test_verify_digest_equals_compute_hash(data, microsecond):
    pack = make_passport("pack", "warehoused")
    at = (timezone.now() + timedelta(minutes=1)).replace(microsecond=microsecond)
    event = ledger.append(
        passport=pack.pk, kind=TELEMETRY, data=data, actor=None, occurred_at=at
    )
    row = _row_of(event)
    assert row.occurred_at == at.astimezone(UTC).isoformat()
    key = audit.keyring().current_key
    stored = PassportEvent.objects.get(pk=event.pk)
    expected = ledger.compute_hash(ledger._event_fields(stored, pack.uuid), key=key)
    assert expected == stored.hash
    assert ledger._row_digest(row, str(pack.uuid), key) == expected
    # One changed character anywhere changes the digest.
    altered = row._replace(data={**row.data, "x": 1})
    assert ledger._row_digest(altered, str(pack.uuid), key) != expected
    altered = row._replace(occurred_at=row.occurred_at.replace(":", ";", 1))
    assert ledger._row_digest(altered, str(pack.uuid), key) != expected


@pytest.mark.django_db
def test_a_non_utc_time_hashes_and_verifies_as_utc():
    pack = make_passport("pack", "warehoused")
    ist = datetime.now(UTC).astimezone(ZoneInfo("Asia/Kolkata")) + timedelta(minutes=2)
    ledger.append(
        passport=pack.pk, kind=TELEMETRY, data={"n": 1}, actor=None, occurred_at=ist
    )
    assert ledger.verify(passport_ids=[pack.pk]).ok


def _chain(passport) -> list[tuple]:
    return list(
        PassportEvent.objects.filter(passport=passport)
        .order_by("version")
        .values_list("version", "kind", "data", "actor_username", "key_id")
    )


@pytest.mark.django_db
def test_single_appends_equal_a_batch(supervisor):
    one, two = (make_passport("pack", "warehoused") for _ in range(2))
    datas = [{"sohPercent": 97.5}, {"sohPercent": 97.25}, {"sohPercent": 97.0}]
    for data in datas:  # one statement each: event and projection
        ledger.append(passport=one.pk, kind=TELEMETRY, data=data, actor=supervisor)
    ledger.append_many(  # bulk_create and the projection UPDATE
        events=[
            ledger.NewEvent(passport=two.pk, kind=TELEMETRY, data=data)
            for data in datas
        ],
        actor=supervisor,
    )
    assert _chain(one)[-3:] == _chain(two)[-3:]
    for passport in (one, two):
        passport.refresh_from_db()
        newest = PassportEvent.objects.filter(passport=passport).latest("version")
        assert passport.version == newest.version
        assert passport.head_hash == newest.hash
        assert ledger.snapshot_of(passport).state == "warehoused"
        assert (
            AuditRecord.objects.filter(
                target_id=str(passport.pk), action=f"passport.{TELEMETRY}"
            ).count()
            == 3
        )
    assert ledger.verify(passport_ids=[one.pk, two.pk]).ok


@pytest.mark.django_db
def test_stale_version_on_the_fused_path_writes_nothing(supervisor):
    pack = make_passport("pack", "warehoused")
    pack.refresh_from_db()
    version = pack.version
    ledger.append(
        passport=pack.pk,
        kind=TELEMETRY,
        data={},
        actor=supervisor,
        expected_version=version,
    )
    events, records, outbox = (
        PassportEvent.objects.count(),
        AuditRecord.objects.count(),
        OutboxEvent.objects.count(),
    )
    with pytest.raises(Conflict) as refused:
        ledger.append(
            passport=pack.pk,
            kind=TELEMETRY,
            data={},
            actor=supervisor,
            expected_version=version,
        )
    assert refused.value.code == "version_conflict"
    assert (
        PassportEvent.objects.count(),
        AuditRecord.objects.count(),
        OutboxEvent.objects.count(),
    ) == (events, records, outbox)
    pack.refresh_from_db()
    assert pack.version == version + 1


@pytest.mark.django_db
def test_tampered_data_is_found_by_the_fast_verify():
    pack = make_passport("pack", "warehoused")
    event = ledger.append(passport=pack.pk, kind=TELEMETRY, data={"n": 1}, actor=None)
    ledger.append(passport=pack.pk, kind=TELEMETRY, data={"n": 2}, actor=None)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "UPDATE passports_passportevent SET data = '{\"n\": 3}' WHERE id = %s",
            [event.pk],
        )
        cursor.execute("SET LOCAL session_replication_role = origin")
    result = ledger.verify(passport_ids=[pack.pk])
    assert not result.ok
    assert result.first_broken.event_id == event.pk
    assert result.first_broken.problem == "altered"


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    not services.layer_is_shared(), reason="needs a shared (Redis) channel layer"
)
def test_events_are_delivered_after_commit_by_the_delivery_thread(monkeypatch):
    pack = make_passport("pack", "warehoused")
    senders: list[str] = []
    send = services._send

    def recording(rows):
        senders.append(threading.current_thread().name)
        return send(rows)

    monkeypatch.setattr(services, "_send", recording)
    start = OutboxEvent.objects.order_by("-id").values_list("id", flat=True).first()
    with transaction.atomic():
        ledger.append(passport=pack.pk, kind=TELEMETRY, data={"n": 1}, actor=None)
        assert senders == []  # nothing announced before commit
    assert services._background.drain(timeout=30)
    rows = OutboxEvent.objects.filter(id__gt=start or 0)
    assert rows.exists()
    assert all(row.delivered_at is not None for row in rows)
    assert senders
    assert set(senders) == {"bpmos-event-delivery"}


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_append_leaves_nothing():
    pack = make_passport("pack", "warehoused")
    counts = (
        PassportEvent.objects.count(),
        AuditRecord.objects.count(),
        AuditPending.objects.count(),
        OutboxEvent.objects.count(),
    )

    def append_then_fail() -> None:
        with transaction.atomic():
            ledger.append(passport=pack.pk, kind=TELEMETRY, data={"n": 1}, actor=None)
            raise RuntimeError("the caller failed after the append")

    with pytest.raises(RuntimeError):
        append_then_fail()
    assert services._background.drain(timeout=30)
    assert (
        PassportEvent.objects.count(),
        AuditRecord.objects.count(),
        AuditPending.objects.count(),
        OutboxEvent.objects.count(),
    ) == counts


@pytest.mark.django_db(transaction=True)
def test_a_staged_record_is_chained_by_the_sealing_thread():
    pack = make_passport("pack", "warehoused")
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(%s)", [audit._CHAIN_LOCK_KEY]
                )
                taken.set()
                release.wait(timeout=60)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert taken.wait(timeout=30)
    try:
        records = AuditRecord.objects.count()
        ledger.append(passport=pack.pk, kind=TELEMETRY, data={"n": 1}, actor=None)
        assert AuditPending.objects.count() == 1  # staged: the lock was taken
        assert AuditRecord.objects.count() == records
    finally:
        release.set()
        join_or_fail(holder)
    assert audit._sealer.drain(timeout=30)
    # The sealing thread may have given up while the lock was held (it waits
    # at most SEAL_LOCK_TIMEOUT_MS); one more request seals it then.
    if AuditPending.objects.exists():
        audit._sealer.submit()
        assert audit._sealer.drain(timeout=30)
    assert not AuditPending.objects.exists()
    newest = AuditRecord.objects.order_by("-seq").first()
    assert newest.action == f"passport.{TELEMETRY}"
    assert newest.target_id == str(pack.pk)
    assert AuditRecord.objects.count() == records + 1
    assert audit_chain_verify().ok
    assert ledger.verify(passport_ids=[pack.pk]).ok
