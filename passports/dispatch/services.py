"""The dispatch desk's live/past lifecycle (dispatch contract), on the ledger.

A product (a passport) is *live* while its latest ``DispatchJob`` is ``ON`` and
*past* once it is ``OFF``. It is *dispatchable* when it is live and its
lifecycle lets it ship now (``lifecycle.may_ship``: warehoused or reserved, not
on hold). Jobs move automatically with the ledger (``on_ledger_append``, a hook
the ledger calls without importing this module): warehousing opens a live job,
dispatching closes it (reason "dispatched"); the desk may also move a product to
past by hand, and reactivate it (only while it may still ship: not on hold).
Every move is a ledger event (and so an audit record) and is announced on the
``dispatch`` topic that the SSE stream carries.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from bpmos import events
from bpmos.errors import Conflict, IllegalTransition, InvalidInput, NotFound
from passports import events as passport_events
from passports import ledger, lifecycle
from passports.dispatch import selectors
from passports.dispatch.selectors import DISPATCHED_REASON
from passports.models import DispatchJob, EventKind, JobState, Passport, State

MOVED_TO_PAST_REASON = "moved to past"
_MAX_REASON = 300


def _announce_update(appended: ledger.Appended, job: DispatchJob | None) -> None:
    """Announce ``appended``'s passport's dispatchability; the desk's count is
    read once, after the last event of the append (a batch's included)."""
    passport = appended.passport
    appended.shared.setdefault(_UPDATES, []).append(
        (passport, selectors.is_dispatchable(passport, job))
    )


_UPDATES = "dispatch.updates"


def _announce_now(passport: Passport, job: DispatchJob | None) -> None:
    _announce_pending(
        {_UPDATES: [(passport, selectors.is_dispatchable(passport, job))]}
    )


def _announce_pending(shared: dict) -> None:
    pending = shared.pop(_UPDATES, [])
    if not pending:
        return
    count = selectors.dispatchable_queryset().count()
    for passport, is_dispatchable in pending:
        events.publish(
            passport_events.dispatchable_update(
                passport, is_dispatchable=is_dispatchable, count=count
            )
        )


def on_ledger_append(appended: ledger.Appended) -> None:
    """Keep the desk's jobs in step with the ledger: registered with
    ``ledger.on_append`` (``passports.apps``), so it runs inside ``append``'s
    transaction with the passport row locked. Warehousing opens a live job,
    dispatching closes it, and a change of ``may_ship`` (a hold, its release,
    a failed re-test) of a live product is announced (after the append's last
    event, with the desk's count then: once per batch)."""
    _job_follow(appended)
    if appended.last:
        _announce_pending(appended.shared)


def _job_follow(appended: ledger.Appended) -> None:
    passport, kind = appended.passport, appended.event.kind
    shipping_changed = lifecycle.may_ship(appended.before) != lifecycle.may_ship(
        appended.after
    )
    if kind not in (EventKind.WAREHOUSED, EventKind.DISPATCHED) and not (
        shipping_changed
    ):
        return  # cannot touch the desk: no need to read the job (most appends)
    job = selectors.latest_job(passport, lock=True)
    if kind == EventKind.WAREHOUSED and (job is None or job.state == JobState.OFF):
        job = DispatchJob.objects.create(
            passport=passport, state=JobState.ON, reason="warehoused"
        )
        _announce_update(appended, job)
        return
    if kind == EventKind.DISPATCHED and job is not None and job.state == JobState.ON:
        job.state, job.reason = JobState.OFF, DISPATCHED_REASON
        job.save(update_fields=["state", "reason", "updated_at"])
        events.publish(passport_events.moved_to_past(passport, job, at=timezone.now()))
        _announce_update(appended, job)
        return
    if job is not None and job.state == JobState.ON and shipping_changed:
        _announce_update(appended, job)


def _reason(reason: Any) -> str:
    reason = (reason or "").strip() if isinstance(reason, str) else reason
    if not isinstance(reason, str) or not reason:
        raise InvalidInput(
            "A reason is required.",
            code="validation_error",
            details={"reason": ["A reason is required."]},
        )
    if len(reason) > _MAX_REASON:
        raise InvalidInput(
            f"The reason is longer than {_MAX_REASON} characters.",
            code="validation_error",
            details={"reason": [f"At most {_MAX_REASON} characters."]},
        )
    return reason


def _check_job(passport: Passport, job: DispatchJob | None, job_id: Any) -> DispatchJob:
    if job is None:
        raise NotFound(f"{passport} has no dispatch job.", code="job_not_found")
    if job_id not in (None, "") and str(job_id) != str(job.pk):
        wanted = str(job_id).strip()
        if not (
            wanted.isdecimal()  # not isdigit: int("²") fails
            and DispatchJob.objects.filter(pk=int(wanted), passport=passport).exists()
        ):
            raise NotFound(
                f"Job {job_id} not found for {passport}.",
                code="job_not_found",
                details={"jobId": str(job_id), "latestJobId": str(job.pk)},
            )
        raise Conflict(
            f"Job {job_id} is not the latest job of {passport} (that is {job.pk}).",
            code="stale_job",
            details={"jobId": str(job_id), "latestJobId": str(job.pk)},
        )
    return job


def product_move_to_past(
    *,
    passport_id: int,
    job_id: Any = None,
    reason: Any = DISPATCHED_REASON,
    carrier: str | None = None,
    actor: Any,
) -> tuple[Passport, DispatchJob]:
    """Move a live product to past. Reason "dispatched" dispatches it (custody to
    ``carrier``), which its lifecycle must allow; any other reason only takes it
    off the desk."""
    reason = _reason(reason)
    with transaction.atomic():
        passport = ledger.lock_passport(passport_id)
        job = _check_job(passport, selectors.latest_job(passport, lock=True), job_id)
        if job.state != JobState.ON:
            raise IllegalTransition(
                f"{passport} is already in past (job {job.pk}).",
                code="already_past",
                details={"currentState": job.state},
            )
        if reason.lower() == DISPATCHED_REASON:
            carrier = (carrier or "").strip() or "Logistics"
            # The ledger refuses a pack that failed QA, is on hold or was never
            # warehoused; on_ledger_append turns the job OFF and announces it.
            ledger.append(
                passport=passport,
                kind=EventKind.DISPATCHED,
                data={"carrier": carrier},
                actor=actor,
            )
            job.refresh_from_db()
            return passport, job
        job.state, job.reason = JobState.OFF, reason
        job.save(update_fields=["state", "reason", "updated_at"])
        ledger.append(
            passport=passport,
            kind=EventKind.MOVED_TO_PAST,
            data={"jobId": str(job.pk), "reason": reason},
            actor=actor,
        )
        events.publish(passport_events.moved_to_past(passport, job, at=timezone.now()))
        _announce_now(passport, job)
        return passport, job


def _not_shippable(
    passport: Passport, snapshot: lifecycle.Snapshot
) -> IllegalTransition:
    """Why a product that may not ship cannot go back on the desk (409)."""
    if snapshot.state not in lifecycle.SHIPPABLE:
        return IllegalTransition(
            f"{passport} is {State(passport.state).label}; only a warehoused or "
            "reserved product can be reactivated.",
            code="illegal_transition",
            details={"state": passport.state},
        )
    return IllegalTransition(
        f"{passport} is on hold ({snapshot.hold_reason}); release the hold first.",
        code="on_hold",
        details={"state": passport.state, "onHold": True},
    )


def product_reactivate(
    *, passport_id: int, job_id: Any = None, reason: Any = None, actor: Any
) -> tuple[Passport, DispatchJob]:
    """Put a past product back on the desk; only one that may still ship
    (``lifecycle.may_ship``: warehoused or reserved, not on hold; else 409)."""
    with transaction.atomic():
        passport = ledger.lock_passport(passport_id)
        job = _check_job(passport, selectors.latest_job(passport, lock=True), job_id)
        if job.state == JobState.ON:
            raise IllegalTransition(
                f"{passport} is already live (job {job.pk}).",
                code="already_live",
                details={"currentState": job.state},
            )
        snapshot = ledger.snapshot_of(passport)
        if not lifecycle.may_ship(snapshot):
            raise _not_shippable(passport, snapshot)
        note = (reason or "").strip() if isinstance(reason, str) else ""
        job.state, job.reason = JobState.ON, note[:_MAX_REASON] or "reactivated"
        job.save(update_fields=["state", "reason", "updated_at"])
        ledger.append(
            passport=passport,
            kind=EventKind.REACTIVATED,
            data={"jobId": str(job.pk), "reason": job.reason},
            actor=actor,
        )
        events.publish(passport_events.reactivated(passport, job, at=timezone.now()))
        _announce_now(passport, job)
        return passport, job


def product_state_update(
    *,
    passport_id: int,
    job_id: Any = None,
    state: Any,
    reason: Any = None,
    carrier: str | None = None,
    actor: Any,
) -> tuple[Passport, DispatchJob]:
    """Set a product's desk state: ``OFF`` moves it to past (reason "moved to
    past" unless given; "dispatched" dispatches it), ``ON`` reactivates it."""
    if state == JobState.OFF:
        return product_move_to_past(
            passport_id=passport_id,
            job_id=job_id,
            reason=reason if reason not in (None, "") else MOVED_TO_PAST_REASON,
            carrier=carrier,
            actor=actor,
        )
    if state == JobState.ON:
        return product_reactivate(
            passport_id=passport_id, job_id=job_id, reason=reason, actor=actor
        )
    raise InvalidInput(
        'state must be "ON" or "OFF".',
        code="validation_error",
        details={"state": ['One of "ON", "OFF".']},
    )
