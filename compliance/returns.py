"""Compliance returns: build (the EPR figures and the pack rows behind them,
frozen), approve (a supervisor, plant head or admin; recorded), export as the
regulator's CSV (only an approved return; audited as ``compliance_export``).

Interface (the API, the admin and ``compliance.mailing`` call these):

* ``return_build(*, period, actor, note="") -> ComplianceReturn``
* ``return_approve(*, return_id, actor) -> ComplianceReturn`` (409 unless draft)

Building and approving publish ``compliance_return.built`` /
``.approved`` (``compliance.events``, topic ``compliance``) in their
transaction: the supervisors' attention lists carry the drafts.
* ``return_csv(ret, schema) -> bytes``: the return in a schema's layout,
  cells escaped against CSV injection
* ``return_export(*, return_id, schema_slug, actor, source) -> Export``
  (409 unless approved; one ``compliance_export`` audit row per export)

A return is frozen when built: its figures (``compliance.epr.figures``) are
stored as JSON and its pack rows as ``ReturnLine`` rows, and ``content_hash``
is the SHA-256 of both (``content_hash``). An export re-hashes what is stored
and refuses (409 ``return_altered``) when it no longer matches, so what the
regulator receives is what was approved.

CSV layouts (``CsvSchema``) name their columns' fields from ``SUMMARY_FIELDS``
(a row per category) or ``PACK_FIELDS`` (a row per pack);
``schema_columns_check`` is the one validation of a layout (the admin's form
uses it). The CPCB defaults ship in migration 0002.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from bpmos import access, events
from bpmos.csvsafe import csv_bytes
from bpmos.errors import Conflict, Forbidden, IllegalTransition, InvalidInput, NotFound
from compliance import categories, epr
from compliance import events as compliance_events
from compliance.models import (
    ComplianceReturn,
    CsvSchema,
    ReturnEvent,
    ReturnLine,
    ReturnStatus,
    SchemaLevel,
)
from compliance.periods import Period, fy_of, local_date
from elog import audit

KG = Decimal("0.001")
# An export that names no schema uses the default of this level (as a
# ScheduledReturn without a schema does).
DEFAULT_EXPORT_LEVEL = SchemaLevel.PACK
MAX_COLUMNS = 100
MAX_HEADER = 100
NOTE_LIMIT = 300

# field -> what the column holds (shown in the admin's help).
SUMMARY_FIELDS: dict[str, str] = {
    "returnId": "The return's id in BPM-OS.",
    "financialYear": 'Financial year ("2026-27"); blank when the period is not one.',
    "periodStart": "First day of the period (plant time).",
    "periodEnd": "Last day of the period, inclusive (plant time).",
    "category": "BWMR category code (portable, automotive, industrial, ev); "
    "blank: undeclared models.",
    "categoryLabel": 'BWMR category name ("Electric vehicle", "Undeclared").',
    "placedCount": "Packs placed on the market (first dispatch) in the period.",
    "placedMassKg": "Their mass, kg.",
    "placedMissingMassCount": "Of them, packs with no mass on their passport.",
    "collectedCount": "Packs collected back (end of life) in the period.",
    "collectedMassKg": "Their mass, kg.",
    "collectedMissingMassCount": "Of them, packs with no mass.",
    "recycledCount": "Packs recycled in the period.",
    "recycledMassKg": "Their mass, kg.",
    "recycledMissingMassCount": "Of them, packs with no mass.",
    "collectionTargetPercent": "The rules' collection target for the year, %.",
    "collectionBasisFinancialYear": "The year whose placed mass the target is of.",
    "collectionBasisMassKg": "That year's placed mass, kg.",
    "collectionObligationKg": "Mass to collect: basis x target, kg.",
    "collectionGapKg": "Obligation not yet met by collection, kg (0 when met).",
    "collectionTargetCitation": "Where the collection target is written.",
    "recoveryTargetPercent": "The rules' recovery (recycling) target, %.",
    "recoveryObligationKg": "Mass to recover: collected x target, kg.",
    "recoveryGapKg": "Obligation not yet met by recycling, kg (0 when met).",
    "recoveryTargetCitation": "Where the recovery target is written.",
    "recycledContentTargetPercent": "The rules' recycled-content target, %.",
}

PACK_FIELDS: dict[str, str] = {
    "returnId": "The return's id in BPM-OS.",
    "financialYear": 'Financial year ("2026-27"); blank when the period is not one.',
    "event": "placed, collected or recycled.",
    "eventLabel": 'What the row counts ("Placed on the market (first dispatch)").',
    "occurredAt": "When, ISO 8601 UTC.",
    "occurredOn": "The plant-time day it happened.",
    "serial": "The pack's serial.",
    "bpan": "The pack's Battery Pack Aadhaar Number.",
    "passportUuid": "The pack's passport UUID.",
    "model": "Product model.",
    "category": "BWMR category code; blank: the model has no declaration.",
    "categoryLabel": "BWMR category name.",
    "chemistry": "Cell chemistry (LFP, NMC, …).",
    "massKg": "Mass, kg (blank when the passport has none).",
    "custodian": "Who held the pack when the return was built.",
}

FIELDS_BY_LEVEL: dict[str, dict[str, str]] = {
    SchemaLevel.SUMMARY: SUMMARY_FIELDS,
    SchemaLevel.PACK: PACK_FIELDS,
}


# --- schemas ------------------------------------------------------------------


def schema_columns_check(level: Any, columns: Any) -> list[dict[str, str]]:
    """``columns`` checked against the field vocabulary of ``level``: a
    non-empty list of ``{"header": text, "field": one of the level's fields}``
    with distinct headers. Returns them cleaned (headers stripped); raises
    ``InvalidInput`` naming ``level`` or ``columns`` (with each problem)."""
    fields = FIELDS_BY_LEVEL.get(level)
    if fields is None:
        raise InvalidInput(
            "level: one of summary, pack.",
            details={"level": [f"One of {', '.join(SchemaLevel.values)}."]},
        )
    problems: list[str] = []
    cleaned: list[dict[str, str]] = []
    if not isinstance(columns, list) or not columns:
        problems.append('A non-empty list of {"header": ..., "field": ...}.')
    elif len(columns) > MAX_COLUMNS:
        problems.append(f"At most {MAX_COLUMNS} columns.")
    else:
        seen: set[str] = set()
        for number, column in enumerate(columns, start=1):
            if not isinstance(column, dict) or set(column) != {"header", "field"}:
                problems.append(
                    f'Column {number}: an object with exactly "header" and "field".'
                )
                continue
            header, field = column["header"], column["field"]
            if not isinstance(header, str) or not header.strip():
                problems.append(f"Column {number}: the header is empty.")
                continue
            header = header.strip()
            if len(header) > MAX_HEADER:
                problems.append(
                    f"Column {number}: a header of at most {MAX_HEADER} characters."
                )
            if header.casefold() in seen:
                problems.append(f'Column {number}: the header "{header}" repeats.')
            seen.add(header.casefold())
            if not isinstance(field, str) or field not in fields:
                problems.append(
                    f"Column {number}: unknown field {field!r} for the {level} "
                    f"level (one of {', '.join(fields)})."
                )
                continue
            cleaned.append({"header": header, "field": field})
    if problems:
        raise InvalidInput("columns: " + problems[0], details={"columns": problems})
    return cleaned


def schema_list():
    """Every CSV layout, by slug."""
    return CsvSchema.objects.order_by("slug")


def schema_get(*, slug: str | None) -> CsvSchema:
    """The layout named ``slug`` (400 naming ``schema`` when there is none),
    or, when ``slug`` is None, the default of ``DEFAULT_EXPORT_LEVEL``."""
    if slug is None:
        schema = CsvSchema.objects.filter(
            level=DEFAULT_EXPORT_LEVEL, is_default=True
        ).first()
        if schema is None:
            raise Conflict(
                f"No CSV schema is the default for the {DEFAULT_EXPORT_LEVEL} "
                "level; name one (schema) or mark one default in the admin.",
                code="no_default_schema",
            )
        return schema
    schema = CsvSchema.objects.filter(slug=slug).first()
    if schema is None:
        slugs = ", ".join(schema_list().values_list("slug", flat=True))
        raise InvalidInput(
            f"schema: no CSV schema {slug!r}.",
            details={"schema": [f"No CSV schema {slug!r}; one of: {slugs}."]},
        )
    return schema


# --- build --------------------------------------------------------------------


def _line_row(
    *,
    passport_id: int,
    event: str,
    occurred_at,
    serial: str,
    bpan: str,
    model: str,
    category: str,
    chemistry: str,
    mass_kg: Decimal | None,
    custodian: str,
) -> dict[str, Any]:
    """One pack row as it is hashed (the same from a fact and from a line)."""
    return {
        "passportId": passport_id,
        "event": event,
        "occurredAt": occurred_at.astimezone(UTC).isoformat(),
        "serial": serial,
        "bpan": bpan,
        "model": model,
        "category": category,
        "chemistry": chemistry,
        "massKg": None if mass_kg is None else format(mass_kg.quantize(KG), "f"),
        "custodian": custodian,
    }


def _stored_line_rows(ret: ComplianceReturn) -> list[dict[str, Any]]:
    return [
        _line_row(**row)
        for row in ret.lines.order_by("id").values(
            "passport_id",
            "event",
            "occurred_at",
            "serial",
            "bpan",
            "model",
            "category",
            "chemistry",
            "mass_kg",
            "custodian",
        )
    ]


def row_financial_year(ret: ComplianceReturn) -> str:
    """The FY a return's rows name: the return's, or, for a shorter period
    (a quarter, the year to date), the one FY it lies in ("" across two)."""
    if ret.financial_year:
        return ret.financial_year
    first = fy_of(ret.period_start)
    return first if first == fy_of(ret.period_end) else ""


def content_hash(figures: dict, rows: list[dict[str, Any]]) -> str:
    """SHA-256 (hex) of the canonical JSON (keys sorted, no spaces) of
    ``{"figures": ..., "rows": [...]}``, rows in the order they were built."""
    canonical = json.dumps(
        {"figures": figures, "rows": rows},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _user_id(actor: Any) -> int | None:
    return actor.pk if getattr(actor, "is_authenticated", False) else None


def _require_supervisor(actor: Any, what: str) -> None:
    # The API's POLICY lets only these roles in; the admin and the scheduled
    # mail call the service directly, so the rule is checked here too.
    if getattr(actor, "role", None) not in access.SUPERVISORS:
        raise Forbidden(
            f"Only a supervisor, plant head or admin may {what}.",
            code="permission_denied",
        )


def return_build(*, period: Period, actor: Any, note: str = "") -> ComplianceReturn:
    """Build a draft return for ``period``: the EPR figures and every pack row
    behind them, frozen, with their content hash; audited
    ``compliance_return_build``."""
    note = (note or "").strip()
    if len(note) > NOTE_LIMIT:
        raise InvalidInput(
            f"note: at most {NOTE_LIMIT} characters.",
            details={"note": [f"At most {NOTE_LIMIT} characters."]},
        )
    facts = epr.pack_facts(period)
    # Through JSON once, so what is hashed is what the JSON column gives back.
    figures = json.loads(json.dumps(epr.figures(period, facts)))
    lines = [
        ReturnLine(
            passport_id=fact.passport_id,
            event=fact.event,
            occurred_at=fact.occurred_at,
            serial=fact.serial,
            bpan=fact.bpan,
            model=fact.model,
            category=fact.category or "",
            chemistry=fact.chemistry,
            mass_kg=fact.mass_kg,
            custodian=fact.custodian[:120],
        )
        for fact in facts
    ]
    rows = [
        _line_row(
            passport_id=line.passport_id,
            event=line.event,
            occurred_at=line.occurred_at,
            serial=line.serial,
            bpan=line.bpan,
            model=line.model,
            category=line.category,
            chemistry=line.chemistry,
            mass_kg=line.mass_kg,
            custodian=line.custodian,
        )
        for line in lines
    ]
    digest = content_hash(figures, rows)
    with transaction.atomic():
        ret = ComplianceReturn.objects.create(
            period_start=period.first,
            period_end=period.last,
            financial_year=period.financial_year,
            status=ReturnStatus.DRAFT,
            figures=figures,
            row_count=len(lines),
            content_hash=digest,
            built_at=timezone.now(),
            built_by_id=_user_id(actor),
            note=note,
        )
        for line in lines:
            line.ret = ret
        # In fact order: the line ids keep the order the rows were hashed in.
        ReturnLine.objects.bulk_create(lines, batch_size=1000)
        audit.record(
            actor=actor,
            action="compliance_return_build",
            target=ret,
            after={
                "returnId": ret.pk,
                "periodStart": period.first.isoformat(),
                "periodEnd": period.last.isoformat(),
                "financialYear": ret.financial_year or None,
                "rowCount": ret.row_count,
                "contentHash": digest,
                "note": note,
            },
        )
        events.publish(compliance_events.return_event(ret, "built"))
    return ret


# --- approve ------------------------------------------------------------------


def _locked(return_id: Any) -> ComplianceReturn:
    if not isinstance(return_id, int) or isinstance(return_id, bool):
        raise NotFound(f"Return {return_id} does not exist.")
    ret = ComplianceReturn.objects.select_for_update().filter(pk=return_id).first()
    if ret is None:
        raise NotFound(f"Return {return_id} does not exist.")
    return ret


@transaction.atomic
def return_approve(*, return_id: int, actor: Any) -> ComplianceReturn:
    """Approve a draft return: records who (and in which role) and when;
    409 ``illegal_transition`` when it is already approved; audited
    ``compliance_return_approve``."""
    _require_supervisor(actor, "approve a compliance return")
    ret = _locked(return_id)
    if ret.status != ReturnStatus.DRAFT:
        raise IllegalTransition(
            f"Return {ret.pk} is already approved "
            f"({ret.approved_at:%Y-%m-%d %H:%M} UTC); build a new one to change it.",
            details={"status": ret.status},
        )
    ret.status = ReturnStatus.APPROVED
    ret.approved_at = timezone.now()
    ret.approved_by = actor
    ret.approved_role = str(actor.role)
    ret.save(update_fields=["status", "approved_at", "approved_by", "approved_role"])
    audit.record(
        actor=actor,
        action="compliance_return_approve",
        target=ret,
        before={"status": ReturnStatus.DRAFT},
        after={
            "status": ret.status,
            "approvedAt": ret.approved_at,
            "approvedRole": ret.approved_role,
            "contentHash": ret.content_hash,
        },
    )
    events.publish(compliance_events.return_event(ret, "approved"))
    return ret


# --- the CSV ------------------------------------------------------------------


def _percent(target: dict | None) -> Any:
    return None if not target else target.get("percent")


def _summary_row(ret: ComplianceReturn, row: dict) -> dict[str, Any]:
    collection = row.get("collectionTarget") or {}
    recovery = row.get("recoveryTarget") or {}
    values = {
        "returnId": ret.pk,
        "financialYear": row_financial_year(ret),
        "periodStart": ret.period_start,
        "periodEnd": ret.period_end,
        "category": row.get("category") or "",
        "categoryLabel": row.get("label") or categories.category_label(None),
        "collectionTargetPercent": _percent(collection),
        "collectionBasisFinancialYear": collection.get("basisFinancialYear"),
        "collectionBasisMassKg": _kg(collection.get("basisMassKg")),
        "collectionObligationKg": _kg(collection.get("obligationKg")),
        "collectionGapKg": _kg(row.get("collectionGapKg")),
        "collectionTargetCitation": collection.get("citation"),
        "recoveryTargetPercent": _percent(recovery),
        "recoveryObligationKg": _kg(recovery.get("obligationKg")),
        "recoveryGapKg": _kg(row.get("recoveryGapKg")),
        "recoveryTargetCitation": recovery.get("citation"),
        "recycledContentTargetPercent": _percent(row.get("recycledContentTarget")),
    }
    for prefix, key in (
        ("placed", "placedOnMarket"),
        ("collected", "collected"),
        ("recycled", "recycled"),
    ):
        tally = row.get(key) or {}
        values[f"{prefix}Count"] = tally.get("count", 0)
        values[f"{prefix}MassKg"] = _kg(tally.get("massKg"))
        values[f"{prefix}MissingMassCount"] = tally.get("missingMassCount", 0)
    return values


def _kg(value: Any) -> Decimal | None:
    """A mass from the figures (a JSON number) with its three decimals."""
    if value is None:
        return None
    return Decimal(str(value)).quantize(KG)


def _summary_rows(ret: ComplianceReturn) -> Iterator[dict[str, Any]]:
    for row in (ret.figures or {}).get("categories", []):
        yield _summary_row(ret, row)


def _pack_rows(ret: ComplianceReturn) -> Iterator[dict[str, Any]]:
    labels = dict(ReturnEvent.choices)
    lines = ret.lines.select_related("passport").order_by("id")
    for line in lines.iterator(chunk_size=2000):
        category = line.category or None
        yield {
            "returnId": ret.pk,
            "financialYear": row_financial_year(ret),
            "event": line.event,
            "eventLabel": labels.get(line.event, line.event),
            "occurredAt": line.occurred_at,
            "occurredOn": local_date(line.occurred_at),
            "serial": line.serial,
            "bpan": line.bpan,
            "passportUuid": line.passport.uuid,
            "model": line.model,
            "category": line.category,
            "categoryLabel": categories.category_label(category),
            "chemistry": line.chemistry,
            "massKg": None if line.mass_kg is None else line.mass_kg.quantize(KG),
            "custodian": line.custodian,
        }


def return_rows(ret: ComplianceReturn, schema: CsvSchema) -> Iterator[list[Any]]:
    """The return's rows in ``schema``'s column order (values not yet text)."""
    source = _summary_rows if schema.level == SchemaLevel.SUMMARY else _pack_rows
    fields = [column["field"] for column in schema.columns]
    for row in source(ret):
        yield [row.get(field) for field in fields]


def return_csv(ret: ComplianceReturn, schema: CsvSchema) -> bytes:
    """The return in ``schema``'s layout: a header row of the schema's headers,
    then one row per category (summary) or per pack (pack), every cell escaped
    against CSV injection (``bpmos.csvsafe``)."""
    columns = schema_columns_check(schema.level, schema.columns)
    header = [column["header"] for column in columns]
    return csv_bytes(header, return_rows(ret, schema))


# --- export -------------------------------------------------------------------


@dataclass(frozen=True)
class Export:
    """One export of a return: the CSV and what describes it."""

    ret: ComplianceReturn
    schema: CsvSchema
    content: bytes
    rows: int
    sha256: str  # hex, of ``content``
    filename: str
    content_type: str = "text/csv; charset=utf-8"

    @property
    def repr_digest(self) -> str:
        """The ``Repr-Digest`` header's value (RFC 9530)."""
        raw = hashlib.sha256(self.content).digest()
        return f"sha-256=:{base64.b64encode(raw).decode()}:"


def _filename(ret: ComplianceReturn, schema: CsvSchema) -> str:
    span = ret.financial_year or f"{ret.period_start}_{ret.period_end}"
    return f"bpmos-return-{ret.pk}-{span}-{schema.slug}.csv"


def _latest_approved_id() -> int:
    latest = (
        ComplianceReturn.objects.filter(status=ReturnStatus.APPROVED)
        .order_by("-approved_at", "-id")
        .values_list("id", flat=True)
        .first()
    )
    if latest is None:
        raise Conflict(
            "No compliance return has been approved yet: build one "
            "(POST /api/compliance/returns) and have a supervisor approve it.",
            code="no_approved_return",
        )
    return latest


@transaction.atomic
def return_export(
    *, return_id: int | None, schema_slug: str | None, actor: Any, source: str
) -> Export:
    """Export an approved return as CSV in a schema's layout (``return_id``
    None: the most recently approved; ``schema_slug`` None: the default
    pack-level layout). 409 when the return is a draft, when none is approved,
    or when its stored rows no longer match its content hash. Counts the
    export and writes one ``compliance_export`` audit row (actor, role, and
    the parameters: return, schema, rows, SHA-256, source)."""
    _require_supervisor(actor, "export a compliance return")
    schema = schema_get(slug=schema_slug)
    ret = _locked(_latest_approved_id() if return_id is None else return_id)
    if ret.status != ReturnStatus.APPROVED:
        raise Conflict(
            f"Return {ret.pk} is a draft: only an approved return is exported. "
            f"Approve it first (POST /api/compliance/returns/{ret.pk}/approve).",
            code="return_not_approved",
            details={"returnId": ret.pk, "status": ret.status},
        )
    if content_hash(ret.figures, _stored_line_rows(ret)) != ret.content_hash:
        raise Conflict(
            f"Return {ret.pk}'s stored figures or rows no longer match the "
            "content hash it was approved with; it is not exported. Build a "
            "new return.",
            code="return_altered",
            details={"returnId": ret.pk},
        )
    content = return_csv(ret, schema)
    rows = (
        ret.row_count
        if schema.level == SchemaLevel.PACK
        else len((ret.figures or {}).get("categories", []))
    )
    digest = hashlib.sha256(content).hexdigest()
    filename = _filename(ret, schema)
    now = timezone.now()
    ComplianceReturn.objects.filter(pk=ret.pk).update(
        export_count=F("export_count") + 1, last_exported_at=now
    )
    ret.refresh_from_db(fields=["export_count", "last_exported_at"])
    audit.record(
        actor=actor,
        action="compliance_export",
        target=ret,
        after={
            "returnId": ret.pk,
            "schema": schema.slug,
            "schemaLevel": schema.level,
            "schemaDefault": schema_slug is None,
            "returnChosen": "latest_approved" if return_id is None else "given",
            "financialYear": ret.financial_year or None,
            "periodStart": ret.period_start.isoformat(),
            "periodEnd": ret.period_end.isoformat(),
            "rows": rows,
            "bytes": len(content),
            "sha256": digest,
            "filename": filename,
            "contentHash": ret.content_hash,
            "exportCount": ret.export_count,
            "source": source,
        },
    )
    return Export(
        ret=ret,
        schema=schema,
        content=content,
        rows=rows,
        sha256=digest,
        filename=filename,
    )


# --- reads --------------------------------------------------------------------


def return_list():
    """Returns, newest built first, with their builder and approver."""
    return ComplianceReturn.objects.select_related("built_by", "approved_by").order_by(
        "-built_at", "-id"
    )


def return_get(*, return_id: int) -> ComplianceReturn:
    ret = return_list().filter(pk=return_id).first()
    if ret is None:
        raise NotFound(f"Return {return_id} does not exist.")
    return ret


def return_lines(*, return_id: int):
    """A return's pack rows in the order they were built (404 for no return)."""
    return_get(return_id=return_id)
    return (
        ReturnLine.objects.filter(ret_id=return_id)
        .select_related("passport")
        .order_by("id")
    )
