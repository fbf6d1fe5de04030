"""LIMS quality results into the passports' QA events (docs/scada.md, "LIMS
quality results").

A result (serial, test name, pass/fail, values, when it was tested) comes from a
CSV a lab exports (``lims_import_csv``) or from a LIMS's REST API
(``lims_fetch``, and the periodic ``lims_fetch_due``). ``lims_results_apply``
is the one place both end:

* each result is checked on its own (the serial names a passport, through
  ``passports.selectors.resolve``; a test name; pass or fail; ``values`` a flat
  object of numbers and short texts; ``tested_at`` with a time zone, not in the
  future); a bad one is reported with its row number and why, and not applied;
* a result whose key was applied before is skipped, so re-importing a file or
  re-fetching an overlapping window applies nothing twice;
* each good result becomes exactly one ``qa_passed`` / ``qa_failed`` event
  through ``passports.services.passport_event_record`` (the lifecycle, the
  ledger's hash chain, its audit record and live event are passports' own);
  the values that are LIMS-sourced EU attributes (initial internal
  resistance, initial self-discharge, round-trip efficiency at half the cycle
  life, the test report: ``passports.services.LIMS_ATTRIBUTES``) are checked
  with their attribute's check and set on the passport in the same
  transaction (``passport_lims_attributes_record``).
  The ``LimsResult`` row, the passport event and the audit record of the row
  commit together or not at all: the row is inserted first, so of two imports
  of the same result running at once one applies it and the other skips it.
  An event the lifecycle refuses (a recycled battery, a second ``qa_passed``)
  or a date the ledger refuses (before the battery was made) is a row error.

A file with some bad rows applies its good rows and reports the bad ones; a file
with no row that could be applied (nothing applied, nothing already applied)
is a 400 naming every row. ``dry_run`` checks every row and applies nothing (it
does not foresee a lifecycle refusal: that needs the append itself).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO, Any

import structlog
from django.db import IntegrityError, transaction
from django.db.models import Max, QuerySet
from django.utils import timezone

from bpmos.errors import (
    Conflict,
    DependencyUnavailable,
    DomainError,
    InvalidInput,
    NotFound,
)
from bpmos.fields import time_problem
from elog import audit, shiftlog
from elog.models import ShiftLogEntryType
from passports import selectors as passport_selectors
from passports import services as passport_services
from scada.connectors.base import ConnectorError, connector_for
from scada.connectors.lims import passed_from, tested_at_from
from scada.models import CommState, Connector, ConnectorKind, LimsResult

log = structlog.get_logger(__name__)

# A CSV is read whole into memory: bounded so one upload cannot take the worker.
MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_ROWS = 5_000
# The columns every CSV has; any other column is one of the result's values.
CSV_REQUIRED = ("serial", "test_name", "result", "tested_at")
CSV_KEY = "key"  # optional: the LIMS's result id, when the export has one
MAX_SERIAL = 64  # as passports keep serials
MAX_TEST_NAME = 100
MAX_KEY = 200
# A lab's clock may run a little ahead of ours (the ledger allows the same).
CLOCK_SKEW = timedelta(minutes=5)
# A fetch asks for results tested since the newest one kept, less this much, so
# a result the LIMS publishes a little late is still fetched (keys dedupe).
DEFAULT_OVERLAP_S = 3600
# The passport event's text fields are at most this long (passports' rule).
_EVENT_TEXT = 300

SOURCE_CSV = "csv"
SOURCE_API = "api"


@dataclass(frozen=True)
class RowError:
    """One result that was not applied: where it was and why."""

    row: int
    serial: str
    error: str
    code: str = "invalid"

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "serial": self.serial,
            "error": self.error,
            "code": self.code,
        }


@dataclass
class ApplyReport:
    """What an import or a fetch did."""

    applied: int = 0
    skipped: int = 0
    rejected: list[RowError] = field(default_factory=list)
    dry_run: bool = False

    def summary(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "skipped": self.skipped,
            "rejected": len(self.rejected),
        }


@dataclass(frozen=True)
class _Good:
    """A result that passed every check, with the passport it names."""

    row: int
    key: str
    serial: str
    passport_id: int
    test_name: str
    passed: bool
    values: dict[str, Any]
    tested_at: datetime


# --- checks ---------------------------------------------------------------------


def _text_of(value: Any) -> str:
    """Text as given (stripped); a whole number (a LIMS's numeric serial) as
    its digits; anything else as missing."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value.strip() if isinstance(value, str) else ""


def _tested_at_problem(tested_at: Any, now: datetime) -> str | None:
    if not isinstance(tested_at, datetime):
        return "tested_at: an ISO 8601 date-time, e.g. 2026-11-23T10:00:00Z."
    if timezone.is_naive(tested_at):
        return "tested_at: give a time zone (Z or +05:30)."
    if tested_at > now + CLOCK_SKEW:
        return "tested_at: cannot be in the future."
    problem = time_problem(tested_at)
    return f"tested_at: {problem}" if problem else None


def _derived_key(serial: str, test_name: str, tested_at: datetime) -> str:
    return f"{serial}|{test_name}|{tested_at.astimezone(UTC).isoformat()}"


def _check(item: Any, row: int, now: datetime) -> _Good | RowError:
    """``item`` (a normalized result) checked, its passport found."""
    if not isinstance(item, dict):
        return RowError(row, "", "A result must be an object.")
    serial = _text_of(item.get("serial"))
    if item.get("error"):
        return RowError(row, serial, str(item["error"]))
    if not serial:
        return RowError(row, "", "serial: required.")
    if len(serial) > MAX_SERIAL:
        return RowError(
            row, serial[:MAX_SERIAL], f"serial: at most {MAX_SERIAL} characters."
        )
    test_name = _text_of(item.get("test_name"))
    if not test_name:
        return RowError(row, serial, "test_name: required.")
    if len(test_name) > MAX_TEST_NAME:
        return RowError(row, serial, f"test_name: at most {MAX_TEST_NAME} characters.")
    passed = item.get("passed")
    if not isinstance(passed, bool):
        return RowError(
            row, serial, "result: pass or fail (pass/fail, PASS/FAIL, passed/failed)."
        )
    values = item.get("values") or {}
    problem = (
        passport_services.qa_values_problem(values)
        or passport_services.lims_attributes_problem(values)
        or _tested_at_problem(item.get("tested_at"), now)
    )
    if problem:
        return RowError(row, serial, problem)
    tested_at: datetime = item["tested_at"]
    key = item.get("key")
    if key not in (None, "") and (not isinstance(key, str) or len(key) > MAX_KEY):
        return RowError(row, serial, f"key: a text of at most {MAX_KEY} characters.")
    try:
        passport = passport_selectors.resolve(serial)
    except NotFound:
        return RowError(
            row, serial, "Unknown serial: no passport has it.", "unknown_serial"
        )
    except Conflict as exc:
        return RowError(row, serial, exc.message, exc.code)
    # Kept under the passport's own serial (a lab may give a barcode or the
    # BPAN), so the list's serial filter and the derived key name one battery
    # one way.
    if key in (None, ""):
        key = _derived_key(passport.serial, test_name, tested_at)
    return _Good(
        row=row,
        key=key,
        serial=passport.serial,
        passport_id=passport.pk,
        test_name=test_name,
        passed=passed,
        values=values,
        tested_at=tested_at,
    )


# --- applying ---------------------------------------------------------------------


def _event_data(good: _Good) -> tuple[str, dict[str, Any]]:
    """The QA event's kind and data: the test's name and its measured values
    (kept in the ledger as numbers and texts); a failure's reason names the
    test."""
    data: dict[str, Any] = {"test": good.test_name}
    shown = passport_services.lims_shown_values(good.values)
    if shown:
        data["values"] = shown
    if good.passed:
        return "qa_passed", {**data, "note": "LIMS result"}
    return "qa_failed", {
        **data,
        "reason": f"LIMS: {good.test_name} failed"[:_EVENT_TEXT],
    }


def _refusal(exc: DomainError) -> str:
    """A passports refusal as a row error's text (its field named as ours)."""
    details = exc.details if isinstance(exc.details, dict) else {}
    when = details.get("occurredAt")
    if isinstance(when, list) and when:
        return f"tested_at: {when[0]}"
    return exc.message


def _apply_one(
    good: _Good, *, source: str, connector_id: int | None, actor: Any
) -> bool:
    """Apply one checked result; False when its key was applied meanwhile."""
    kind, data = _event_data(good)
    with transaction.atomic():
        try:
            # First, so a concurrent import of the same key waits here and then
            # skips, instead of appending a second event.
            with transaction.atomic():
                result = LimsResult.objects.create(
                    key=good.key,
                    connector_id=connector_id,
                    serial=good.serial,
                    test_name=good.test_name,
                    passed=good.passed,
                    values=passport_services.lims_shown_values(good.values),
                    tested_at=good.tested_at,
                    source=source,
                )
        except IntegrityError:
            if LimsResult.objects.filter(key=good.key).exists():
                return False
            raise
        event = passport_services.passport_event_record(
            passport_id=good.passport_id,
            kind=kind,
            data=data,
            occurred_at=good.tested_at.isoformat(),
            actor=actor,
        )
        result.passport_event_id = event.pk
        result.save(update_fields=["passport_event_id"])
        # The EU attributes a lab measures (internal resistance, self-discharge,
        # round-trip efficiency, the test report) onto the passport.
        attributes_set = passport_services.passport_lims_attributes_record(
            passport_id=good.passport_id, values=good.values, actor=actor
        )
        audit.record(
            actor=actor,
            action="lims_result.applied",
            target=result,
            after={
                "key": result.key,
                "serial": result.serial,
                "test_name": result.test_name,
                "passed": result.passed,
                "values": result.values,
                "tested_at": result.tested_at,
                "source": source,
                "connector": connector_id,
                "passport_event_id": event.pk,
                "event_kind": kind,
                "attributes": sorted(attributes_set),
            },
        )
    return True


def _applied_keys(keys: Iterable[str]) -> set[str]:
    keys = list(keys)
    found: set[str] = set()
    for start in range(0, len(keys), 1000):
        found.update(
            LimsResult.objects.filter(key__in=keys[start : start + 1000]).values_list(
                "key", flat=True
            )
        )
    return found


def lims_results_apply(
    *,
    results: Sequence[Any],
    source: str,
    connector_id: int | None = None,
    actor: Any,
    dry_run: bool = False,
    rows: Sequence[int] | None = None,
) -> ApplyReport:
    """Check each of ``results`` (normalized: ``key``?, ``serial``,
    ``test_name``, ``passed``, ``values``, ``tested_at``) and apply the good
    ones as QA events (see the module docstring). ``rows`` numbers them for the
    report (default 1, 2, …). Each applied result commits on its own."""
    if source not in (SOURCE_CSV, SOURCE_API):
        raise InvalidInput("source: csv or api.", details={"source": ["csv or api."]})
    numbers = list(rows) if rows is not None else list(range(1, len(results) + 1))
    report = ApplyReport(dry_run=dry_run)
    now = timezone.now()
    checked = [
        _check(item, row, now) for item, row in zip(results, numbers, strict=True)
    ]
    done = _applied_keys(c.key for c in checked if isinstance(c, _Good))
    for outcome in checked:
        if isinstance(outcome, RowError):
            report.rejected.append(outcome)
            continue
        if outcome.key in done:
            report.skipped += 1
            continue
        done.add(outcome.key)  # a second row with the same key in this batch
        if dry_run:
            report.applied += 1
            continue
        try:
            applied = _apply_one(
                outcome, source=source, connector_id=connector_id, actor=actor
            )
        except DomainError as exc:  # the lifecycle or the ledger refused it
            report.rejected.append(
                RowError(outcome.row, outcome.serial, _refusal(exc), exc.code)
            )
            continue
        if applied:
            report.applied += 1
        else:
            report.skipped += 1
    report.rejected.sort(key=lambda error: error.row)
    return report


# --- CSV --------------------------------------------------------------------------


def _file_error(message: str) -> InvalidInput:
    return InvalidInput(
        f"Invalid input: file: {message}",
        code="validation_error",
        details={"file": [message]},
    )


def _read_text(file: IO[bytes]) -> str:
    raw = file.read(MAX_FILE_BYTES + 1)
    if isinstance(raw, str):  # a text stream: take it as it is
        raw = raw.encode()
    if len(raw) > MAX_FILE_BYTES:
        raise _file_error(f"At most {MAX_FILE_BYTES // (1024 * 1024)} MB.")
    try:
        text = raw.decode("utf-8-sig")  # Excel's "CSV UTF-8" starts with a BOM
    except UnicodeDecodeError as exc:
        raise _file_error(
            f"Not UTF-8 text (byte {exc.start + 1}); save it as CSV UTF-8."
        ) from exc
    if "\x00" in text:
        raise _file_error("Not a text file (it holds NUL characters).")
    if not text.strip():
        raise _file_error("The file is empty.")
    return text


def _delimiter(header_line: str) -> str:
    """``,`` unless the header holds more ``;`` (Excel in many locales) or tabs."""
    counts = {sep: header_line.count(sep) for sep in (",", ";", "\t")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] > counts[","] else ","


_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def _cell_value(text: str) -> int | float | str:
    """A number when the cell is one written plainly (``12``, ``-3.5``,
    ``1e3``; a decimal point, no thousands separators), else its text."""
    if not _NUMBER.fullmatch(text):
        return text
    if text.lstrip("+-").isdigit():
        return int(text)
    number = float(text)
    return number if math.isfinite(number) else text


def csv_parse(text: str) -> tuple[list[dict[str, Any]], list[int], list[RowError]]:
    """The CSV's rows as normalized results (and their line numbers), and the
    rows that are malformed as such (a wrong number of cells). 400 for a file
    that cannot be read as results at all (no header, missing columns, too
    many rows)."""
    first_line = text.lstrip("\r\n").split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first_line))
    try:
        header = next(reader, None)
        while header is not None and not any(cell.strip() for cell in header):
            header = next(reader, None)
        if header is None:
            raise _file_error("The file is empty.")
        names = [cell.strip().lower().replace(" ", "_") for cell in header]
        missing = [name for name in CSV_REQUIRED if name not in names]
        if missing:
            raise _file_error(
                f"Missing column{'s' if len(missing) > 1 else ''}: "
                f"{', '.join(missing)} (the header needs "
                f"{', '.join(CSV_REQUIRED)})."
            )
        twice = sorted({name for name in names if names.count(name) > 1 and name})
        if twice:
            raise _file_error(f"Column given twice: {', '.join(twice)}.")
        results: list[dict[str, Any]] = []
        numbers: list[int] = []
        bad: list[RowError] = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue  # a blank line
            if len(results) + len(bad) >= MAX_ROWS:
                raise _file_error(f"At most {MAX_ROWS} rows per file.")
            row = reader.line_num
            if len(cells) != len(names):
                serial = (
                    cells[names.index("serial")]
                    if len(cells) > names.index("serial")
                    else ""
                )
                bad.append(
                    RowError(
                        row,
                        serial.strip(),
                        f"{len(cells)} cells; the header has {len(names)}.",
                    )
                )
                continue
            record = dict(zip(names, (cell.strip() for cell in cells), strict=True))
            values = {
                name: _cell_value(cell)
                for name, cell in record.items()
                if name and name not in CSV_REQUIRED and name != CSV_KEY and cell
            }
            results.append(
                {
                    "key": record.get(CSV_KEY) or None,
                    "serial": record["serial"],
                    "test_name": record["test_name"],
                    "passed": passed_from(record["result"]),
                    "values": values,
                    "tested_at": tested_at_from(record["tested_at"]),
                }
            )
            numbers.append(row)
    except csv.Error as exc:
        raise _file_error(
            f"Not a readable CSV (line {reader.line_num}): {exc}."
        ) from exc
    return results, numbers, bad


def lims_import_csv(
    *, file: IO[bytes], actor: Any, dry_run: bool = False, name: str = ""
) -> ApplyReport:
    """Import a lab's CSV (format in docs/scada.md): apply its good rows,
    report the bad ones. 400 when the file cannot be read or no row of it
    could be applied; ``dry_run`` checks and applies nothing."""
    text = _read_text(file)
    results, numbers, bad = csv_parse(text)
    if not results and not bad:
        raise _file_error("The file has a header but no rows.")
    report = lims_results_apply(
        results=results, source=SOURCE_CSV, actor=actor, dry_run=dry_run, rows=numbers
    )
    report.rejected = sorted([*bad, *report.rejected], key=lambda error: error.row)
    if report.applied == 0 and report.skipped == 0:
        raise InvalidInput(
            f"No row of the file could be applied ({len(report.rejected)} "
            f"rejected; the first, row {report.rejected[0].row}: "
            f"{report.rejected[0].error})",
            code="no_valid_rows",
            details={"rejected": [error.as_dict() for error in report.rejected]},
        )
    if not dry_run:
        with transaction.atomic():
            audit.record(
                actor=actor,
                action="lims_results.imported",
                target_type="scada.limsresult",
                after={
                    "file": name[:200],
                    **report.summary(),
                    "rejected_rows": [error.row for error in report.rejected][:100],
                },
            )
            _readings_approved(report, actor=actor, origin=f"file {name[:200]!r}")
    return report


def _readings_approved(
    report: ApplyReport, *, actor: Any, origin: str, target: Any = None
) -> None:
    """The shift log's ``readings_approved`` auto-entry (docs/logs.md): a
    supervisor (or the LIMS beat task) applied lab readings to passports."""
    if not report.applied:
        return
    shiftlog.auto_entry(
        entry_type=ShiftLogEntryType.READINGS_APPROVED,
        actor=actor,
        body=(
            f"{report.applied} LIMS quality result(s) applied to passports from "
            f"{origin} ({report.skipped} applied before, "
            f"{len(report.rejected)} rejected)."
        ),
        target=target,
        metadata={"origin": origin[:220], **report.summary()},
    )


# --- the REST LIMS ----------------------------------------------------------------


def _lims_connector(connector_id: int) -> Connector:
    connector = Connector.objects.filter(pk=connector_id).first()
    if connector is None:
        raise NotFound(f"Connector {connector_id} does not exist.")
    if connector.kind != ConnectorKind.LIMS:
        raise InvalidInput(
            f"Connector {connector_id} is a {connector.kind} connector, not a LIMS.",
            code="validation_error",
            details={"connector": ["Not a LIMS connector."]},
        )
    return connector


def _since(connector: Connector) -> datetime | None:
    newest = LimsResult.objects.filter(connector=connector).aggregate(
        newest=Max("tested_at")
    )["newest"]
    if newest is None:
        return None
    try:
        overlap = int(connector.settings.get("overlap_s", DEFAULT_OVERLAP_S))
    except (TypeError, ValueError, AttributeError):
        overlap = DEFAULT_OVERLAP_S
    return newest - timedelta(seconds=max(0, overlap))


def lims_fetch(*, connector_id: int, actor: Any) -> ApplyReport:
    """Fetch a LIMS connector's new results and apply them (503 when the LIMS
    cannot be reached; the connector records the error either way)."""
    connector = _lims_connector(connector_id)
    if not connector.enabled:
        raise Conflict(
            f"Connector {connector.name} is disabled.", code="connector_disabled"
        )
    client = connector_for(connector)
    try:
        raw = client.fetch_data(since=_since(connector))
    except ConnectorError as exc:
        # The link's health, not a business change: no audit record.
        Connector.objects.filter(pk=connector.pk).update(
            comm_state=CommState.LOST,
            last_error=str(exc)[:2000],
            last_error_at=timezone.now(),
        )
        raise DependencyUnavailable(str(exc), code="lims_unreachable") from exc
    Connector.objects.filter(pk=connector.pk).update(
        comm_state=CommState.OK, last_ok_at=timezone.now()
    )
    report = lims_results_apply(
        results=client.normalize(raw),
        source=SOURCE_API,
        connector_id=connector.pk,
        actor=actor,
    )
    if report.applied or report.rejected:
        with transaction.atomic():
            audit.record(
                actor=actor,
                action="lims_results.fetched",
                target=connector,
                after={
                    **report.summary(),
                    "rejected_rows": [error.row for error in report.rejected][:100],
                },
            )
            _readings_approved(
                report,
                actor=actor,
                origin=f"LIMS {connector.name[:100]}",
                target=connector,
            )
    return report


def lims_fetch_due(*, now: datetime | None = None) -> int:
    """Fetch every enabled LIMS connector whose interval has passed since its
    last attempt (the beat task); returns how many were fetched. One LIMS that
    is down does not stop the others."""
    now = now or timezone.now()
    fetched = 0
    for connector in Connector.objects.filter(kind=ConnectorKind.LIMS, enabled=True):
        last = max(
            (t for t in (connector.last_ok_at, connector.last_error_at) if t),
            default=None,
        )
        if (
            last is not None
            and last + timedelta(seconds=connector.poll_interval_s) > now
        ):
            continue
        try:
            lims_fetch(connector_id=connector.pk, actor=None)
        except DomainError as exc:
            log.warning("lims_fetch_failed", connector=connector.pk, error=exc.message)
            continue
        fetched += 1
    return fetched


# --- reads ------------------------------------------------------------------------


def lims_result_list() -> QuerySet[LimsResult]:
    """Every applied result, newest test first (the list's filters apply)."""
    return LimsResult.objects.select_related("connector").order_by("-tested_at", "-id")
