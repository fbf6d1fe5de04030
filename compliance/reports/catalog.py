"""The plant's reports (docs/compliance.md, "Reports"): one class each,
registered by id. Every report reads the owning app's data through its
selectors where one fits, else its models read-only; nothing here writes.

Dates: ``from`` and ``to`` are plant-time days, inclusive (``compliance.periods``:
midnight in ``BPMOS_PLANT_TIMEZONE``), by default the last 30 days up to today,
at most 366 days. Rows come out in a fixed order (a tie-breaking id last), so a
preview, a CSV and a PDF of the same parameters agree row for row.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from bpmos.fields import utc_text
from bpmos.roles import Role
from compliance import epr
from compliance.categories import category_label
from compliance.models import ReturnEvent
from compliance.periods import Period, fy_period, local_date, plant_zone
from compliance.reports.base import (
    Chart,
    Column,
    Param,
    Report,
    Series,
    period_of,
    register,
)
from elog import selectors as audit_selectors
from elog.models import AuditRecord
from exceptions import selectors as exception_selectors
from exceptions.models import (
    ESCALATION_PATH,
    ExceptionStatus,
    PlantException,
    Severity,
)
from inventory import selectors as inventory_selectors
from inventory.models import Category as StockCategory
from inventory.models import Item, ItemStatus
from lines import oee
from lines.models import Line, OEESnapshot
from passports.models import EventKind, Kind, PassportEvent
from runbooks.models import Runbook, StageStatus, WorkOrder, WorkOrderStage

CHUNK = 2000  # rows fetched per round trip while streaming

FROM = Param("from", "date", "From (plant day)", default="30 days before to")
TO = Param("to", "date", "To (plant day, inclusive)", default="today")
LINE = Param("line", "string", "Line (e.g. line-a)")


# --- value helpers -------------------------------------------------------------


def _number(value: Decimal | float | None) -> float | None:
    return None if value is None else float(value)


def _minutes(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() / 60, 1)


def _json(value: Any) -> str:
    """A JSON value as one compact cell ("" for none)."""
    if value in (None, {}, []):
        return ""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )


def _days(period: Period) -> list[date]:
    return [
        period.first + timedelta(days=n)
        for n in range((period.last - period.first).days + 1)
    ]


def _in(period: Period, field: str) -> Q:
    return Q(**{f"{field}__gte": period.start, f"{field}__lt": period.end})


def _line_exists(params: dict, errors: dict[str, list[str]]) -> None:
    slug = params.get("line")
    if slug and not Line.objects.filter(slug=slug).exists():
        errors["line"] = [f"There is no line {slug!r}."]


def _span(params: dict) -> str:
    return f"between {params['from']} and {params['to']}"


# --- production -----------------------------------------------------------------


@register
class ProductionByWorkOrder(Report):
    """Work-order stages worked in the period (started before its end, and
    not finished before its start), per work order in runbook order."""

    id = "production-by-work-order"
    title = "Production by work order and stage"
    description = (
        "Every work-order stage worked in the period: planned and actual "
        "times, status and duration; stages and units completed per day."
    )
    category = "Production"
    params = (
        FROM,
        TO,
        Param("runbook", "string", "Runbook (e.g. manufacturing)"),
        Param("line", "string", "Line (the work orders of the runbook it runs)"),
    )
    columns = (
        Column("workOrder", "Work order"),
        Column("productCode", "Product"),
        Column("lotNo", "Lot"),
        Column("quantity", "Quantity", "number"),
        Column("runbook", "Runbook"),
        Column("stageCode", "Stage code"),
        Column("stageName", "Stage"),
        Column("status", "Status"),
        Column("plannedStart", "Planned start", "datetime"),
        Column("plannedEnd", "Planned end", "datetime"),
        Column("actualStart", "Actual start", "datetime"),
        Column("actualEnd", "Actual end", "datetime"),
        Column("plannedMinutes", "Planned minutes", "number"),
        Column("actualMinutes", "Actual minutes", "number"),
        Column("holdReason", "Hold reason"),
    )
    chart_ids = ("production-per-day",)

    def check(self, params, errors):
        slug = params["runbook"]
        if slug and not Runbook.objects.filter(slug=slug).exists():
            errors["runbook"] = [f"There is no runbook {slug!r}."]
        _line_exists(params, errors)

    def _work_orders(self, params) -> Q:
        """Which work orders the filters keep (as a filter on ``work_order``)."""
        keep = Q()
        if params["runbook"]:
            keep &= Q(runbook__slug=params["runbook"])
        if params["line"]:
            keep &= Q(runbook__lines__slug=params["line"])
        return keep

    def _stages(self, params) -> QuerySet[WorkOrderStage]:
        period = period_of(params)
        orders = WorkOrder.objects.filter(self._work_orders(params))
        return WorkOrderStage.objects.filter(
            Q(actual_start__lt=period.end)
            & (Q(actual_end__isnull=True) | Q(actual_end__gte=period.start)),
            work_order__in=orders.values("pk"),
        )

    def count(self, params):
        return self._stages(params).count()

    def rows(self, params) -> Iterator[dict]:
        stages = (
            self._stages(params)
            .select_related("stage", "work_order__runbook")
            .order_by("work_order_id", "position", "id")
        )
        for row in stages.iterator(chunk_size=CHUNK):
            order = row.work_order
            yield {
                "workOrder": f"WO-{order.pk}",
                "productCode": order.product_code,
                "lotNo": order.lot_no,
                "quantity": order.qty,
                "runbook": order.runbook.slug,
                "stageCode": row.stage.code,
                "stageName": row.stage_name,
                "status": StageStatus(row.status).label,
                "plannedStart": utc_text(row.planned_start),
                "plannedEnd": utc_text(row.planned_end),
                "actualStart": utc_text(row.actual_start),
                "actualEnd": utc_text(row.actual_end),
                "plannedMinutes": _minutes(row.planned_start, row.planned_end),
                "actualMinutes": _minutes(row.actual_start, row.actual_end),
                "holdReason": row.hold_reason,
            }

    def _completed_orders(self, params) -> QuerySet[WorkOrder]:
        period = period_of(params)
        return WorkOrder.objects.filter(
            self._work_orders(params), _in(period, "completed_at")
        )

    def _completed_stages(self, params) -> QuerySet[WorkOrderStage]:
        period = period_of(params)
        return self._stages(params).filter(
            _in(period, "actual_end"), status=StageStatus.DONE
        )

    def summary(self, params):
        stages = self._stages(params).aggregate(
            orders=Count("work_order_id", distinct=True),
            on_hold=Count("id", filter=Q(status=StageStatus.HOLD)),
        )
        units = self._completed_orders(params).aggregate(units=Sum("qty"))["units"]
        return [
            {"label": "Work orders worked", "value": stages["orders"]},
            {
                "label": "Stages completed",
                "value": self._completed_stages(params).count(),
            },
            {
                "label": "Work orders completed",
                "value": self._completed_orders(params).count(),
            },
            {"label": "Units completed", "value": units or 0},
            {"label": "Stages on hold", "value": stages["on_hold"]},
        ]

    def charts(self, params):
        zone = plant_zone()
        stages = dict(
            self._completed_stages(params)
            .annotate(day=TruncDate("actual_end", tzinfo=zone))
            .values("day")
            .annotate(n=Count("id"))
            .values_list("day", "n")
            .order_by()
        )
        units = dict(
            self._completed_orders(params)
            .annotate(day=TruncDate("completed_at", tzinfo=zone))
            .values("day")
            .annotate(n=Sum("qty"))
            .values_list("day", "n")
            .order_by()
        )
        days = _days(period_of(params))
        return [
            Chart(
                id="production-per-day",
                title="Stages and units completed per day",
                kind="bar",
                x_label="Day",
                y_label="Completed",
                series=[
                    Series(
                        "Stages completed",
                        [(d.isoformat(), float(stages.get(d, 0))) for d in days],
                    ),
                    Series(
                        "Units completed",
                        [(d.isoformat(), float(units.get(d, 0))) for d in days],
                    ),
                ],
            )
        ]

    def empty_message(self, params):
        return f"No work-order stages were worked {_span(params)}."


# --- OEE ----------------------------------------------------------------------


def _figures(row: OEESnapshot) -> oee.Figures:
    return oee.Figures(
        planned_busy=Fraction(row.planned_busy_seconds),
        run=Fraction(row.run_seconds),
        ideal=Fraction(row.ideal_seconds),
        good=row.good_count,
        reject=row.reject_count,
    )


@register
class OEEByLineShift(Report):
    """The shift history of ``OEESnapshot`` (one row per line and shift, kept
    by beat: docs/oee.md), shifts that start in the period."""

    id = "oee-by-line-shift"
    title = "OEE by line and shift"
    description = (
        "Availability, performance, quality and OEE of every line per shift "
        "(ISO 22400), with the daily OEE trend per line."
    )
    category = "Operations"
    params = (FROM, TO, LINE)
    columns = (
        Column("day", "Day", "date"),
        Column("line", "Line"),
        Column("lineName", "Line name"),
        Column("shiftStart", "Shift start", "datetime"),
        Column("shiftEnd", "Shift end", "datetime"),
        Column("availability", "Availability %", "percent"),
        Column("performance", "Performance %", "percent"),
        Column("quality", "Quality %", "percent"),
        Column("oee", "OEE %", "percent"),
        Column("goodCount", "Good", "number"),
        Column("rejectCount", "Rejects", "number"),
        Column("isComplete", "Shift complete"),
    )
    chart_ids = ("oee-trend",)

    def check(self, params, errors):
        _line_exists(params, errors)

    def _snapshots(self, params) -> QuerySet[OEESnapshot]:
        rows = OEESnapshot.objects.filter(
            _in(period_of(params), "window_start"), station__isnull=True
        )
        if params["line"]:
            rows = rows.filter(line__slug=params["line"])
        return rows

    def count(self, params):
        return self._snapshots(params).count()

    def rows(self, params) -> Iterator[dict]:
        snapshots = (
            self._snapshots(params)
            .select_related("line")
            .order_by("window_start", "line__position", "line__slug", "id")
        )
        for row in snapshots.iterator(chunk_size=CHUNK):
            yield {
                "day": local_date(row.window_start).isoformat(),
                "line": row.line.slug,
                "lineName": row.line.name,
                "shiftStart": utc_text(row.window_start),
                "shiftEnd": utc_text(row.shift_end),
                "availability": _number(row.availability),
                "performance": _number(row.performance),
                "quality": _number(row.quality),
                "oee": _number(row.oee),
                "goodCount": row.good_count,
                "rejectCount": row.reject_count,
                "isComplete": row.window_end >= row.shift_end,
            }

    def _by_line_and_day(self, params) -> dict[Line, dict[date, oee.Figures]]:
        out: dict[Line, dict[date, oee.Figures]] = {}
        rows = (
            self._snapshots(params)
            .select_related("line")
            .order_by("line__position", "line__slug", "window_start")
        )
        for row in rows:
            days = out.setdefault(row.line, defaultdict(oee.Figures))
            days[local_date(row.window_start)].add(_figures(row))
        return out

    def summary(self, params):
        plant = oee.Figures()
        shifts = 0
        for row in self._snapshots(params):
            plant.add(_figures(row))
            shifts += 1
        return [
            {"label": "Shifts", "value": shifts},
            {
                "label": "OEE over the period %",
                "value": _number(oee.percent(plant.oee)),
            },
            {"label": "Good pieces", "value": plant.good},
            {"label": "Reject pieces", "value": plant.reject},
        ]

    def charts(self, params):
        days = _days(period_of(params))
        series = []
        for line, by_day in self._by_line_and_day(params).items():
            points = []
            for day in days:
                figures = by_day.get(day)
                value = oee.percent(figures.oee) if figures is not None else None
                points.append((day.isoformat(), _number(value)))
            series.append(Series(line.slug, points))
        return [
            Chart(
                id="oee-trend",
                title="OEE per day and line",
                kind="line",
                x_label="Day",
                y_label="OEE %",
                series=series,
            )
        ]

    def empty_message(self, params):
        where = f" on {params['line']}" if params["line"] else ""
        return f"No shift OEE was recorded{where} {_span(params)}."


# --- exceptions ----------------------------------------------------------------


@register
class ExceptionsEscalations(Report):
    """Exceptions raised in the period (stage issues, escalated alarms, gate
    and manual entries) with their escalation and how long they took."""

    id = "exceptions-escalations"
    title = "Exceptions and escalations"
    description = (
        "Every exception raised in the period (stage issues and escalated "
        "alarms included): severity, escalation level, time to acknowledge "
        "and to resolve."
    )
    category = "Quality"
    params = (
        FROM,
        TO,
        Param("severity", "choice", "Severity", choices=tuple(Severity.values)),
        Param("status", "choice", "Status", choices=tuple(ExceptionStatus.values)),
    )
    columns = (
        Column("id", "Exception"),
        Column("raisedAt", "Raised", "datetime"),
        Column("type", "Type"),
        Column("severity", "Severity"),
        Column("source", "Source"),
        Column("status", "Status"),
        Column("title", "Title"),
        Column("runbook", "Runbook"),
        Column("stage", "Stage"),
        Column("isBlocking", "Halts its runbook"),
        Column("escalationLevel", "Escalation level", "number"),
        Column("responsibleRole", "Responsible"),
        Column("acknowledgedAt", "Acknowledged", "datetime"),
        Column("resolvedAt", "Resolved", "datetime"),
        Column("minutesToAcknowledge", "Minutes to acknowledge", "number"),
        Column("minutesToResolve", "Minutes to resolve", "number"),
    )

    def _exceptions(self, params) -> QuerySet[PlantException]:
        rows = exception_selectors.exception_list().filter(
            _in(period_of(params), "raised_at")
        )
        if params["severity"]:
            rows = rows.filter(severity=params["severity"])
        if params["status"]:
            rows = rows.filter(status=params["status"])
        return rows

    def count(self, params):
        return self._exceptions(params).count()

    def rows(self, params) -> Iterator[dict]:
        rows = self._exceptions(params).order_by("raised_at", "id")
        for row in rows.iterator(chunk_size=CHUNK):
            level = min(row.escalation_level, len(ESCALATION_PATH) - 1)
            yield {
                "id": row.code,
                "raisedAt": utc_text(row.raised_at),
                "type": row.get_type_display(),
                "severity": row.get_severity_display(),
                "source": row.get_source_display(),
                "status": row.get_status_display(),
                "title": row.title,
                "runbook": row.linked_runbook_title or "",
                "stage": row.stage.label if row.stage_id else "",
                "isBlocking": bool(row.halts),
                "escalationLevel": row.escalation_level,
                "responsibleRole": Role(ESCALATION_PATH[level]).label,
                "acknowledgedAt": utc_text(row.acknowledged_at),
                "resolvedAt": utc_text(row.resolved_at),
                "minutesToAcknowledge": _minutes(row.raised_at, row.acknowledged_at),
                "minutesToResolve": _minutes(row.raised_at, row.resolved_at),
            }

    def summary(self, params):
        totals = self._exceptions(params).aggregate(
            raised=Count("id"),
            unresolved=Count("id", filter=~Q(status=ExceptionStatus.RESOLVED)),
            escalated=Count("id", filter=Q(escalation_level__gt=0)),
            critical=Count("id", filter=Q(severity=Severity.CRITICAL)),
            from_alarms=Count("id", filter=Q(source="alarm")),
        )
        return [
            {"label": "Raised", "value": totals["raised"]},
            {"label": "Unresolved", "value": totals["unresolved"]},
            {"label": "Escalated", "value": totals["escalated"]},
            {"label": "Critical", "value": totals["critical"]},
            {"label": "From alarms", "value": totals["from_alarms"]},
        ]

    def empty_message(self, params):
        return f"No exceptions were raised {_span(params)}."


# --- inventory ------------------------------------------------------------------

# (label, first day, last day or None): how old stock is, in whole days.
AGE_BANDS = (
    ("0-7 days", 0, 7),
    ("8-30 days", 8, 30),
    ("31-90 days", 31, 90),
    ("91-180 days", 91, 180),
    ("Over 180 days", 181, None),
)


def age_band(days: int) -> str:
    return next(
        label
        for label, low, high in AGE_BANDS
        if days >= low and (high is None or days <= high)
    )


@register
class InventoryAgeingHolds(Report):
    """Stock in hand now (quantity > 0), oldest receipt first: its age since
    it was received, and what is on Hold or Blocked and why. As of the
    request, so it takes no dates."""

    id = "inventory-ageing-holds"
    title = "Inventory ageing and holds"
    description = (
        "Every item in stock now, oldest first: age since receipt, age band, "
        "status and hold reason."
    )
    category = "Inventory"
    params = (
        Param("category", "string", "Stock category (e.g. cells)"),
        Param("status", "choice", "Status", choices=tuple(ItemStatus.values)),
    )
    columns = (
        Column("item", "Item"),
        Column("sku", "SKU"),
        Column("category", "Category"),
        Column("location", "Location"),
        Column("status", "Status"),
        Column("holdReason", "Hold reason"),
        Column("batch", "Batch"),
        Column("quantity", "Quantity", "number"),
        Column("unit", "Unit"),
        Column("receivedAt", "Received", "datetime"),
        Column("ageDays", "Age (days)", "number"),
        Column("ageBand", "Age band"),
    )

    def check(self, params, errors):
        slug = params["category"]
        if slug and not StockCategory.objects.filter(slug=slug).exists():
            errors["category"] = [f"There is no stock category {slug!r}."]

    def _items(self, params) -> QuerySet[Item]:
        items = inventory_selectors.item_list()
        if params["category"]:
            items = items.filter(category__slug=params["category"])
        if params["status"]:
            items = items.filter(status=params["status"])
        return items

    def count(self, params):
        return self._items(params).count()

    def rows(self, params) -> Iterator[dict]:
        now = timezone.now()
        items = self._items(params).order_by("received_at", "code")
        for item in items.iterator(chunk_size=CHUNK):
            days = max((now - item.received_at).days, 0)
            yield {
                "item": item.code,
                "sku": item.sku,
                "category": item.category.name,
                "location": item.location.path,
                "status": item.get_status_display(),
                "holdReason": item.hold_reason,
                "batch": item.batch_ref,
                "quantity": item.quantity,
                "unit": item.unit,
                "receivedAt": utc_text(item.received_at),
                "ageDays": days,
                "ageBand": age_band(days),
            }

    def summary(self, params):
        old = timezone.now() - timedelta(days=91)
        totals = self._items(params).aggregate(
            items=Count("id"),
            hold=Count("id", filter=Q(status=ItemStatus.HOLD)),
            blocked=Count("id", filter=Q(status=ItemStatus.BLOCKED)),
            old=Count("id", filter=Q(received_at__lte=old)),
        )
        return [
            {"label": "Items in stock", "value": totals["items"]},
            {"label": "On hold", "value": totals["hold"]},
            {"label": "Blocked", "value": totals["blocked"]},
            {"label": "Older than 90 days", "value": totals["old"]},
        ]

    def empty_message(self, params):
        return (
            "No items in stock match." if any(params.values()) else "No items in stock."
        )


# --- passports ------------------------------------------------------------------


@register
class PassportLedgerExtract(Report):
    """Ledger events of every passport that occurred in the period, in the
    order they happened, with their hashes (verifiable against the chain)."""

    id = "passport-ledger-extract"
    title = "Passport ledger extract"
    description = (
        "Every passport ledger event in the period: battery, event, actor, "
        "data and the hash chain."
    )
    category = "Traceability"
    params = (
        FROM,
        TO,
        Param("kind", "choice", "Passport kind", choices=tuple(Kind.values)),
        Param("event", "choice", "Event", choices=tuple(EventKind.values)),
    )
    columns = (
        Column("occurredAt", "Occurred", "datetime"),
        Column("serial", "Serial"),
        Column("kind", "Kind"),
        Column("model", "Model"),
        Column("version", "Version", "number"),
        Column("event", "Event"),
        Column("actor", "Actor"),
        Column("data", "Data"),
        Column("hash", "Hash"),
        Column("prevHash", "Previous hash"),
    )

    def _events(self, params) -> QuerySet[PassportEvent]:
        events = PassportEvent.objects.filter(_in(period_of(params), "occurred_at"))
        if params["kind"]:
            events = events.filter(passport__kind=params["kind"])
        if params["event"]:
            events = events.filter(kind=params["event"])
        return events

    def count(self, params):
        return self._events(params).count()

    def rows(self, params) -> Iterator[dict]:
        events = (
            self._events(params)
            .select_related("passport")
            .order_by("occurred_at", "passport_id", "version")
        )
        for event in events.iterator(chunk_size=CHUNK):
            yield {
                "occurredAt": utc_text(event.occurred_at),
                "serial": event.passport.serial,
                "kind": event.passport.get_kind_display(),
                "model": event.passport.model,
                "version": event.version,
                "event": event.get_kind_display(),
                "actor": event.actor_username,
                "data": _json(event.data),
                "hash": event.hash,
                "prevHash": event.prev_hash,
            }

    def summary(self, params):
        totals = self._events(params).aggregate(
            events=Count("id"),
            passports=Count("passport_id", distinct=True),
            dispatched=Count("id", filter=Q(kind=EventKind.DISPATCHED)),
            qa_failed=Count("id", filter=Q(kind=EventKind.QA_FAILED)),
        )
        return [
            {"label": "Events", "value": totals["events"]},
            {"label": "Passports", "value": totals["passports"]},
            {"label": "Dispatched", "value": totals["dispatched"]},
            {"label": "QA failed", "value": totals["qa_failed"]},
        ]

    def empty_message(self, params):
        return f"No passport ledger events {_span(params)}."


# --- EPR ------------------------------------------------------------------------


@register
class EPRReturn(Report):
    """The EPR figures of one financial year (``compliance.epr``): the pack
    rows behind them, the totals, and per category the collection and
    recovery obligations against what was collected and recycled."""

    id = "epr-return"
    title = "EPR return"
    description = (
        "Packs placed on the market, collected and recycled in a financial "
        "year, per BWMR category, against the year's targets."
    )
    category = "Compliance"
    params = (Param("fy", "fy", "Financial year (e.g. 2026-27)", default="this year"),)
    columns = (
        Column("event", "Event"),
        Column("occurredAt", "Occurred", "datetime"),
        Column("serial", "Serial"),
        Column("bpan", "BPAN"),
        Column("model", "Model"),
        Column("category", "Category"),
        Column("chemistry", "Chemistry"),
        Column("massKg", "Mass (kg)", "number"),
        Column("custodian", "Custodian"),
    )
    chart_ids = ("epr-vs-target",)

    def _facts(self, params) -> list[epr.PackFact]:
        return epr.pack_facts(fy_period(params["fy"]))

    def count(self, params):
        # The facts are derived per pack (first events) in Python: no COUNT.
        return len(self._facts(params))

    def rows(self, params) -> Iterator[dict]:
        for fact in self._facts(params):
            yield {
                "event": ReturnEvent(fact.event).label,
                "occurredAt": utc_text(fact.occurred_at),
                "serial": fact.serial,
                "bpan": fact.bpan,
                "model": fact.model,
                "category": category_label(fact.category),
                "chemistry": fact.chemistry,
                "massKg": _number(fact.mass_kg),
                "custodian": fact.custodian,
            }

    def _figures(self, params) -> dict:
        period = fy_period(params["fy"])
        return epr.figures(period)

    def summary(self, params):
        figures = self._figures(params)
        out = []
        for event, label in (
            ("placedOnMarket", "Placed on the market"),
            ("collected", "Collected"),
            ("recycled", "Recycled"),
        ):
            rows = [row[event] for row in figures["categories"]]
            out.append(
                {"label": f"{label} (packs)", "value": sum(r["count"] for r in rows)}
            )
            out.append(
                {
                    "label": f"{label} (kg)",
                    "value": round(sum(r["massKg"] or 0 for r in rows), 3),
                }
            )
        out.append(
            {"label": "Packs without a mass", "value": len(figures["missingMass"])}
        )
        return out

    def charts(self, params):
        figures = self._figures(params)
        rows = figures["categories"]

        def obligation(row: dict, key: str) -> float | None:
            target = row[key]
            return None if target is None else target["obligationKg"]

        def series(name: str, value) -> Series:
            return Series(name, [(row["label"], value(row)) for row in rows])

        return [
            Chart(
                id="epr-vs-target",
                title=f"EPR FY {params['fy']}: against the obligations",
                kind="bar",
                x_label="Category",
                y_label="kg",
                series=[
                    series(
                        "Placed on the market", lambda r: r["placedOnMarket"]["massKg"]
                    ),
                    series("Collected", lambda r: r["collected"]["massKg"]),
                    series(
                        "Collection obligation",
                        lambda r: obligation(r, "collectionTarget"),
                    ),
                    series("Recycled", lambda r: r["recycled"]["massKg"]),
                    series(
                        "Recovery obligation", lambda r: obligation(r, "recoveryTarget")
                    ),
                ],
            )
        ]

    def empty_message(self, params):
        return (
            "No packs were placed on the market, collected or recycled in "
            f"FY {params['fy']}."
        )


# --- audit ----------------------------------------------------------------------


@register
class AuditExtract(Report):
    """Audit records of the period in chain order (``seq``), with before and
    after and the chain's hashes (``/api/audit/verify`` checks the chain)."""

    id = "audit-extract"
    title = "Audit extract"
    description = (
        "Every audit-log record in the period: who did what to which object, "
        "from where, with before and after."
    )
    category = "Audit"
    params = (
        FROM,
        TO,
        Param("action", "string", "Action, or its start (e.g. inventory.)"),
        Param("actor", "string", "Actor (username)"),
    )
    columns = (
        Column("seq", "Seq", "number"),
        Column("occurredAt", "Occurred", "datetime"),
        Column("actor", "Actor"),
        Column("role", "Role"),
        Column("action", "Action"),
        Column("targetType", "Target type"),
        Column("targetId", "Target id"),
        Column("target", "Target"),
        Column("source", "Source"),
        Column("requestId", "Request id"),
        Column("clientAddress", "Client address"),
        Column("before", "Before"),
        Column("after", "After"),
        Column("hash", "Hash"),
    )

    def _records(self, params) -> QuerySet[AuditRecord]:
        records = audit_selectors.audit_record_list().filter(
            _in(period_of(params), "occurred_at")
        )
        if params["action"]:
            records = records.filter(action__startswith=params["action"])
        if params["actor"]:
            records = records.filter(actor_username=params["actor"])
        return records

    def count(self, params):
        return self._records(params).count()

    def rows(self, params) -> Iterator[dict]:
        records = self._records(params).order_by("seq")
        for record in records.iterator(chunk_size=CHUNK):
            yield {
                "seq": record.seq,
                "occurredAt": utc_text(record.occurred_at),
                "actor": record.actor_username,
                "role": record.actor_role,
                "action": record.action,
                "targetType": record.target_type,
                "targetId": record.target_id,
                "target": record.target_repr,
                "source": record.source,
                "requestId": record.request_id,
                "clientAddress": record.client_address or "",
                "before": _json(record.before),
                "after": _json(record.after),
                "hash": record.hash,
            }

    def summary(self, params):
        totals = self._records(params).aggregate(
            records=Count("id"),
            actors=Count("actor_username", distinct=True),
        )
        return [
            {"label": "Records", "value": totals["records"]},
            {"label": "Actors", "value": totals["actors"]},
        ]

    def empty_message(self, params):
        return f"No audit records {_span(params)}."
