"""Readings from the field: store the normalized form, feed lines, evaluate rules.

Interface (the OPC UA slice fills it in; the collector, the poll endpoint and
Celery call it):

    readings_store(*, connector_id: int, readings: list[dict], actor=None) -> dict
        readings: the contract's normalized dicts (timestamp, tag_name, value,
        unit, quality, alarm_state); stores them (one row per tag and source
        timestamp: a repeat is skipped), sends mapped machine tags through
        ``lines.services.readings_ingest``, evaluates alert rules
        (``scada.alarms.readings_evaluate``) and returns
        {"stored": n, "duplicates": n, "alarms_raised": n}.
    connector_poll(*, connector_id: int, actor) -> dict   # POST /api/scada/poll
    connector_test(*, connector_id: int, actor) -> dict   # POST /api/scada/test
    connector_browse(*, connector_id: int, actor) -> list[dict]

How machine tags reach lines (docs/scada.md, "Connectors and tags"): only the
readings stored now (never a repeat) are sent, one ``readings_ingest`` call per
machine. A PLC's good and reject counters are cumulative while lines counts
increments (docs/lines.md), so each count reading becomes the difference from
the tag's previous stored value; a counter that went down was reset and counts
its new value; the first value ever is the baseline (an increment of 0); a
count older than the newest one already stored is kept here but not sent (its
pieces were counted by the newer one). A state tag delivers a state word
(``running``, ``blocked``...) or a number mapped by the connector's
``state_codes`` setting (default ``DEFAULT_STATE_CODES``). Bad-quality values,
unknown state codes and times lines would refuse (more than 5 minutes ahead)
are stored here and not sent.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypedDict

import structlog
from django.db import connection, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from bpmos.batch import FUTURE_TOLERANCE
from bpmos.errors import (
    Conflict,
    DependencyUnavailable,
    DomainError,
    InvalidInput,
    NotFound,
)
from bpmos.fields import time_problem
from bpmos.locking import ROW_LOCK
from elog import audit
from lines import services as line_services
from lines.models import MachineState
from lines.services import MAX_COUNT_INCREMENT
from scada import alarms
from scada.connectors.base import ConnectorError, connector_for
from scada.models import (
    AlarmFlag,
    CommState,
    Connector,
    ConnectorKind,
    Quality,
    ScadaReading,
    Tag,
    TagKind,
)

log = structlog.get_logger(__name__)

# A state tag's numeric code -> lines' state word, unless the connector's
# settings say otherwise ("state_codes").
DEFAULT_STATE_CODES: dict[str, str] = {
    "0": "idle",
    "1": "running",
    "2": "blocked",
    "3": "down",
    "4": "maintenance",
    "5": "ready",
}
MAX_READINGS = 50_000  # one batch (a 10,000-tag subscription publishes 10,000)
BROWSE_LIMIT = 5_000

_QUALITIES = frozenset(Quality.values)
_ALARM_FLAGS = frozenset(AlarmFlag.values)
_STATES = frozenset(MachineState.values)
_COUNT_KINDS = frozenset({TagKind.GOOD_COUNT.value, TagKind.REJECT_COUNT.value})
_MACHINE_KINDS = _COUNT_KINDS | {TagKind.STATE.value, TagKind.CYCLE_TIME.value}
_COLUMNS = (
    "timestamp",
    "received_at",
    "tag_id",
    "connector_id",
    "tag_name",
    "value",
    "value_text",
    "unit",
    "quality",
    "alarm_state",
)


class StoreResult(TypedDict):
    stored: int
    duplicates: int
    alarms_raised: int


# --- checking a batch -------------------------------------------------------------


def _row_error(index: int, field: str, message: str) -> InvalidInput:
    return InvalidInput(
        f"Reading {index}: {field}: {message} Nothing was stored.",
        code="validation_error",
        details={"rows": {str(index): {field: [message]}}},
    )


def _timestamp(index: int, raw: Any) -> datetime:
    if isinstance(raw, str):
        try:
            raw = datetime.fromisoformat(raw)
        except ValueError:
            raise _row_error(index, "timestamp", "Not an ISO 8601 time.") from None
    if not isinstance(raw, datetime) or raw.tzinfo is None:
        raise _row_error(index, "timestamp", "Needs a time with a time zone.")
    problem = time_problem(raw)
    if problem:
        raise _row_error(index, "timestamp", problem)
    return raw.astimezone(UTC)


def _checked(readings: list[dict]) -> list[tuple]:
    """The batch as rows of (ts, tag_name, value, text, unit, quality, alarm
    state); one bad reading refuses the batch (400 naming it)."""
    if not isinstance(readings, list):
        raise InvalidInput("Readings must be a list.", code="validation_error")
    if len(readings) > MAX_READINGS:
        raise InvalidInput(
            f"At most {MAX_READINGS:,} readings a batch.", code="validation_error"
        )
    rows = []
    for index, reading in enumerate(readings):
        if not isinstance(reading, dict):
            raise _row_error(index, "row", "Must be an object.")
        name = reading.get("tag_name")
        if not isinstance(name, str) or not 0 < len(name) <= 64:
            raise _row_error(index, "tag_name", "Required: 1-64 characters.")
        ts = _timestamp(index, reading.get("timestamp"))
        raw = reading.get("value")
        value, text = None, ""
        if isinstance(raw, bool | int | float):
            value = float(raw)
            if not math.isfinite(value):
                raise _row_error(index, "value", "Must be a finite number.")
        elif isinstance(raw, str):
            if len(raw) > 64:
                raise _row_error(index, "value", "Text of at most 64 characters.")
            text = raw
        elif raw is not None:
            raise _row_error(index, "value", "A number, a text or null.")
        unit = reading.get("unit") or ""
        if not isinstance(unit, str) or len(unit) > 16:
            raise _row_error(index, "unit", "Text of at most 16 characters.")
        quality = reading.get("quality", Quality.GOOD)
        if quality not in _QUALITIES:
            raise _row_error(index, "quality", f"One of {sorted(_QUALITIES)}.")
        flag = reading.get("alarm_state") or AlarmFlag.NORMAL
        if flag not in _ALARM_FLAGS:
            raise _row_error(index, "alarm_state", f"One of {sorted(_ALARM_FLAGS)}.")
        rows.append((ts, name, value, text, unit, str(quality), str(flag)))
    return rows


# --- storing ---------------------------------------------------------------------


def _insert(rows: list[tuple]) -> list[int]:
    """Insert ``rows`` (tuples of ``_COLUMNS``) skipping those already stored
    (unique tag and timestamp); returns the positions in ``rows`` that were new,
    with their ids, as [(position, id)]."""
    if not rows:
        return []
    table = connection.ops.quote_name(ScadaReading._meta.db_table)
    names = ", ".join(_COLUMNS)
    new: dict[tuple, int] = {}
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One statement for the whole batch: the columns as arrays.
            columns = list(zip(*rows, strict=True))
            types = (
                "timestamptz",
                "timestamptz",
                "bigint",
                "bigint",
                "varchar",
                "float8",
                "varchar",
                "varchar",
                "varchar",
                "varchar",
            )
            arrays = ", ".join(f"%s::{kind}[]" for kind in types)
            cursor.execute(
                f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays}) "
                "ON CONFLICT (tag_name, timestamp) DO NOTHING "
                "RETURNING id, tag_name, timestamp",
                [list(column) for column in columns],
            )
            for pk, name, ts in cursor.fetchall():
                new[(name, ts)] = pk
            keys = [(row[4], row[0]) for row in rows]
        else:
            adapt = connection.ops.adapt_datetimefield_value
            prepared = [
                tuple(adapt(v) if isinstance(v, datetime) else v for v in row)
                for row in rows
            ]
            # SQLite allows 32,766 parameters a statement.
            size = 32_000 // len(_COLUMNS)
            one = f"({', '.join(['%s'] * len(_COLUMNS))})"
            for start in range(0, len(prepared), size):
                chunk = prepared[start : start + size]
                cursor.execute(
                    f"INSERT INTO {table} ({names}) VALUES "
                    f"{', '.join([one] * len(chunk))} "
                    "ON CONFLICT (tag_name, timestamp) DO NOTHING "
                    "RETURNING id, tag_name, timestamp",
                    [value for row in chunk for value in row],
                )
                for pk, name, ts in cursor.fetchall():
                    new[(name, adapt(ts) if isinstance(ts, datetime) else ts)] = pk
            keys = [(row[4], row[0]) for row in prepared]
    return [(i, new[key]) for i, key in enumerate(keys) if key in new]


def _reading(pk: int, row: tuple) -> ScadaReading:
    reading = ScadaReading(id=pk, **dict(zip(_COLUMNS, row, strict=True)))
    reading._state.adding = False
    return reading


@transaction.atomic
def readings_store(
    *, connector_id: int, readings: list[dict], actor=None
) -> StoreResult:
    """Store a batch of a connector's normalized readings, skipping repeats
    (same tag and timestamp); send the new ones of machine tags through lines'
    ingestion (one call per machine); evaluate the alert rules over the new
    ones. One audit record per batch that stored something."""
    checked = _checked(readings)
    connector = Connector.objects.filter(pk=connector_id).first()
    if connector is None:
        raise NotFound(f"Connector {connector_id} does not exist.")
    tags = _tags_of(connector_id)
    names = {row[1] for row in checked}
    counters = [
        tag
        for name in names
        if (tag := tags.get(name)) and tag.kind in _COUNT_KINDS and tag.machine_id
    ]
    if counters:
        # Two batches of one counter (the collector and a manual poll) must not
        # both count from the same previous value: the second waits here.
        list(
            Tag.objects.select_for_update(**ROW_LOCK)
            .filter(pk__in=sorted(tag.pk for tag in counters))
            .order_by("pk")
            .values_list("pk", flat=True)
        )
    # The previous value of each counter, read before this batch is stored.
    previous = _previous_counts(counters)
    received = timezone.now()
    unique: dict[tuple, tuple] = {}
    for ts, name, value, text, unit, quality, flag in checked:
        tag = tags.get(name)
        unique.setdefault(
            (name, ts),
            (
                ts,
                received,
                tag.pk if tag else None,
                connector.pk,
                name,
                value,
                text,
                unit or (tag.unit if tag else ""),
                quality,
                flag,
            ),
        )
    rows = list(unique.values())
    stored = [_reading(pk, rows[i]) for i, pk in _insert(rows)]
    duplicates = len(checked) - len(stored)
    if stored:
        _feed_lines(connector, tags, stored, previous, actor)
    raised = _evaluate(stored)
    if stored:
        times = [reading.timestamp for reading in stored]
        stored_names = sorted({reading.tag_name for reading in stored})
        audit.record_quick(
            actor=actor,
            action="scada.readings_stored",
            target=connector,
            after={
                "stored": len(stored),
                "duplicates": duplicates,
                "alarms_raised": len(raised),
                "first_ts": min(times),
                "last_ts": max(times),
                "tag_count": len(stored_names),
                "tags": stored_names[:20],
            },
        )
    return {
        "stored": len(stored),
        "duplicates": duplicates,
        "alarms_raised": len(raised),
    }


def _evaluate(stored: list[ScadaReading]) -> list:
    if not stored:
        return []
    return list(alarms.readings_evaluate(readings=stored))


# --- feeding lines ------------------------------------------------------------------


class TagInfo(NamedTuple):
    """What storing reads of a tag (tuples: a 10,000-tag connector's batch
    builds no model instances)."""

    pk: int
    tag_name: str
    unit: str
    kind: str
    machine_id: int | None
    enabled: bool


def _tags_of(connector_id: int) -> dict[str, TagInfo]:
    # All of the connector's tags in one plain query: an IN list of a
    # 10,000-reading batch's names cost Django ~90 ms a thousand to compile.
    rows = Tag.objects.filter(connector_id=connector_id).values_list(
        "pk", "tag_name", "unit", "kind", "machine_id", "enabled"
    )
    return {row[1]: TagInfo(*row) for row in rows}


def _previous_counts(tags: list[TagInfo]) -> dict[str, tuple[datetime, float]]:
    """Each counter tag's newest stored usable value: tag name -> (ts, value)."""
    if not tags:
        return {}
    newest = (
        ScadaReading.objects.filter(tag_name=OuterRef("tag_name"), value__isnull=False)
        .exclude(quality=Quality.BAD)
        .order_by("-timestamp", "-id")
    )
    rows = (
        Tag.objects.filter(pk__in=[t.pk for t in tags])
        .annotate(
            previous_ts=Subquery(newest.values("timestamp")[:1]),
            previous_value=Subquery(newest.values("value")[:1]),
        )
        .values_list("tag_name", "previous_ts", "previous_value")
    )
    return {
        name: (ts, value)
        for name, ts, value in rows
        if ts is not None and value is not None
    }


def state_codes(connector: Connector) -> dict[str, str]:
    """The connector's numeric state codes (settings ``state_codes``), else
    the default."""
    codes = (connector.settings or {}).get("state_codes")
    return codes if isinstance(codes, dict) and codes else DEFAULT_STATE_CODES


def _state_word(reading: ScadaReading, codes: dict[str, str]) -> str | None:
    if reading.value_text:
        word = reading.value_text.strip().lower()
        return word if word in _STATES else None
    if reading.value is None or reading.value != int(reading.value):
        return None
    word = codes.get(str(int(reading.value)))
    return word if word in _STATES else None


def _count_rows(
    tag: TagInfo, readings: list[ScadaReading], previous: tuple | None
) -> list[dict]:
    """Cumulative counter values as lines' increments (see the module docstring)."""
    rows = []
    last_ts, last = previous if previous else (None, None)
    for reading in sorted(readings, key=lambda r: r.timestamp):
        value = reading.value
        if reading.quality == Quality.BAD or value is None or value < 0:
            continue
        if last_ts is not None and reading.timestamp <= last_ts:
            continue  # older than a count already sent: its pieces are counted
        if last is None:
            increment = 0.0  # the first value ever: a baseline
        elif value >= last:
            increment = value - last
        else:
            increment = value  # the counter was reset and counted up again
        last_ts, last = reading.timestamp, value
        if increment != int(increment) or increment > MAX_COUNT_INCREMENT:
            log.warning(
                "scada_count_increment_refused",
                tag=tag.tag_name,
                increment=increment,
                at=reading.timestamp.isoformat(),
            )
            continue
        rows.append(_line_row(tag.kind, reading, int(increment)))
    return rows


def _line_row(kind: str, reading: ScadaReading, value: Any) -> dict:
    row = {
        "tag": kind,
        "ts": reading.timestamp.isoformat(),
        "value": value,
        "quality": reading.quality,
    }
    if reading.unit:
        row["unit"] = reading.unit
    return row


def _feed_lines(
    connector: Connector,
    tags: dict[str, TagInfo],
    stored: list[ScadaReading],
    previous: dict[str, tuple],
    actor,
) -> None:
    latest = timezone.now() + FUTURE_TOLERANCE
    by_tag: dict[str, list[ScadaReading]] = defaultdict(list)
    for reading in stored:
        tag = tags.get(reading.tag_name)
        if (
            tag
            and tag.machine_id
            and tag.kind in _MACHINE_KINDS
            and tag.enabled
            and reading.timestamp <= latest
        ):
            by_tag[tag.tag_name].append(reading)
    if not by_tag:
        return
    codes = state_codes(connector)
    per_machine: dict[int, list[dict]] = defaultdict(list)
    for name, readings in by_tag.items():
        tag = tags[name]
        rows = per_machine[tag.machine_id]
        if tag.kind in _COUNT_KINDS:
            rows.extend(_count_rows(tag, readings, previous.get(name)))
        elif tag.kind == TagKind.STATE:
            for reading in readings:
                word = _state_word(reading, codes)
                if word is None:
                    log.warning(
                        "scada_state_unknown",
                        tag=name,
                        value=reading.value_text or reading.value,
                    )
                    continue
                rows.append(_line_row(TagKind.STATE, reading, word))
        else:  # cycle time
            rows.extend(
                _line_row(TagKind.CYCLE_TIME, reading, reading.value)
                for reading in readings
                if reading.value is not None and reading.value >= 0
            )
    for machine_id, rows in per_machine.items():
        if not rows:
            continue
        try:
            line_services.readings_ingest(machine_id=machine_id, rows=rows, actor=actor)
        except DomainError as error:
            # Its own savepoint rolled back: the SCADA readings stay stored.
            log.warning(
                "scada_lines_ingest_refused",
                connector=connector.pk,
                machine=machine_id,
                error=error.message,
            )


# --- the contract's endpoints ---------------------------------------------------


def _connector(connector_id: int) -> Connector:
    connector = Connector.objects.filter(pk=connector_id).first()
    if connector is None:
        raise NotFound(f"Connector {connector_id} does not exist.")
    return connector


def _require_opcua(connector: Connector, what: str) -> None:
    if connector.kind != ConnectorKind.OPCUA:
        raise InvalidInput(
            f"Connector {connector.pk} is a {connector.get_kind_display()} "
            f"connector; only OPC UA connectors can be {what}.",
            code="not_scada",
            details={"connector": [f"Not an OPC UA connector: cannot be {what}."]},
        )


def _comm_ok(connector_id: int) -> None:
    # A queryset update: comm_state is not configuration, so updated_at (the
    # collector's signal to reload a connector) stays as it was.
    Connector.objects.filter(pk=connector_id).update(
        comm_state=CommState.OK, last_ok_at=timezone.now(), last_error=""
    )


def _comm_lost(connector_id: int, error: str) -> None:
    Connector.objects.filter(pk=connector_id).update(
        comm_state=CommState.LOST, last_error=error, last_error_at=timezone.now()
    )


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


def connector_test(*, connector_id: int, actor) -> dict:
    """Try the connector's link (``test_connection``); the answer says whether
    it worked and why not. Records the outcome in the connector's comm state."""
    connector = _connector(connector_id)
    started = time.perf_counter()
    try:
        ok, error = connector_for(connector).test_connection()
    except ConnectorError as failure:
        ok, error = False, str(failure)
    latency = _elapsed_ms(started)
    with transaction.atomic():
        if ok:
            _comm_ok(connector.pk)
        else:
            _comm_lost(connector.pk, error or "The test failed.")
        audit.record(
            actor=actor,
            action="scada.connector_tested",
            target=connector,
            after={"ok": ok, "error": error, "latency_ms": latency},
        )
    return {
        "ok": ok,
        "error": error,
        "connector": connector.pk,
        "latency_ms": latency,
    }


def connector_poll(*, connector_id: int, actor) -> dict:
    """Read every enabled tag of an OPC UA connector once, then store what was
    read (``readings_store``). The server's answer is awaited outside any
    transaction. 409 if the connector is disabled; 503 if its server cannot
    be read (the connector's comm state says so)."""
    connector = _connector(connector_id)
    _require_opcua(connector, "polled")
    if not connector.enabled:
        raise Conflict(
            f"Connector {connector.pk} is disabled; enable it to poll it.",
            code="connector_disabled",
        )
    tags = list(connector.tags.filter(enabled=True).order_by("id"))
    client = connector_for(connector)
    try:
        raw = client.fetch_data(tags=tags)
    except ConnectorError as failure:
        _comm_lost(connector.pk, str(failure))
        raise DependencyUnavailable(
            str(failure),
            code="connector_unavailable",
            details={"dependency": "connector", "connector": connector.pk},
        ) from failure
    with transaction.atomic():
        result = readings_store(
            connector_id=connector.pk, readings=client.normalize(raw), actor=actor
        )
        _comm_ok(connector.pk)
    return {
        "connector": connector.pk,
        "readings_stored": result["stored"],
        "duplicates": result["duplicates"],
        "alarms_raised": result["alarms_raised"],
    }


def connector_browse(
    *, connector_id: int, actor, limit: int = BROWSE_LIMIT
) -> list[dict]:
    """The OPC UA server's variables (node id, browse path, data type), each
    with the tag already mapped to it (``tag_name``, or None)."""
    connector = _connector(connector_id)
    _require_opcua(connector, "browsed")
    try:
        nodes = connector_for(connector).browse_nodes(limit)
    except ConnectorError as failure:
        _comm_lost(connector.pk, str(failure))
        raise DependencyUnavailable(
            str(failure),
            code="connector_unavailable",
            details={"dependency": "connector", "connector": connector.pk},
        ) from failure
    _comm_ok(connector.pk)
    mapped = dict(connector.tags.values_list("node_id", "tag_name"))
    return [{**node, "tag_name": mapped.get(node["node_id"])} for node in nodes]
