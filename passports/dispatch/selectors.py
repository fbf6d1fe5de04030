"""Reads of the dispatch desk (dispatch contract): the dispatchable list, one
product's lifecycle, its live/past transitions, and the dashboard's counts.

A product is *dispatchable* when its latest job is ``ON`` and its lifecycle
lets it ship now: ``is_dispatchable`` on one product and
``dispatchable_filter`` in a query, both from ``lifecycle.MAY_SHIP``, the one
statement of that rule. The moves are ``passports.dispatch.services``'. A
product is a passport; its ``productId`` is its serial, and any identifier
``passports.selectors.resolve`` knows finds it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.fields.json import KT
from django.utils import timezone

from bpmos.compiled import rows_get
from bpmos.errors import NotFound
from bpmos.listrows import time_texts
from passports import ledger, lifecycle, selectors
from passports.models import (
    DispatchJob,
    EventKind,
    JobState,
    Passport,
    PassportEvent,
    State,
)

# The reason a dispatch gives its job (the services write it, the replay reads it).
DISPATCHED_REASON = "dispatched"
# Ledger events that move a product between live (ON) and past (OFF).
TRANSITION_KINDS = (
    EventKind.DISPATCHED,
    EventKind.MOVED_TO_PAST,
    EventKind.REACTIVATED,
)


def product_get(*, product_id: Any) -> Passport:
    """The product (passport) ``product_id`` names: serial, UUID, BPAN, barcode
    or RFID. 404 ``product_not_found`` when none has it."""
    value = product_id.strip() if isinstance(product_id, str) else ""
    if not value:
        raise NotFound("Product not found.", code="product_not_found")
    try:
        return selectors.resolve(value)
    except NotFound:
        raise NotFound(
            f"Product {value[:64]} not found.",
            code="product_not_found",
            details={"productId": value[:64]},
        ) from None


def _latest_job(field_name: str) -> Subquery:
    return Subquery(
        DispatchJob.objects.filter(passport=OuterRef("pk"))
        .order_by("-pk")
        .values(field_name)[:1]
    )


def latest_job(passport: Passport, *, lock: bool = False) -> DispatchJob | None:
    """The product's latest dispatch job (locked for update with ``lock``)."""
    qs = DispatchJob.objects.filter(passport=passport).order_by("-pk")
    if lock:
        qs = qs.select_for_update()
    return qs.first()


def is_dispatchable(passport: Passport, job: DispatchJob | None) -> bool:
    """Whether the product is live (``job`` is its latest, ``ON``) and may ship."""
    return (
        job is not None
        and job.state == JobState.ON
        and lifecycle.may_ship(ledger.snapshot_of(passport))
    )


def dispatchable_filter() -> Q:
    """``is_dispatchable`` as a filter on passports annotated with their latest
    job's state as ``job_state``."""
    return Q(job_state=JobState.ON) & lifecycle.may_ship_filter()


def dispatchable_queryset():
    """Passports whose latest job is ON and which may ship now, by serial.

    Only passports with some ON job are looked at (the jobs' (state, passport)
    index): a latest job ON is one of them, and they are the desk's live
    products, not every battery the plant ever made."""
    live = DispatchJob.objects.filter(state=JobState.ON).values("passport_id")
    return (
        Passport.objects.filter(pk__in=live)
        .annotate(job_state=_latest_job("state"))
        .filter(dispatchable_filter())
        .order_by("serial")
    )


def dispatchable_list() -> list[Passport]:
    """Products whose latest job is ON and which may ship now, by serial, each
    with ``job_id`` and ``location`` (where it was last warehoused). One query.

    Only the columns the desk's row shows (``DispatchableProductSerializer``):
    the passport's other columns include seven JSON documents, decoded for
    every live product and never shown."""
    return list(
        dispatchable_queryset()
        .only("id", "serial", "bpan", "kind", "model", "lot", "state", "updated_at")
        .annotate(job_id=_latest_job("pk"), location=_warehoused_location())
    )


# The columns of the desk's row, as ``values()`` rows (``dispatchable_rows``).
DISPATCHABLE_ROW_FIELDS = (
    "serial",
    "bpan",
    "kind",
    "model",
    "lot",
    "state",
    "job_id",
    "location",
)


def dispatchable_rows() -> list[dict]:
    """``dispatchable_list`` as ``values()`` rows of ``DISPATCHABLE_ROW_FIELDS``
    and ``updated_at_text`` (``bpmos.listrows.time_texts``, whole seconds): no
    model instance per product (the desk's list page). One query, its
    statement kept compiled and prepared (``bpmos.compiled.rows_get``: it has
    no parameter but the printing of its times, which follows the zone)."""

    def make():
        return (
            dispatchable_queryset()
            .annotate(job_id=_latest_job("pk"), location=_warehoused_location())
            .values(
                *DISPATCHABLE_ROW_FIELDS,
                **time_texts(["updated_at"], whole_seconds=True),
            )
        )

    shape = ("dispatch.dispatchable_rows", timezone.get_current_timezone_name())
    return rows_get(shape, make, prepared=True)


def _warehoused_location() -> Subquery:
    """Where the passport was last warehoused (its event's ``location``), read
    as text by the database (``->>``): the service records it as text
    (``passports.services``), so it is the same string without a JSON document
    decoded per row."""
    return Subquery(
        PassportEvent.objects.filter(passport=OuterRef("pk"), kind=EventKind.WAREHOUSED)
        .order_by("-version")
        .values(location_text=KT("data__location"))[:1]
    )


def reactivatable_list(*, limit: int = 50) -> list[Passport]:
    """Products taken off the desk (latest job OFF) that may still ship, so the
    desk may put them back (``services.product_reactivate``'s rule): the most
    recently moved first, each with ``job_id``, ``job_reason`` and ``moved_at``.
    A dispatched product is not among them (it has left the plant). One query."""
    return list(
        Passport.objects.annotate(
            job_state=_latest_job("state"),
            job_id=_latest_job("pk"),
            job_reason=_latest_job("reason"),
            moved_at=_latest_job("updated_at"),
        )
        .filter(Q(job_state=JobState.OFF) & lifecycle.may_ship_filter())
        .order_by("-moved_at", "serial")[:limit]
    )


# --- one product's lifecycle ----------------------------------------------------


@dataclass(frozen=True)
class Transition:
    """One move between live (ON) and past (OFF), as the ledger recorded it."""

    from_state: str
    to_state: str
    reason: str
    at: datetime
    by: str
    job_id: str | None
    event: str
    version: int
    carrier: str = ""


@dataclass(frozen=True)
class ProductLifecycle:
    """Everything the desk shows of one product: where it is in its life, its
    desk state, every ledger event (stage) and every live/past move."""

    passport: Passport
    job: DispatchJob | None
    is_dispatchable: bool
    events: list[PassportEvent]
    jobs: list[DispatchJob]
    transitions: list[Transition] = field(default_factory=list)

    @property
    def current_state(self) -> str | None:
        return self.job.state if self.job is not None else None


def _transitions(
    events: list[PassportEvent], jobs: list[DispatchJob]
) -> list[Transition]:
    """Replay the desk's job state along the ledger (the rules of
    ``services.on_ledger_append``): warehousing opens the next job when none is
    live, dispatching closes a live one, the desk moves and reactivates."""
    upcoming = iter(sorted(jobs, key=lambda j: j.pk))
    job_id: str | None = None
    state: str | None = None
    found: list[Transition] = []

    def add(event: PassportEvent, to_state: str, reason: str, **extra) -> None:
        found.append(
            Transition(
                from_state=state or JobState.OFF,
                to_state=to_state,
                reason=reason,
                at=event.occurred_at,
                by=event.actor_username,
                job_id=str(event.data.get("jobId") or job_id or "") or None,
                event=event.kind,
                version=event.version,
                **extra,
            )
        )

    for event in events:
        if event.kind == EventKind.WAREHOUSED and state in (None, JobState.OFF):
            job = next(upcoming, None)
            job_id = str(job.pk) if job is not None else job_id
            state = JobState.ON
        elif event.kind == EventKind.DISPATCHED and state == JobState.ON:
            add(
                event,
                JobState.OFF,
                DISPATCHED_REASON,
                carrier=str(event.data.get("carrier", "")),
            )
            state = JobState.OFF
        elif event.kind == EventKind.MOVED_TO_PAST:
            add(event, JobState.OFF, str(event.data.get("reason", "")))
            state = JobState.OFF
        elif event.kind == EventKind.REACTIVATED:
            add(event, JobState.ON, str(event.data.get("reason", "")))
            state = JobState.ON
    return found


def product_lifecycle(*, passport: Passport) -> ProductLifecycle:
    """The lifecycle of one product (three queries)."""
    events = list(
        PassportEvent.objects.filter(passport=passport).order_by("version", "pk")
    )
    jobs = list(DispatchJob.objects.filter(passport=passport).order_by("-pk"))
    job = jobs[0] if jobs else None
    return ProductLifecycle(
        passport=passport,
        job=job,
        is_dispatchable=is_dispatchable(passport, job),
        events=events,
        jobs=jobs,
        transitions=_transitions(events, jobs),
    )


def product_transitions(*, passport: Passport) -> list[Transition]:
    """The product's moves between live and past, oldest first."""
    return product_lifecycle(passport=passport).transitions


# --- dashboard ------------------------------------------------------------------


@dataclass(frozen=True)
class ProductCounts:
    """Products (passports) by desk state and lifecycle state."""

    total: int
    live: int
    past: int
    dispatchable: int
    on_hold: int
    by_state: dict[str, int]


@dataclass(frozen=True)
class DispatchStatistics:
    """Desk activity today; ``moved_to_past_today`` counts dispatches too."""

    dispatched_today: int
    moved_to_past_today: int
    reactivated_today: int
    warehoused_today: int
    since: datetime
    last_dispatched_at: datetime | None


def product_counts() -> ProductCounts:
    """Products live (latest job ON), past (OFF), dispatchable, on hold, and by
    lifecycle state (display names, every state listed). Two queries."""
    job_state = _latest_job("state")
    totals = Passport.objects.annotate(job_state=job_state).aggregate(
        total=Count("pk"),
        live=Count("pk", filter=Q(job_state=JobState.ON)),
        past=Count("pk", filter=Q(job_state=JobState.OFF)),
        dispatchable=Count("pk", filter=dispatchable_filter()),
        on_hold=Count("pk", filter=Q(on_hold=True)),
    )
    states = Counter(
        dict(
            Passport.objects.order_by()
            .values_list("state")
            .annotate(n=Count("pk"))
            .values_list("state", "n")
        )
    )
    return ProductCounts(
        by_state={s.label: states.get(s.value, 0) for s in State},
        **totals,
    )


def dispatch_statistics(*, now: datetime | None = None) -> DispatchStatistics:
    """Desk moves since the start of today (``TIME_ZONE``'s day). Two queries."""
    now = now or timezone.now()
    since = timezone.make_aware(
        datetime.combine(timezone.localdate(now), time.min),
        timezone.get_current_timezone(),
    )
    today = Counter(
        dict(
            PassportEvent.objects.filter(
                occurred_at__gte=since,
                kind__in=[*TRANSITION_KINDS, EventKind.WAREHOUSED],
            )
            .order_by()
            .values_list("kind")
            .annotate(n=Count("pk"))
            .values_list("kind", "n")
        )
    )
    last = (
        PassportEvent.objects.filter(kind=EventKind.DISPATCHED)
        .order_by("-occurred_at")
        .values_list("occurred_at", flat=True)
        .first()
    )
    return DispatchStatistics(
        dispatched_today=today[EventKind.DISPATCHED],
        # Both go out as product_moved_to_past on the stream.
        moved_to_past_today=today[EventKind.DISPATCHED]
        + today[EventKind.MOVED_TO_PAST],
        reactivated_today=today[EventKind.REACTIVATED],
        warehoused_today=today[EventKind.WAREHOUSED],
        since=since,
        last_dispatched_at=last,
    )
