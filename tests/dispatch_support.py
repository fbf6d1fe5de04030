"""Batteries for the dispatch desk's tests, built through the passport services
(register, record events, the desk's moves) exactly as the API builds them."""

from __future__ import annotations

from django.db import transaction

from bpmos.events.models import OutboxEvent
from elog.models import AuditRecord
from passports import ledger, services, signatures
from passports.dispatch import services as dispatch
from passports.models import DispatchJob, EventKind, Passport, PassportEvent
from tests.conftest import PASSWORD


def register(actor, serial: str, *, kind: str = "pack", lot: str = "LOT-7") -> Passport:
    return services.passport_register(
        data={
            "kind": kind,
            "chemistry": "LFP",
            "serial": serial,
            "model": "BP-48V-100" if kind == "pack" else "LFP-CELL-100",
            "lot": lot,
            "manufacturer": "Acme Batteries",
            "site": "Pune Plant 1",
            "rated_capacity_ah": 100,
            "nominal_voltage_v": 48 if kind == "pack" else 3.2,
            "energy_kwh": 4.8 if kind == "pack" else 0.32,
        },
        actor=actor,
    )


def record(actor, passport: Passport, kind: str, **data) -> None:
    services.passport_event_record(
        passport_id=passport.pk,
        kind=kind,
        data=data,
        actor=actor,
        password=PASSWORD if kind in signatures.SIGNED_KINDS else None,
    )


@transaction.atomic
def make_pack(
    actor,
    serial: str,
    *,
    until: str = "warehoused",
    location: str = "WH-A / Rack 3",
) -> Passport:
    """A pack taken through its life up to ``until``: "manufactured",
    "provisioned", "warehoused", "reserved", "held" (warehoused, then on hold),
    "qa_failed" (warehoused, then failed a re-test), "dispatched"."""
    passport = register(actor, serial)
    if until == "manufactured":
        return _fresh(passport)
    record(actor, passport, EventKind.QA_PASSED, test="EOL-1")
    ledger.append(
        passport=passport.pk, kind=EventKind.PROVISIONED, data={"node": 5}, actor=actor
    )
    if until == "provisioned":
        return _fresh(passport)
    record(actor, passport, EventKind.WAREHOUSED, location=location)
    if until == "reserved":
        record(actor, passport, EventKind.RESERVED, reference="SO-1001")
    elif until == "held":
        record(actor, passport, EventKind.HELD, reason="Swollen cell suspected")
    elif until == "qa_failed":
        record(actor, passport, EventKind.QA_FAILED, reason="Insulation test")
    elif until == "dispatched":
        dispatch.product_move_to_past(
            passport_id=passport.pk, carrier="BlueDart", actor=actor
        )
    return _fresh(passport)


def _fresh(passport: Passport) -> Passport:
    return Passport.objects.get(pk=passport.pk)


def latest_job(passport: Passport) -> DispatchJob | None:
    return DispatchJob.objects.filter(passport=passport).order_by("-pk").first()


def footprint(passport: Passport) -> dict:
    """Everything a refused move must leave as it was."""
    passport = _fresh(passport)
    job = latest_job(passport)
    return {
        "passport": (passport.state, passport.on_hold, passport.version),
        "custodian": (passport.custodian_kind, passport.custodian_name),
        "job": (job.pk, job.state, job.reason) if job else None,
        "jobs": DispatchJob.objects.filter(passport=passport).count(),
        "events": PassportEvent.objects.filter(passport=passport).count(),
        "outbox": OutboxEvent.objects.count(),
        "audit": AuditRecord.objects.count(),
    }
