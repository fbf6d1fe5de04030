"""Concurrent writers on passport ledgers, on PostgreSQL.

Each worker thread has its own database connection (Django's connections are
per thread) and closes it when done; a barrier releases them together. SQLite
serialises whole transactions (BEGIN IMMEDIATE) and ignores select_for_update,
so none of these races exist there.
"""

from __future__ import annotations

from collections import Counter

import pytest

from bpmos.errors import Conflict, DomainError
from elog.models import AuditRecord
from elog.services import audit_chain_verify
from passports import ledger, services
from passports.dispatch import services as dispatch
from passports.models import EventKind, Passport, PassportEvent
from tests.factories_passports import make_passport
from tests.support import run_together

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgresql_only]

WORKERS = 8
E = EventKind


def outcome(results: list[object]) -> Counter:
    return Counter(getattr(result, "code", type(result).__name__) for result in results)


def telemetry(passport_id: int, n: int, **kwargs):
    return lambda: ledger.append(
        passport=passport_id,
        kind=E.TELEMETRY_SUMMARISED,
        data={"sample": n},
        actor=None,
        **kwargs,
    )


def assembling(parent: Passport, components: list[Passport]):
    ids = [c.pk for c in components]
    return lambda: services.passport_assemble(
        parent_id=parent.pk, component_ids=ids, actor=None
    )


def versions(passport: Passport) -> list[int]:
    return list(
        PassportEvent.objects.filter(passport=passport)
        .order_by("version")
        .values_list("version", flat=True)
    )


def audited(passport: Passport) -> int:
    return AuditRecord.objects.filter(
        target_type="passports.passport", target_id=str(passport.pk)
    ).count()


def test_appends_at_the_same_version_exactly_one_wins():
    pack = make_passport("pack", "warehoused")
    for _ in range(3):
        version = Passport.objects.get(pk=pack.pk).version
        results = run_together(
            [telemetry(pack.pk, n, expected_version=version) for n in range(WORKERS)]
        )
        assert outcome(results) == Counter(
            {"PassportEvent": 1, "version_conflict": WORKERS - 1}
        )
        (won,) = [r for r in results if not isinstance(r, Exception)]
        assert won.version == version + 1
        for lost in results:
            if isinstance(lost, Conflict):
                assert lost.details == {"expected": version, "actual": version + 1}
    pack.refresh_from_db()
    assert versions(pack) == list(range(1, 8))
    assert pack.version == 7
    assert audited(pack) == 7  # the losers left no audit record
    assert ledger.verify().ok is True
    assert audit_chain_verify().ok is True


def test_appends_without_expected_version_serialise_without_gaps():
    pack = make_passport("pack", "warehoused")
    per_worker = 5

    def many(worker: int):
        def call():
            return [
                telemetry(pack.pk, worker * 100 + i)().version
                for i in range(per_worker)
            ]

        return call

    results = run_together([many(w) for w in range(WORKERS)])
    assert not [r for r in results if isinstance(r, Exception)]
    total = 4 + WORKERS * per_worker
    pack.refresh_from_db()
    assert versions(pack) == list(range(1, total + 1))
    assert pack.version == total
    assert sorted(v for worker in results for v in worker) == list(range(5, total + 1))
    for worker, got in enumerate(results):  # each writer's events in its order
        samples = [
            PassportEvent.objects.get(passport=pack, version=v).data["sample"]
            for v in got
        ]
        assert samples == [worker * 100 + i for i in range(per_worker)]
    assert ledger.verify().ok is True
    assert audit_chain_verify().ok is True


def test_writers_on_distinct_passports_do_not_deadlock_on_the_audit_chain():
    packs = [make_passport("pack", "warehoused") for _ in range(WORKERS)]

    def many(pack):
        return lambda: [telemetry(pack.pk, i)().version for i in range(6)]

    results = run_together([many(p) for p in packs])
    assert results == [list(range(5, 11))] * WORKERS
    assert ledger.verify().ok is True
    assert audit_chain_verify().ok is True


def test_one_cell_assembled_into_two_modules_at_once_lands_in_one():
    for _ in range(3):
        cell = make_passport("cell", "qa_passed")
        modules = [make_passport("module", "qa_passed") for _ in range(WORKERS)]
        results = run_together([assembling(m, [cell]) for m in modules])
        assert outcome(results) == Counter(
            {"list": 1, "already_assembled": WORKERS - 1}
        )
        cell.refresh_from_db()
        assert versions(cell) == [1, 2, 3]
        winner = [
            m for m, r in zip(modules, results, strict=True) if isinstance(r, list)
        ]
        assert [cell.parent_id] == [m.pk for m in winner]
    assert ledger.verify().ok is True


def test_crossed_assemblies_lock_in_one_order_and_do_not_deadlock():
    # [a, b] into one module while [b, a] go into another: without id-ordered
    # locking each would hold one cell and wait for the other.
    for _ in range(4):
        a, b = (make_passport("cell", "qa_passed") for _ in range(2))
        left, right = (make_passport("module", "qa_passed") for _ in range(2))
        results = run_together([assembling(left, [a, b]), assembling(right, [b, a])])
        assert outcome(results) == Counter({"list": 1, "already_assembled": 1})
        parents = set(
            Passport.objects.filter(pk__in=[a.pk, b.pk]).values_list(
                "parent", flat=True
            )
        )
        assert parents in ({left.pk}, {right.pk})


def test_hold_racing_dispatch_never_ships_a_held_pack():
    for _ in range(6):
        pack = make_passport("pack", "warehoused")
        hold = lambda p=pack: services.passport_event_record(  # noqa: E731
            passport_id=p.pk, kind=E.HELD, data={"reason": "Recall"}, actor=None
        )
        ship = lambda p=pack: dispatch.product_move_to_past(  # noqa: E731
            passport_id=p.pk, carrier="DHL", actor=None
        )
        results = run_together([hold, ship])
        kinds = list(
            PassportEvent.objects.filter(passport=pack)
            .order_by("version")
            .values_list("kind", flat=True)
        )
        if isinstance(results[1], DomainError):
            # the hold came first; the dispatch was refused and wrote nothing
            assert results[1].code == "on_hold"
            assert kinds[4:] == [E.HELD]
        else:
            assert kinds[4:] == [E.DISPATCHED, E.HELD]
        assert not isinstance(results[0], Exception)
    assert ledger.verify().ok is True
