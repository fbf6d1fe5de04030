"""Reads of passports: the lists, one passport and its ledger, identity
resolution and genealogy."""

from __future__ import annotations

import calendar
import contextlib
import uuid as uuid_module
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import reduce
from operator import or_

from django.db import connection
from django.db.models import (
    Avg,
    BigIntegerField,
    Count,
    DecimalField,
    F,
    FloatField,
    Func,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.utils import timezone

from bpmos.compiled import rows_get
from bpmos.errors import Conflict, NotFound
from bpmos.series import per_bucket
from bpmos.totals import Totals, per_window
from passports import bpan as bpan_rules
from passports import rollups
from passports.models import (
    CustodianKind,
    CustodyUnitCount,
    EventKind,
    FirstQaHour,
    FirstQaResult,
    Passport,
    PassportEvent,
    State,
    TelemetryModelHour,
    TelemetryReading,
)

# The kept count (bpmos.rowcounts; this app's migration "kept_count") of
# ``passport_list()``'s rows (every passport).
PASSPORTS_COUNTED = "passports.passports"


def passport_list() -> QuerySet[Passport]:
    """Every passport (the list's filters, search and ordering apply to it)."""
    return Passport.objects.all()


def registry_list() -> QuerySet[Passport]:
    """Every passport with its last ledger event's kind and time
    (``last_event_kind``, ``last_event_occurred_at``): the registry."""
    last = PassportEvent.objects.filter(
        passport=OuterRef("pk"), version=OuterRef("version")
    )
    return Passport.objects.annotate(
        last_event_kind=Subquery(last.values("kind")[:1]),
        last_event_occurred_at=Subquery(last.values("occurred_at")[:1]),
    )


def passport_get(*, passport_id: int) -> Passport:
    """One passport by id, as stored now."""
    return Passport.objects.get(pk=passport_id)


def event_list(*, passport: Passport) -> QuerySet[PassportEvent]:
    """A passport's ledger, oldest first."""
    return PassportEvent.objects.filter(passport=passport).order_by("version")


def parent_get(*, passport: Passport) -> Passport | None:
    """The module or pack a battery was assembled into, if any."""
    if passport.parent_id is None:
        return None
    return Passport.objects.get(pk=passport.parent_id)


def component_count(*, passport: Passport) -> int:
    """How many batteries were assembled into this one."""
    return Passport.objects.filter(parent=passport).count()


# The identifiers a battery can be found by, in the order they are tried.
IDENTIFIERS = ("uuid", "bpan", "serial", "barcode", "rfid")


def resolve(identifier: str, queryset: QuerySet[Passport] | None = None) -> Passport:
    """The passport an identifier names: its UUID, BPAN, serial, barcode or RFID.

    404 when none has it; 409 ``ambiguous_identifier`` when the same string is
    one passport's serial and another's barcode (say), naming both.
    """
    qs = queryset if queryset is not None else Passport.objects.all()
    value = (identifier or "").strip()
    if not _plausible(value):
        raise NotFound("No passport has this identifier.")
    found = list(qs.filter(_condition(value))[:3])
    if not found:
        raise NotFound("No passport has this identifier.")
    if len(found) > 1:
        raise Conflict(
            "More than one passport answers to this identifier; use its UUID.",
            code="ambiguous_identifier",
            details={"matches": [str(p.uuid) for p in found]},
        )
    return found[0]


def passport_by_digital_link(*, gtin: str, serial: str) -> Passport | None:
    """The passport a GS1 Digital Link names (GTIN-14 and serial, as
    ``passports.gs1.parse_path`` checked them), or None."""
    return Passport.objects.filter(gtin=gtin, serial=serial).first()


def _plausible(value: str) -> bool:
    """Whether ``value`` could be an identifier at all: 1 to 64 printable
    characters. A NUL, a control character or a lone surrogate names no
    passport, and PostgreSQL could not even be asked (found by the schema
    fuzz: the batch and the grants took the identifier from a JSON body)."""
    return 0 < len(value) <= 64 and value.isprintable()


def _condition(value: str) -> Q:
    condition = Q(serial=value) | Q(barcode=value.upper()) | Q(rfid=value.upper())
    with contextlib.suppress(ValueError):
        condition |= Q(uuid=uuid_module.UUID(value))
    compact = bpan_rules.compact(value)
    if len(compact) == bpan_rules.LENGTH:
        condition |= Q(bpan=compact)
    return condition


def _answers_to(passport: Passport, value: str) -> bool:
    """Whether ``passport`` is one ``_condition(value)`` finds."""
    with contextlib.suppress(ValueError):
        if uuid_module.UUID(value) == passport.uuid:
            return True
    compact = bpan_rules.compact(value)
    return (
        passport.serial == value
        or (bool(passport.barcode) and passport.barcode == value.upper())
        or (bool(passport.rfid) and passport.rfid == value.upper())
        or (
            len(compact) == bpan_rules.LENGTH
            and bool(passport.bpan)
            and passport.bpan == compact
        )
    )


def resolve_many(identifiers: list[str]) -> dict[str, Passport | Exception]:
    """``resolve`` for many identifiers in one query (a batch of events): each
    identifier maps to its passport, or to the ``NotFound``/``Conflict`` that
    ``resolve`` would raise for it."""
    wanted = {identifier: (identifier or "").strip() for identifier in identifiers}
    answers: dict[str, Passport | Exception] = {}
    by: dict[str, set] = {"serial": set(), "code": set(), "uuid": set(), "bpan": set()}
    for identifier, value in wanted.items():
        if not _plausible(value):
            answers[identifier] = NotFound("No passport has this identifier.")
            continue
        by["serial"].add(value)
        by["code"].add(value.upper())
        with contextlib.suppress(ValueError):
            by["uuid"].add(uuid_module.UUID(value))
        compact = bpan_rules.compact(value)
        if len(compact) == bpan_rules.LENGTH:
            by["bpan"].add(compact)
    # _condition of every identifier, as one IN per column.
    condition = (
        Q(serial__in=by["serial"])
        | Q(barcode__in=by["code"])
        | Q(rfid__in=by["code"])
        | Q(uuid__in=by["uuid"])
        | Q(bpan__in=by["bpan"])
    )
    rows = []
    if len(answers) < len(wanted):
        rows = list(Passport.objects.filter(condition))
    for identifier, value in wanted.items():
        if identifier in answers:
            continue
        found = [p for p in rows if _answers_to(p, value)]
        if not found:
            answers[identifier] = NotFound("No passport has this identifier.")
        elif len(found) > 1:
            answers[identifier] = Conflict(
                "More than one passport answers to this identifier; use its UUID.",
                code="ambiguous_identifier",
                details={"matches": [str(p.uuid) for p in found[:3]]},
            )
        else:
            answers[identifier] = found[0]
    return answers


def matched_by(passport: Passport, identifier: str) -> str:
    """Which identifier of ``passport`` the string matched (for the lookup reply)."""
    value = identifier.strip()
    with contextlib.suppress(ValueError):
        if uuid_module.UUID(value) == passport.uuid:  # any form resolve accepts
            return "uuid"
    if passport.bpan and passport.bpan == bpan_rules.compact(value):
        return "bpan"
    if passport.serial == value:
        return "serial"
    if passport.barcode and passport.barcode == value.upper():
        return "barcode"
    return "rfid"


def ancestors(passport: Passport) -> list[Passport]:
    """The module a cell is in, then the pack (nearest first)."""
    chain, current = [], passport
    while current.parent_id is not None and len(chain) < 3:
        current = Passport.objects.get(pk=current.parent_id)
        chain.append(current)
    return chain


def components_tree(passport: Passport) -> list[dict]:
    """What a pack or module is made of, as a tree (two queries at most)."""
    level1 = list(Passport.objects.filter(parent=passport).order_by("serial"))
    level2: dict[int, list[Passport]] = {}
    if level1:
        for child in Passport.objects.filter(parent__in=level1).order_by("serial"):
            level2.setdefault(child.parent_id, []).append(child)
    return [
        {
            "passport": child,
            "components": [
                {"passport": g, "components": []} for g in level2.get(child.pk, [])
            ],
        }
        for child in level1
    ]


# --- context for the control tower (runbook detail) --------------------------------

# Warranty cover ending within this many days counts as "expiring soon".
WARRANTY_EXPIRING_DAYS = 90
# The runbook detail names at most this many custodians (the largest holders).
CUSTODIANS_SHOWN = 10


@dataclass(frozen=True)
class CustodyShare:
    kind: str  # display label, "Manufacturer"
    count: int


@dataclass(frozen=True)
class CustodianCount:
    kind: str  # display label
    name: str
    count: int


@dataclass(frozen=True)
class CustodyContext:
    """Who holds the batteries of some lots now."""

    passports: int
    mix: list[CustodyShare]  # every custodian kind, in chain order
    custodians: list[CustodianCount]  # largest holders first


@dataclass(frozen=True)
class WarrantyContext:
    """Where the batteries of some lots stand on warranty.

    Cover starts at delivery (the ``delivered`` ledger event) and lasts the
    passport's ``warranty_months``. ``expiring_soon`` is part of
    ``under_warranty``; ``not_delivered + under_warranty + expired == passports``.
    """

    passports: int
    not_delivered: int
    under_warranty: int
    expiring_soon: int
    expired: int
    next_expiry: datetime | None


# A unit with a lot (``_units``), as SQL over a passport row ``{p}``: word for
# word the condition of the ``passport_unit_lot_idx`` index, so the planner
# reads the units' lots off that index.
UNIT_LOT_SQL = (
    "{p}parent_id IS NULL AND NOT ({p}lot = '') AND NOT ({p}state = 'superseded')"
)


def unit_lots_among(lots: QuerySet) -> RawSQL:
    """The distinct lots of the units (``_units``) that are among ``lots`` (a
    queryset of lot values), as a subquery for ``lot__in``.

    Driven from the units' side: a plant has a few hundred lots with units
    (a production day's, a shipment's) while one runbook's work orders carry
    tens of thousands of lots over a year. The units' distinct lots are read
    one index descent each (a recursive "next lot after this one" over
    ``passport_unit_lot_idx``: a loose index scan), and each is looked up in
    ``lots`` (for a runbook's work orders, one probe of their (runbook, lot)
    index). Matching every unit against every lot instead hashed the
    runbook's 50,000 lots per request (docs/performance.md). PostgreSQL and
    SQLite alike."""
    table = connection.ops.quote_name(Passport._meta.db_table)
    inner, params = lots.order_by().query.sql_with_params()
    sql = (
        "WITH RECURSIVE unit_lot(lot) AS ("
        f"SELECT MIN(lot) FROM {table} WHERE {UNIT_LOT_SQL.format(p='')} "
        "UNION ALL "
        f"SELECT (SELECT MIN(p.lot) FROM {table} p WHERE p.lot > unit_lot.lot AND "
        f"{UNIT_LOT_SQL.format(p='p.')}) FROM unit_lot WHERE unit_lot.lot IS NOT NULL"
        f") SELECT lot FROM unit_lot WHERE lot IN ({inner})"
    )
    return RawSQL(sql, params)


def _lots(lots: Iterable[str] | QuerySet) -> list[str] | QuerySet | None:
    """``lots`` as a filter value: a queryset of lot values (one column) stays
    a subquery, so a caller with tens of thousands of lots (a runbook's work
    orders over a plant-year) sends none of them through Python; other
    iterables are deduplicated, blanks dropped; None when nothing is left."""
    if isinstance(lots, QuerySet):
        return lots
    return [lot for lot in set(lots) if lot] or None


def _units(lots: list[str] | QuerySet) -> QuerySet[Passport]:
    """The batteries of ``lots`` as units: passports not assembled into another
    (a pack with its modules and cells counts once; a loose cell counts; a
    battery given a second life counts as its successor, not its superseded
    passport, as in ``custody_mix``). A blank lot is no lot."""
    if isinstance(lots, QuerySet):  # many lots: from the units' few (above)
        lots = unit_lots_among(lots)
    return (
        Passport.objects.filter(lot__in=lots, parent__isnull=True)
        .exclude(lot="")
        .exclude(state=State.SUPERSEDED)
    )


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` plus whole calendar months (day clamped to the month's end)."""
    year, month0 = divmod(moment.month - 1 + months, 12)
    year += moment.year
    day = min(moment.day, calendar.monthrange(year, month0 + 1)[1])
    return moment.replace(year=year, month=month0 + 1, day=day)


def custody_context(*, lots: Iterable[str] | QuerySet) -> CustodyContext | None:
    """The custody mix of the batteries of ``lots`` (lot values, or a queryset
    of them: ``_lots``): counts by custodian kind and the current custodians
    (the largest ``CUSTODIANS_SHOWN``); None when those lots have no
    passports. One query."""
    lots = _lots(lots)
    if lots is None:
        return None
    rows = list(
        _units(lots)
        .order_by()
        .values_list("custodian_kind", "custodian_name")
        .annotate(n=Count("pk"))
    )
    if not rows:
        return None
    by_kind = Counter()
    for kind, _, n in rows:
        by_kind[kind] += n
    chain = {kind: position for position, kind in enumerate(CustodianKind.values)}
    rows.sort(key=lambda row: (-row[2], chain.get(row[0], 99), row[1]))
    return CustodyContext(
        passports=sum(by_kind.values()),
        mix=[
            CustodyShare(kind=label, count=by_kind.get(value, 0))
            for value, label in CustodianKind.choices
        ],
        custodians=[
            CustodianCount(kind=CustodianKind(kind).label, name=name, count=n)
            for kind, name, n in rows[:CUSTODIANS_SHOWN]
        ],
    )


def warranty_context(
    *, lots: Iterable[str] | QuerySet, now: datetime | None = None
) -> WarrantyContext | None:
    """The warranty standing of the batteries of ``lots`` (see ``WarrantyContext``);
    None when those lots have no passports. One query. ``lots`` as in
    ``custody_context``.

    On PostgreSQL the database counts the buckets (one row back, whatever the
    number of batteries: a runbook whose lots match a plant-year's 9,000
    units, each delivered at its own moment, sent 9,000 groups through
    Python); elsewhere (SQLite, the embedded plant) the rows are grouped by
    warranty length and delivery time and counted here. Both end a cover at
    ``add_months(delivered, warranty_months)``: PostgreSQL's ``+ make_interval
    (months => n)`` on a UTC session clamps the day to the month's end the
    same way (``tests/test_control_tower_custody.py`` checks they agree)."""
    lots = _lots(lots)
    if lots is None:
        return None
    now = now or timezone.now()
    units = _units(lots).annotate(delivered_at=_delivered_at()).order_by()
    if connection.vendor == "postgresql":
        return _warranty_counted_in_sql(units, now)
    return _warranty_counted_here(units, now)


def _delivered_at() -> Subquery:
    """A passport's delivery: its first ``delivered`` event (one probe of the
    delivered events' index, ``passport_event_delivered_idx``)."""
    return Subquery(
        PassportEvent.objects.filter(passport=OuterRef("pk"), kind=EventKind.DELIVERED)
        .order_by("version")
        .values("occurred_at")[:1]
    )


def _warranty_counted_here(units: QuerySet, now: datetime) -> WarrantyContext | None:
    """``warranty_context`` from the units grouped by warranty length and
    delivery time (a shipment delivered together is one row)."""
    rows = list(
        units.values_list("warranty_months", "delivered_at").annotate(n=Count("pk"))
    )
    if not rows:
        return None
    soon = now + timedelta(days=WARRANTY_EXPIRING_DAYS)
    total = not_delivered = under = expiring = expired = 0
    next_expiry: datetime | None = None
    for months, delivered, n in rows:
        total += n
        if delivered is None:
            not_delivered += n
            continue
        ends = add_months(delivered, months)
        if ends <= now:
            expired += n
            continue
        under += n
        if ends <= soon:
            expiring += n
        next_expiry = ends if next_expiry is None else min(next_expiry, ends)
    return WarrantyContext(
        passports=total,
        not_delivered=not_delivered,
        under_warranty=under,
        expiring_soon=expiring,
        expired=expired,
        next_expiry=next_expiry,
    )


# ``_warranty_counted_here``'s buckets over the units' cover ends (PostgreSQL).
# ``OFFSET 0`` keeps the units' query a subquery, so each unit's delivery is
# looked up once, not once per bucket that reads its end.
_WARRANTY_BUCKETS = (
    "SELECT COUNT(*), COUNT(*) FILTER (WHERE ends IS NULL), "
    "COUNT(*) FILTER (WHERE ends > %s), "
    "COUNT(*) FILTER (WHERE ends > %s AND ends <= %s), "
    "COUNT(*) FILTER (WHERE ends <= %s), "
    "MIN(ends) FILTER (WHERE ends > %s) "
    "FROM (SELECT unit.delivered_at + make_interval(months => unit.warranty_months)"
    " AS ends FROM ({units}) AS unit OFFSET 0) AS cover"
)


def _warranty_counted_in_sql(units: QuerySet, now: datetime) -> WarrantyContext | None:
    """``warranty_context`` counted by PostgreSQL: one row."""
    sql, params = units.values(
        "warranty_months", "delivered_at"
    ).query.sql_with_params()
    soon = now + timedelta(days=WARRANTY_EXPIRING_DAYS)
    with connection.cursor() as cursor:
        cursor.execute(
            _WARRANTY_BUCKETS.format(units=sql), [now, now, soon, now, now, *params]
        )
        total, not_delivered, under, expiring, expired, next_expiry = cursor.fetchone()
    if not total:
        return None
    return WarrantyContext(
        passports=total,
        not_delivered=not_delivered,
        under_warranty=under,
        expiring_soon=expiring,
        expired=expired,
        next_expiry=next_expiry,
    )


# --- dashboard figures (bpmos.dashboards; docs/dashboards.md) ----------------------

# The telemetry a trend may follow: metric -> ``TelemetryReading`` column.
TELEMETRY_FIELDS = {
    "soh": "soh_percent",
    "soc": "soc_percent",
    "temperature": "temperature_c",
}


def custody_mix() -> dict[str, int]:
    """Batteries as units (passports not assembled into another: a pack counts
    once with its modules and cells; a battery given a second life counts once,
    as its successor: its superseded passport is not counted) per custodian
    kind, every kind in chain order (stored values). One query, over the
    counts the services keep (``CustodyUnitCount``, ``passports.rollups``): a
    row per kind, not a row per passport."""
    return custody_mix_read(rows_get(*custody_mix_statement()))


def custody_mix_statement() -> tuple:
    """``custody_mix`` as (shape, make) for ``bpmos.compiled``: rows of
    ``custodian_kind`` and ``units``, read by ``custody_mix_read``."""
    return ("custody_mix",), lambda: (
        CustodyUnitCount.objects.order_by().values("custodian_kind", "units")
    )


def custody_mix_read(rows: list[dict]) -> dict[str, int]:
    """``custody_mix`` of the rows of ``custody_mix_statement``."""
    found = {row["custodian_kind"]: row["units"] for row in rows}
    return {kind: found.get(kind, 0) for kind in CustodianKind.values}


def custody_mix_recount() -> dict[str, int]:
    """``custody_mix`` counted over the passports themselves (what the kept
    counts must always equal: the tests, a check after a bulk load). One
    query over every unit."""
    found = dict(
        Passport.objects.filter(parent__isnull=True)
        .exclude(state=State.SUPERSEDED)
        .order_by()
        .values("custodian_kind")
        .annotate(n=Count("pk"))
        .values_list("custodian_kind", "n")
    )
    return {kind: found.get(kind, 0) for kind in CustodianKind.values}


def passport_hold_count() -> int:
    """Passports on hold now (any kind). One query."""
    return passport_hold_totals().get()


def passport_hold_totals() -> Totals:
    """``passport_hold_count`` as ``Totals``, not run (``passport_on_hold_idx``)."""
    return Totals(
        Passport.objects.filter(on_hold=True),
        {"n": Count("pk")},
        lambda totals: int(totals["n"]),
    )


@dataclass(frozen=True)
class TelemetryPoint:
    """One bucket of telemetry samples."""

    mean: float
    minimum: float
    maximum: float
    samples: int


def _whole_hours_end(start: datetime, end: datetime) -> datetime:
    """Where the whole hours of [start, end) stop (``start`` is an hour's
    start): the roll-ups serve [start, this), the raw rows the rest."""
    return max(start, rollups.hour_floor(end))


def telemetry_series(
    *,
    metric: str,
    start: datetime,
    end: datetime,
    bucket: str,
    passport_id: int | None = None,
    model: str | None = None,
) -> dict[datetime, TelemetryPoint]:
    """One passport's (``passport_id``) or one model's (``model``: every
    passport of it) telemetry ``metric`` ("soh", "soc", "temperature") per
    ``bucket`` ("hour", "day", "week", UTC) over [start, end), ``start`` the
    start of a bucket: mean, minimum, maximum and number of samples that
    carry the value, aggregated in the database; buckets without samples
    absent. One query (two for a model's in the rare case below).

    A passport's series reads its samples (the (passport, ts) index); a
    model's reads the hourly roll-ups (``TelemetryModelHour``), and the
    samples of the last hour only when ``end`` falls inside it before some of
    them (its roll-up's ``last_ts``): a second query, then only."""
    column = TELEMETRY_FIELDS[metric]
    if passport_id is not None:
        readings = TelemetryReading.objects.filter(
            ts__gte=start,
            ts__lt=end,
            passport_id=passport_id,
            **{f"{column}__isnull": False},
        )
        return {
            row[0]: TelemetryPoint(
                mean=row[1], minimum=row[2], maximum=row[3], samples=row[4]
            )
            for row in per_bucket(
                readings,
                "ts",
                bucket,
                mean=Avg(column),
                minimum=Min(column),
                maximum=Max(column),
                n=Count("pk"),
            )
        }
    whole = rollups.hour_floor(end)
    hours = per_bucket(
        TelemetryModelHour.objects.filter(
            Q(hour__lt=whole) | Q(hour=whole, last_ts__lt=end),
            model=model,
            hour__gte=start,
            **{f"{metric}_count__gt": 0},
        ),
        "hour",
        bucket,
        total=Sum(f"{metric}_sum"),
        n=Sum(f"{metric}_count"),
        minimum=Min(f"{metric}_min"),
        maximum=Max(f"{metric}_max"),
    )
    # The last hour's roll-up when it holds samples at or after ``end`` (a
    # ``to`` in the past, inside an hour): at most one row, marked by its NULL
    # total (a bucket's total never is), and only then are that hour's samples
    # read, in a second query. Not united as a raw tail behind an EXISTS: the
    # planner costed that arm as a read of every passport of the model
    # (~14,000, a parallel seq scan over the passports) and started two
    # parallel workers for it on every request, ~10-20 ms, although the
    # EXISTS then skipped the whole arm.
    split = (
        TelemetryModelHour.objects.filter(
            model=model, hour=whole, last_ts__gte=end, **{f"{metric}_count__gt": 0}
        )
        .order_by()
        .values_list(
            "hour",
            Value(None, output_field=DecimalField()),
            Value(None, output_field=BigIntegerField()),
            Value(None, output_field=FloatField()),
            Value(None, output_field=FloatField()),
        )
    )
    rows = list(hours.union(split, all=True))
    if any(row[1] is None for row in rows):
        rows = [row for row in rows if row[1] is not None]
        rows += per_bucket(
            TelemetryReading.objects.filter(
                passport__model=model,
                ts__gte=max(start, whole),
                ts__lt=end,
                **{f"{column}__isnull": False},
            ),
            "ts",
            bucket,
            total=rollups.sample_sum(column),
            n=Count("pk"),
            minimum=Min(column),
            maximum=Max(column),
        )
    found: dict[datetime, list] = {}
    for t, total, n, low, high in rows:
        into = found.get(t)
        if into is None:
            found[t] = [Decimal(total), n, low, high]
        else:  # the last hour's bucket: roll-ups and samples
            into[0] += Decimal(total)
            into[1] += n
            into[2], into[3] = min(into[2], low), max(into[3], high)
    return {
        t: TelemetryPoint(
            mean=float(total / n), minimum=low, maximum=high, samples=int(n)
        )
        for t, (total, n, low, high) in found.items()
    }


@dataclass(frozen=True)
class FirstPass:
    """Passports whose first QA result fell in a window, and how many passed."""

    tested: int
    passed: int


def first_pass_counts(
    *, windows: dict[str, tuple[datetime, datetime]], kind: str | None = None
) -> dict[str, FirstPass]:
    """Per named window [start, end): passports whose **first** QA result
    occurred in it, and how many of those passed (a unit that failed and
    passed on retest counts as failed, in the window of its failure): the
    first-pass yield of docs/metrics.md, of every passport or of one ``kind``
    ("cell", "module", "pack"). One query, over the hourly counts
    (``FirstQaHour``, kept with the first results by ``ledger.append``) of a
    window's whole hours, at most a week's 168 hours a kind; a window's edges
    that are not on the hour (a shift starting at 06:30) are counted from the
    first results themselves (``FirstQaResult``, within those part hours) in
    subqueries of the same query. No range of raw results is read: a week's
    first results were ~9,500 rows on the bench plant, its hours ~500."""
    if not windows:
        return {}
    return first_pass_totals(windows=windows, kind=kind).get()


def first_pass_totals(
    *, windows: dict[str, tuple[datetime, datetime]], kind: str | None = None
) -> Totals:
    """``first_pass_counts`` (``windows`` not empty) as ``Totals``, not run:
    ``bpmos.totals.totals_get`` reads it with other figures in one
    statement."""
    aggregates = {}
    whole_starts, whole_ends = [], []
    for name, (start, end) in windows.items():
        first = _hour_ceil(start)
        last = max(first, rollups.hour_floor(end))
        if first >= end:  # within one hour: no whole hour, one edge
            first = last = start
            edges = [(start, end)]
        else:
            edges = [(a, b) for a, b in ((start, first), (last, end)) if a < b]
        if first < last:
            whole_starts.append(first)
            whole_ends.append(last)
        hours = Q(hour__gte=first, hour__lt=last)
        for counted in ("tested", "passed"):
            total = Sum(counted, filter=hours)  # NULL without rows
            if edges:
                edge = _first_results(edges, kind, counted == "passed")
                total = Coalesce(total, 0) + edge
            aggregates[f"{counted}_{name}"] = total
    if whole_starts:
        found = FirstQaHour.objects.filter(
            hour__gte=min(whole_starts), hour__lt=max(whole_ends)
        )
    else:  # no window holds a whole hour: only the edges' subqueries
        found = FirstQaHour.objects.filter(pk__isnull=True)
    if kind is not None:
        found = found.filter(kind=kind)

    return Totals(found, aggregates, per_window(windows, FirstPass, "tested", "passed"))


def _hour_ceil(moment: datetime) -> datetime:
    """The start of the first whole UTC hour at or after ``moment``."""
    floor = rollups.hour_floor(moment)
    return floor if floor == moment else floor + timedelta(hours=1)


def _first_results(
    edges: list[tuple[datetime, datetime]], kind: str | None, passed: bool
) -> Subquery:
    """How many first QA results fell in ``edges`` (part hours), of ``kind``
    when given, only those that passed when ``passed``: a scalar subquery
    (an index range of ``first_qa_time_idx`` per edge)."""
    rows = FirstQaResult.objects.filter(
        reduce(or_, (Q(occurred_at__gte=a, occurred_at__lt=b) for a, b in edges))
    )
    if kind is not None:
        rows = rows.filter(kind=kind)
    if passed:
        rows = rows.filter(passed=True)
    counted = rows.order_by().annotate(n=Func(F("pk"), function="COUNT")).values("n")
    return Subquery(counted, output_field=BigIntegerField())


def first_pass_series(
    *, start: datetime, end: datetime, bucket: str, kind: str | None = None
) -> dict[datetime, FirstPass]:
    """``first_pass_counts`` per ``bucket`` ("hour", "day", "week", UTC) over
    [start, end), ``start`` the start of a bucket, of every passport or of one
    ``kind``: bucket start -> counts; buckets without results absent. One
    query: the hourly counts (``FirstQaHour``) of the whole hours and the
    first results of a last partial hour, united."""
    whole = _whole_hours_end(start, end)
    hours = FirstQaHour.objects.filter(hour__gte=start, hour__lt=whole)
    tail = FirstQaResult.objects.filter(occurred_at__gte=whole, occurred_at__lt=end)
    if kind is not None:
        hours, tail = hours.filter(kind=kind), tail.filter(kind=kind)
    found: dict[datetime, FirstPass] = {}
    for t, tested, passed in per_bucket(
        hours, "hour", bucket, tested=Sum("tested"), passed=Sum("passed")
    ).union(
        per_bucket(
            tail,
            "occurred_at",
            bucket,
            tested=Count("pk"),
            passed=Count("pk", filter=Q(passed=True)),
        ),
        all=True,
    ):
        before = found.get(t)
        found[t] = FirstPass(
            tested=int(tested) + (before.tested if before else 0),
            passed=int(passed) + (before.passed if before else 0),
        )
    return found


# --- attention (the role dashboards, bpmos.dashboards.attention) -------------------


def passport_on_hold_list(*, limit: int = 50) -> list[dict]:
    """Batteries on hold (a supervisor releases them), longest held first:
    ``uuid``, ``serial``, ``hold_reason``, ``updated_at`` of each (the
    attention list's item; a passport has some sixty columns). One query,
    compiled once (``bpmos.compiled``)."""
    return rows_get(*passport_on_hold_statement(limit=limit))


def passport_on_hold_statement(*, limit: int = 50) -> tuple:
    """``passport_on_hold_list`` as (shape, make) for ``bpmos.compiled``."""
    return (
        ("passport_on_hold_list", limit),
        lambda: Passport.objects.filter(on_hold=True)
        .order_by("updated_at", "id")
        .values("uuid", "serial", "hold_reason", "updated_at")[:limit],
    )


def last_event_at(*, passport: Passport):
    """When the newest ledger event of ``passport`` happened (None before any):
    the ``lastUpdate`` of the status the ledger derives."""
    return (
        PassportEvent.objects.filter(passport=passport)
        .order_by("-version")
        .values_list("occurred_at", flat=True)
        .first()
    )


def passport_attributes(*, passport: Passport, tiers) -> list[dict]:
    """The EU attributes of ``passport`` a reader holding ``tiers`` may see
    (``passports.attributes``), in the registry's order; the others are left
    out, not nulled. Values as stored (the serializer shapes them)."""
    from passports import attributes

    allowed = set(tiers)
    values = attributes.values_of(
        passport, last_event_at=last_event_at(passport=passport)
    )
    rows = []
    for attribute in attributes.ATTRIBUTES:
        if attribute.tier not in allowed:
            continue
        row = {"attribute": attribute, "value": attribute.read(values)}
        if attribute.dynamic:
            row["lastUpdate"] = attribute.last_update(values)
        rows.append(row)
    return rows
