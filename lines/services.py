"""Every write of lines: readings ingestion (the one path SCADA polling, the
mobile app and the API share) and the OEE snapshot refresh.

``readings_ingest`` is built for volume: the batch is checked in plain Python
(no serializer per row), then stored in one statement that skips what is
already stored: on PostgreSQL COPY straight into the table (in a savepoint)
and, only when that meets a duplicate, COPY into a temporary table and one
``INSERT ... SELECT ... ON CONFLICT (machine_id, tag, ts) DO NOTHING``; on
SQLite one ``executemany`` of ``INSERT ... ON CONFLICT DO NOTHING``. A batch is
stored whole or not at all, audited once, and announces the station and line
changes it causes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from operator import itemgetter
from typing import Any, TypedDict

from django.conf import settings
from django.db import connection, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from bpmos import events
from bpmos.batch import (
    FUTURE_TOLERANCE,
    MAX_BATCH,
    BatchWords,
    RowError,
    batch_validate,
)
from bpmos.bulk import BulkTarget, RowsAlreadyStored
from bpmos.errors import NotFound
from bpmos.fields import EARLIEST, TOO_LATE, time_problem
from bpmos.locking import ROW_LOCK, lock_row
from bpmos.rawsql import orm_instance, orm_values
from elog import audit
from lines import events as line_events
from lines import oee, readmodels
from lines import status as st
from lines.models import (
    Line,
    Machine,
    MachineDay,
    MachineHour,
    MachineReading,
    MachineState,
    OEESnapshot,
    ReadingQuality,
    ReadingTag,
)
from lines.topology import line_topology, line_topology_of, line_topology_sql

MAX_COUNT_INCREMENT = 1_000_000

# \Z, not $: "$" also matched before a final newline, so "good_count\n" was
# a tag (stored so). The schema states it (lines.api.serializers, ^...$).
TAG_RE = re.compile(r"\A[A-Za-z0-9_.:/-]{1,64}\Z")
_FIELDS = frozenset(
    {
        "tag",
        "reading_type",
        "ts",
        "timestamp",
        "value",
        "reason",
        "unit",
        "quality",
        "machine_id",
    }
)
_STATES = frozenset(MachineState.values)
_QUALITIES = frozenset(ReadingQuality.values)
_COUNT_TAGS = frozenset({ReadingTag.GOOD_COUNT.value, ReadingTag.REJECT_COUNT.value})
_STATE = ReadingTag.STATE.value
_CYCLE_TIME = ReadingTag.CYCLE_TIME.value
_BAD = ReadingQuality.BAD.value

# The columns a reading is loaded with, in order.
_COLUMNS = ("machine_id", "tag", "ts", "value", "text", "note", "unit", "quality")


class IngestResult(TypedDict):
    accepted: int  # readings stored now
    duplicates: int  # readings already stored (or repeated within the batch)


# --- validation (plain Python) -------------------------------------------------


def _parse_ts(raw: Any) -> datetime:
    if not isinstance(raw, str):
        raise RowError("ts", "Must be an ISO 8601 time with a time zone.")
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise RowError("ts", "Must be an ISO 8601 time with a time zone.") from None
    zone = value.tzinfo
    if zone is None:
        raise RowError("ts", "Needs a time zone (e.g. 2026-03-02T08:00:00Z).")
    # The API-wide bounds (as the schema's TIME_PATTERN states them), checked
    # before astimezone (which overflows near year 1 and 9999); past the upper
    # one a row is in the future, as _check_row says.
    problem = time_problem(value)
    if problem == TOO_LATE:
        raise RowError("ts", "Is in the future.")
    if problem is not None:
        raise RowError("ts", problem)
    if zone is UTC:  # "...Z" and "+00:00": nothing to convert
        return value
    return value.astimezone(UTC)


def _number(raw: Any) -> float:
    if type(raw) is float:  # the common case first (bool is not a float)
        if raw - raw != 0.0:  # inf - inf and nan - nan are nan
            raise RowError("value", "Must be a finite number.")
        return raw
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise RowError("value", "Must be a number.")
    value = float(raw)
    if not math.isfinite(value):
        raise RowError("value", "Must be a finite number.")
    return value


def _text(row: dict, field: str, limit: int) -> str:
    if field not in row:
        return ""
    raw = row[field]
    if raw is None:
        return ""
    if not isinstance(raw, str) or len(raw) > limit:
        raise RowError(field, f"Must be text of at most {limit} characters.")
    return raw


# Tags that matched TAG_RE: a plant has a few dozen, so a set lookup replaces the
# regex for almost every row. Bounded, so odd senders cannot grow it forever.
_tags_seen: set[str] = set()
_TAGS_SEEN_MAX = 10_000


def _valid_tag(tag: Any) -> bool:
    if not isinstance(tag, str):
        return False
    if tag in _tags_seen:
        return True
    if not TAG_RE.match(tag):
        return False
    if len(_tags_seen) < _TAGS_SEEN_MAX:
        _tags_seen.add(tag)
    return True


def _check_row(row: Any, machine_id: int, latest: datetime) -> tuple:
    """One reading as the tuple of ``_COLUMNS``; raises ``RowError``.

    Runs once per reading (a million a minute at the goal), so it is written
    for speed: membership tests before ``get``, the common types first.
    """
    if not isinstance(row, dict):
        raise RowError("row", "Must be an object.")
    if not _FIELDS.issuperset(row):
        raise RowError(sorted(row.keys() - _FIELDS)[0], "Unknown field.")
    if "machine_id" in row and row["machine_id"] != machine_id:
        raise RowError("machine_id", "Differs from the machine in the URL.")
    # An alias beside its field would be read by nobody (and checked by
    # nobody): one or the other.
    if "reading_type" in row and "tag" in row:
        raise RowError("reading_type", "An alias of tag: give one of them.")
    if "timestamp" in row and "ts" in row:
        raise RowError("timestamp", "An alias of ts: give one of them.")
    tag = row["tag"] if "tag" in row else row.get("reading_type")
    if (type(tag) is not str or tag not in _tags_seen) and not _valid_tag(tag):
        raise RowError(
            "tag", "Required: 1-64 letters, digits or _ . : / - (e.g. good_count)."
        )
    ts = _parse_ts(row["ts"] if "ts" in row else row.get("timestamp"))
    if ts > latest:
        raise RowError("ts", "Is in the future.")
    raw = row.get("value")
    value: float | None = None
    text = ""
    if tag == _STATE:
        if not isinstance(raw, str) or raw not in _STATES:
            raise RowError(
                "value", f"A state reading's value is one of {sorted(_STATES)}."
            )
        text = raw
    elif isinstance(raw, str) and tag not in _COUNT_TAGS and tag != _CYCLE_TIME:
        if len(raw) > 64:
            raise RowError("value", "Text values are at most 64 characters.")
        text = raw
    else:
        value = _number(raw)
        if tag in _COUNT_TAGS and (
            value < 0 or value != int(value) or value > MAX_COUNT_INCREMENT
        ):
            raise RowError(
                "value", "A count is a whole number of pieces, 0 to 1,000,000."
            )
        if tag == _CYCLE_TIME and value < 0:
            raise RowError("value", "A cycle time cannot be negative.")
    quality = row.get("quality", "good")
    if not isinstance(quality, str) or quality not in _QUALITIES:
        raise RowError("quality", f"One of {sorted(_QUALITIES)}.")
    note = _text(row, "reason", 200) if "reason" in row else ""
    unit = _text(row, "unit", 16) if "unit" in row else ""
    return (machine_id, tag, ts, value, text, note, unit, quality)


_READING_WORDS = BatchWords(
    noun="reading",
    max_rows_key="max_readings",
    repeat_message="Repeats an earlier reading's tag and time with other values.",
)
_READING_KEY = itemgetter(1, 2)  # (tag, ts): a machine's reading is unique by them


_EXACT = 2**53  # integers a float holds exactly
_BEFORE_EARLIEST = EARLIEST - timedelta(microseconds=1)


def _fast_rows(
    rows: list, machine_id: int, latest: datetime
) -> tuple[list[tuple], int] | None:
    """``_check_row`` and ``batch_validate``'s loop fused for a batch of
    well-formed readings (the usual case): the same tuples and repeat count,
    in about half the time (no call per row for the common shapes). Returns
    None at the first row it does not take as it is (any refusal, and the
    rarer shapes: other time zones, ``timestamp``/``reading_type`` aliases,
    integers past 2**53): the caller then checks the batch with the general
    loop, which decides and words every refusal."""
    checked: list[tuple] = []
    # The repeat check and the time bounds: while the times only rise (the
    # usual batch, in time order), a reading can only repeat one of those
    # sharing the previous one's time (``group``: tag -> index, made at the
    # second of them), so no (tag, ts) key is hashed (hashing an aware
    # datetime costs ~0.7 us, more than half of a row's check), and only the
    # first time and the last need checking against the bounds. At the first
    # time that goes back, ``seen`` (every (tag, ts) so far -> index) takes
    # over, with the bounds checked on each row from there.
    seen: dict[tuple, int] | None = None
    previous = _BEFORE_EARLIEST  # the newest time so far
    start = 0  # index of the first reading at ``previous``
    group: dict[str, int] | None = None
    repeats = 0
    fields, tags_seen, states = _FIELDS, _tags_seen, _STATES
    qualities, count_tags = _QUALITIES, _COUNT_TAGS
    parse = datetime.fromisoformat
    for row in rows:
        if type(row) is not dict:
            return None
        # A row of three keys that is taken below is {tag, ts, value} (each is
        # required): no unknown field, no machine_id, the defaults for the rest.
        plain = len(row) == 3
        if not plain and (
            not fields.issuperset(row)
            or ("machine_id" in row and row["machine_id"] != machine_id)
            or "reading_type" in row  # the aliases: the general loop's
            or "timestamp" in row
        ):
            return None
        get = row.get
        tag = get("tag")
        raw_ts = get("ts")
        if type(tag) is not str or tag not in tags_seen or type(raw_ts) is not str:
            return None
        try:
            ts = parse(raw_ts)
        except ValueError:
            return None
        if ts.tzinfo is not UTC:
            return None
        raw = get("value")
        if tag == _STATE:
            if type(raw) is not str or raw not in states:
                return None
            value, text = None, raw
        elif type(raw) is float or (type(raw) is int and -_EXACT <= raw <= _EXACT):
            raw = float(raw)
            if raw - raw != 0.0:  # inf and nan
                return None
            if tag in count_tags:
                if raw < 0 or raw != int(raw) or raw > MAX_COUNT_INCREMENT:
                    return None
            elif tag == _CYCLE_TIME and raw < 0:
                return None
            value, text = raw, ""
        elif type(raw) is str and tag not in count_tags and tag != _CYCLE_TIME:
            if len(raw) > 64:
                return None
            value, text = None, raw
        else:
            return None
        if plain:
            quality, note, unit = "good", "", ""
        else:
            quality = get("quality", "good")
            if type(quality) is not str or quality not in qualities:
                return None
            note = get("reason")
            if note is None:
                note = ""
            elif type(note) is not str or len(note) > 200:
                return None
            unit = get("unit")
            if unit is None:
                unit = ""
            elif type(unit) is not str or len(unit) > 16:
                return None
        values = (machine_id, tag, ts, value, text, note, unit, quality)
        if seen is None:
            if ts > previous:  # the first row: EARLIEST <= ts
                previous, start, group = ts, len(checked), None
                checked.append(values)
                continue
            if ts == previous and checked:  # (not the first row at the bound)
                if group is None:
                    group = {r[1]: start + k for k, r in enumerate(checked[start:])}
                first = group.get(tag)
                if first is None:
                    group[tag] = len(checked)
                    checked.append(values)
                elif checked[first] == values:
                    repeats += 1
                else:
                    return None
                continue
            if previous > latest:  # the rows so far: their newest
                return None
            seen = {(r[1], r[2]): k for k, r in enumerate(checked)}
        if not EARLIEST <= ts <= latest:
            return None
        key = (tag, ts)
        first = seen.get(key)
        if first is None:
            seen[key] = len(checked)
            checked.append(values)
        elif checked[first] == values:
            repeats += 1
        else:
            return None
    if seen is None and previous > latest:
        return None
    return checked, repeats


def readings_validate(*, machine_id: int, rows: list) -> tuple[list[tuple], int]:
    """Check a batch of readings (``bpmos.batch.batch_validate``: one bad row
    and nothing is stored); returns (rows to store, repeats within the batch)."""
    latest = timezone.now() + FUTURE_TOLERANCE
    if type(rows) is list and 0 < len(rows) <= MAX_BATCH:
        fast = _fast_rows(rows, machine_id, latest)
        if fast is not None:
            return fast
    return batch_validate(
        rows=rows,
        check_row=lambda row: _check_row(row, machine_id, latest),
        key=_READING_KEY,
        words=_READING_WORDS,
        max_rows=MAX_BATCH,
    )


# --- storing -------------------------------------------------------------------


_READINGS = BulkTarget(
    table=MachineReading._meta.db_table,
    columns=_COLUMNS,
    copy_types=("int8", "varchar", "timestamptz", "float8", *["varchar"] * 4),
    conflict=("machine_id", "tag", "ts"),
)


# --- state changes ---------------------------------------------------------------


@dataclass(frozen=True)
class _LineState:
    stations: dict[int, st.StationStatus]
    mode: st.LineMode
    health: st.LineHealth


def _state_of(
    line: Line,
    station_ids: list[int],
    machines: list[st.MachineStatus],
    oee: Decimal | None,
) -> _LineState:
    mode = st.line_mode(machines)
    return _LineState(
        stations=st.stations_by_id(station_ids, machines),
        mode=mode,
        health=st.line_health(mode, oee=oee, target=line.oee_target),
    )


def _line_state(line: Line, now: datetime | None = None) -> _LineState:
    from lines.selectors import line_shift_oee  # selectors import services' models

    topology = line_topology([line.pk])[line.pk]
    return _state_of(
        line,
        [station.pk for station in topology.stations],
        topology.machine_statuses(),
        line_shift_oee(line),
    )


def _announce(
    line: Line, stations: dict, before: _LineState, after: _LineState, at
) -> None:
    """Publish the station and line changes of one status change, in that
    order, with one ``publish_many`` (one delivery after commit, one pass of
    the listeners for all of them)."""
    changes = []
    for pk, new in after.stations.items():
        old = before.stations.get(pk, st.StationStatus(st.StationState.IDLE))
        if new != old:
            changes.append(
                line_events.station_changed(
                    line, stations[pk], before=old, after=new, at=at
                )
            )
    if (after.mode, after.health) != (before.mode, before.health):
        changes.append(
            line_events.line_changed(
                line,
                mode=after.mode,
                health=after.health,
                previous_mode=before.mode,
                previous_health=before.health,
                at=at,
            )
        )
    if changes:
        events.publish_many(changes, background=True)


def _latest_state(rows: list[tuple]) -> tuple | None:
    states = [r for r in rows if r[1] == _STATE and r[7] != _BAD]
    return max(states, key=lambda r: r[2]) if states else None


def readings_ingest(*, machine_id: int, rows: list, actor) -> IngestResult:
    """Store a batch of a machine's readings; skip what is already stored.

    The whole batch is checked first (``readings_validate``): one bad row and
    nothing is stored (400 naming the rows). Re-sending a batch stores nothing
    twice (unique machine, tag, ts). When the batch's newest good state reading
    is newer than the machine's status, the status follows it, and the station
    and line changes that causes are published (``station.changed``,
    ``line.changed``; only the net change of the batch). One audit record per
    batch.

    PostgreSQL: the batch is COPYed straight into the table in the write's
    transaction (or, inside a caller's transaction, its savepoint), with no
    savepoint of its own; a re-send makes that COPY fail on the unique key, and
    the write is then rolled back and done again storing only the new rows
    (``bpmos.bulk``). Nothing but the COPY has run when it fails: the retry
    costs the machine lock again, once per re-sent batch.
    """
    checked, _repeats = readings_validate(machine_id=machine_id, rows=rows)
    if connection.vendor == "postgresql":
        try:
            return _readings_write(
                machine_id=machine_id, checked=checked, sent=len(rows), actor=actor
            )
        except RowsAlreadyStored:
            pass  # rolled back: a re-send; store only what is new
    return _readings_write(
        machine_id=machine_id,
        checked=checked,
        sent=len(rows),
        actor=actor,
        has_duplicates=True,
    )


@transaction.atomic
def _readings_write(
    *,
    machine_id: int,
    checked: list[tuple],
    sent: int,
    actor,
    has_duplicates: bool = False,
) -> IngestResult:
    """``readings_ingest``'s transaction: lock, store, roll-up marks, status,
    audit. Without ``has_duplicates`` on PostgreSQL, a plain COPY that raises
    ``RowsAlreadyStored`` when a row is already stored."""
    machine, line_id, newest_hour = _lock_machine(machine_id)
    if connection.vendor == "postgresql" and not has_duplicates:
        _READINGS.copy_all(checked)
        accepted = len(checked)
    else:
        accepted = _READINGS.store(checked, has_duplicates=has_duplicates)
    if accepted:
        machine_hours_mark_stale(
            machine_id=machine_id, rows=checked, newest_hour=newest_hour
        )
    latest = _latest_state(checked)
    status_change = status_write = None
    if latest is not None and (
        machine.status_since is None or latest[2] > machine.status_since
    ):
        status_change, status_write = _apply_state(machine, latest, line_id)
    times = [row[2] for row in checked]
    audit.record_quick(
        actor=actor,
        action="machine.readings_ingested",
        target=machine,
        before=status_change[0] if status_change else None,
        after={
            "accepted": accepted,
            "duplicates": sent - accepted,
            "first_ts": min(times),
            "last_ts": max(times),
            "tags": sorted({row[1] for row in checked}),
            **(status_change[1] if status_change else {}),
        },
        # The machine's status write rides with the chain's lock (PostgreSQL:
        # one round trip).
        preceding=status_write,
    )
    return {"accepted": accepted, "duplicates": sent - accepted}


# What ingest reads of the machine it locks (one raw statement: the ORM's
# compilation of the select_related lock cost more than the query).
_MACHINE_FIELDS = ("id", "station_id", "code", "name", "status", "status_reason")
# Per database vendor and commit mode: the statement(s), and how many SET
# results come before the machine's row.
_machine_lock_sql: dict[tuple, tuple[str, int]] = {}
_NEWEST_HOUR_SQL = (
    f"SELECT hour FROM {MachineHour._meta.db_table} WHERE machine_id = %s "
    "ORDER BY hour DESC LIMIT 1"
)
_NO_HOUR = object()  # the newest roll-up hour was not read with the lock


def _lock_machine_sql() -> tuple[str, int]:
    durable = settings.BPMOS_READINGS_SYNCHRONOUS_COMMIT
    key = (connection.vendor, durable)
    found = _machine_lock_sql.get(key)
    if found is not None:
        return found
    sets = 0
    qn = connection.ops.quote_name
    machine = qn(Machine._meta.db_table)
    station = qn(Machine._meta.get_field("station").related_model._meta.db_table)
    columns = ", ".join(
        f"{machine}.{qn(name)}" for name in (*_MACHINE_FIELDS, "status_since")
    )
    sql = (
        f"SELECT {columns}, {station}.{qn('line_id')} FROM {machine} "
        f"INNER JOIN {station} "
        f"ON {station}.{qn('id')} = {machine}.{qn('station_id')} "
        f"WHERE {machine}.{qn('id')} = %s"
    )
    if connection.vendor == "postgresql":
        # One round trip for what the write needs before its COPY (the
        # statements of one simple-protocol query run in order, each with its
        # own snapshot, so the newest roll-up hour is read after the lock is
        # held, as machine_hours_mark_stale requires). SET CONSTRAINTS: the
        # rows' machine key is checked with the COPY, not at COMMIT while the
        # audit chain's lock is held (see bpmos.bulk).
        prefix = ["SET CONSTRAINTS ALL IMMEDIATE"]
        if not durable:  # this transaction only
            prefix.append("SET LOCAL synchronous_commit TO OFF")
        sets = len(prefix)
        sql = "; ".join(
            [*prefix, f"{sql} FOR NO KEY UPDATE OF {machine}", _NEWEST_HOUR_SQL]
        )
    elif connection.features.has_select_for_update:
        sql += f" FOR NO KEY UPDATE OF {machine}"
    _machine_lock_sql[key] = (sql, sets)
    return sql, sets


def _lock_machine(machine_id: int) -> tuple[Machine, int, Any]:
    """Lock the machine row (as ``lock_row``: FOR NO KEY UPDATE OF the machine
    on PostgreSQL); returns the machine (only the fields ingest reads; the
    others are deferred), its line's id and, on PostgreSQL, its newest roll-up
    hour (None without one; ``_NO_HOUR`` elsewhere). 404 when it does not
    exist."""
    sql, sets = _lock_machine_sql()
    newest_hour: Any = _NO_HOUR
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(sql, [machine_id, machine_id])
            # Past the SET results to the machine's row, then the newest hour.
            for _ in range(sets):
                cursor.nextset()
            row = cursor.fetchone()
            cursor.nextset()
            newest = cursor.fetchone()
            newest_hour = (
                None if newest is None else orm_values(MachineHour, ["hour"], newest)[0]
            )
        else:
            cursor.execute(sql, [machine_id])
            row = cursor.fetchone()
    if row is None:
        raise NotFound(f"Machine {machine_id} does not exist.")
    names = [*_MACHINE_FIELDS, "status_since"]
    machine = orm_instance(Machine, names, row[: len(names)])
    return machine, row[-1], newest_hour


def _apply_state(
    machine: Machine, latest: tuple, line_id: int
) -> tuple[tuple[dict, dict] | None, tuple[str, list]]:
    """Move the machine to its newest reported state; publish what changed.
    Returns the change (before, after; None when only the status time moves)
    and the machine's UPDATE (``_machine_status_sql``), which the caller runs.

    Raw SQL, as the machine lock: this runs for most batches a gateway sends
    (a state reading per machine every few minutes), and the ORM's query
    compilation and model instances cost several times the queries.
    """
    _, _, ts, _, state, reason, _, _ = latest
    before = {"status": machine.status, "status_reason": machine.status_reason}
    if (state, reason) == (machine.status, machine.status_reason):
        return None, _machine_status_sql(machine.pk, status_since=ts)
    # Every status change of a line's machines takes the line's lock, so the
    # before/after comparison below sees no other batch's change half-way; the
    # "after" is therefore the "before" with this machine moved (computed, not
    # read again: the stations, machines and shift OEE are read once).
    from lines.selectors import line_shift_oee  # selectors import services' models

    line, stations, machines = _lock_line(line_id)
    oee = line_shift_oee(line)
    old = _state_of(line, list(stations), machines, oee)
    write = _machine_status_sql(
        machine.pk, status_since=ts, status=state, reason=reason
    )
    readmodels.LINE_STATUS.changed()  # a raw write: no post_save says it
    machine.status, machine.status_reason, machine.status_since = state, reason, ts
    moved = [
        replace(m, status=state, reason=reason) if m.id == machine.pk else m
        for m in machines
    ]
    _announce(line, stations, old, _state_of(line, list(stations), moved, oee), ts)
    return (before, {"status": state, "status_reason": reason}), write


# What a status change reads of the line it locks.
_LINE_FIELDS = ("id", "slug", "name", "shift_start", "shift_minutes", "oee_target")


def _lock_line(line_id: int) -> tuple[Line, dict, list[st.MachineStatus]]:
    """Lock the line row (``lock_row``'s lock); return the line (the fields a
    status change reads), its stations in position order, and its active
    machines' statuses. Two statements, the lock then ``line_topology``'s
    join; on PostgreSQL in one round trip (one simple-protocol query: its
    statements run in order, each with its own snapshot, so the join still
    reads after the lock is held, as ``_lock_machine`` does)."""
    qn = connection.ops.quote_name
    line_table = qn(Line._meta.db_table)
    sql = f"SELECT {', '.join(map(qn, _LINE_FIELDS))} FROM {line_table} WHERE id = %s"
    if connection.features.has_select_for_update:
        sql += " FOR NO KEY UPDATE"
    topology_sql, topology_params = line_topology_sql([line_id])
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"{sql}; {topology_sql}", [line_id, *topology_params])
            row = cursor.fetchone()
            cursor.nextset()
            rows = cursor.fetchall()
        else:
            cursor.execute(sql, [line_id])
            row = cursor.fetchone()
            # Read after the lock is held (its own statement, its own snapshot).
            cursor.execute(topology_sql, topology_params)
            rows = cursor.fetchall()
    if row is None:
        raise NotFound(f"Line {line_id} does not exist.")
    line = orm_instance(Line, _LINE_FIELDS, row)
    topology = line_topology_of([line_id], rows)[line_id]
    stations = {station.pk: station for station in topology.stations}
    machines = topology.machine_statuses()
    return line, stations, machines


def _machine_status_sql(
    machine_id: int,
    *,
    status_since: datetime,
    status: str | None = None,
    reason: str | None = None,
) -> tuple[str, list]:
    """The one UPDATE of a status change, raw: a machine's status time (and
    its status and reason when given). Returned, not run: ``_readings_write``
    sends it with the audit chain's lock (one round trip fewer a batch; the
    machine row is locked since ``_lock_machine``, and nothing in between
    reads it)."""
    adapt = connection.ops.adapt_datetimefield_value
    assignments = ["status_since = %s", "updated_at = %s"]
    params: list = [adapt(status_since), adapt(timezone.now())]
    if status is not None:
        assignments += ["status = %s", "status_reason = %s"]
        params += [status, reason]
    return (
        f"UPDATE {Machine._meta.db_table} SET {', '.join(assignments)} WHERE id = %s",
        [*params, machine_id],
    )


# --- OEE snapshots -----------------------------------------------------------------


def oee_snapshots_refresh(*, now: datetime | None = None) -> int:
    """Recompute every active line's OEE for its current (and, if not yet final,
    previous) shift into ``OEESnapshot``; publish health changes. Returns how many
    lines were refreshed."""
    now = now or timezone.now()
    line_ids = list(Line.objects.filter(is_active=True).values_list("id", flat=True))
    for line_id in line_ids:
        oee_snapshot_refresh(line_id=line_id, now=now)
    return len(line_ids)


@transaction.atomic
def oee_snapshot_refresh(*, line_id: int, now: datetime) -> list[OEESnapshot]:
    """Recompute one line's snapshots (see ``oee_snapshots_refresh``)."""
    line = Line.objects.select_for_update(**ROW_LOCK).get(pk=line_id)
    before = _line_state(line, now)
    start, end = oee.shift_window(line, now)
    windows = [(start, now, end)]
    previous_start = start - timedelta(minutes=line.shift_minutes)
    final = OEESnapshot.objects.filter(
        line=line, station=None, window_start=previous_start, window_end=start
    ).exists()
    if (
        not final
        and OEESnapshot.objects.filter(
            line=line, station=None, window_start=previous_start
        ).exists()
    ):
        windows.append((previous_start, start, start))
    stored: list[OEESnapshot] = []
    for window_start, window_end, shift_end in windows:
        result = oee.line_oee(line, window_start, window_end)
        for station, figures in [(None, result.line), *result.stations]:
            snapshot, _ = OEESnapshot.objects.update_or_create(
                line=line,
                station=station,
                window_start=window_start,
                defaults={
                    "window_end": window_end,
                    "shift_end": shift_end,
                    "computed_at": now,
                    **figures.as_snapshot_fields(),
                },
            )
            stored.append(snapshot)
    after = _line_state(line, now)
    if after.health != before.health:
        events.publish(
            line_events.line_changed(
                line,
                mode=after.mode,
                health=after.health,
                previous_mode=before.mode,
                previous_health=before.health,
                at=now,
            )
        )
    return stored


# --- OEE hourly roll-ups -------------------------------------------------------------

_OEE_TAGS = frozenset({_STATE, *_COUNT_TAGS})
# Hours rolled up in one transaction (the machine stays locked meanwhile).
_REFRESH_CHUNK = timedelta(days=7)


def machine_hours_mark_stale(
    *, machine_id: int, rows: list[tuple], newest_hour: Any = _NO_HOUR
) -> None:
    """Mark stale the roll-up hours that stored readings fall in (ingest hook).

    Runs in the ingest transaction with the machine locked: a stale (or still
    missing) hour is read from raw readings until beat rebuilds it. Only the
    tags OEE reads, and not ``bad`` ones, can change an hour, and only hours up
    to the machine's newest roll-up row need a mark: beat rolls up every hour
    after that one anyway (``machine_hours_refresh``), so fresh readings, the
    usual case, cost one indexed read and no write. The newest row is read in
    its own statement, after the machine lock: a statement that waited for the
    lock held by beat's ``_machine_hours_write`` would otherwise read with a
    snapshot taken before beat's commit and miss the hours it just wrote.
    Marks are one raw ``INSERT ... ON CONFLICT (machine_id, hour) DO UPDATE
    SET is_stale``. ``newest_hour``: that row's hour (None: no row) when the
    caller read it after taking the lock (``_lock_machine`` on PostgreSQL).
    """
    table = MachineHour._meta.db_table
    if newest_hour is _NO_HOUR:
        with connection.cursor() as cursor:
            cursor.execute(_NEWEST_HOUR_SQL, [machine_id])
            newest = cursor.fetchone()
        newest_hour = (
            None if newest is None else orm_values(MachineHour, ["hour"], newest)[0]
        )
    if newest_hour is None:
        return
    limit = newest_hour + oee.HOUR
    hours = set()
    for row in rows:
        ts = row[2]
        if ts < limit and row[1] in _OEE_TAGS and row[7] != _BAD:
            hours.add(
                ts.replace(minute=0, second=0, microsecond=0)
                if ts.tzinfo is UTC
                else oee.hour_floor(ts)
            )
    if not hours:
        return
    adapt = connection.ops.adapt_datetimefield_value
    params: list = []
    for hour in sorted(hours):
        params += [machine_id, adapt(hour), 0, 0, "", 0, 0, True]
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s)"] * len(hours))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (machine_id, hour, "
            "first_change_microseconds, run_microseconds, last_state, good_count, "
            f"reject_count, is_stale) VALUES {values} "
            "ON CONFLICT (machine_id, hour) DO UPDATE SET is_stale = EXCLUDED.is_stale",
            params,
        )
    # A stale hour leaves its day's composition until beat rebuilds it.
    machine_days_write(machine_id=machine_id, hours=list(hours))


def machine_hours_refresh(
    *, now: datetime | None = None, machine_ids: Iterable[int] | None = None
) -> int:
    """Roll up every complete hour that is stale or not rolled up yet (beat).

    Per machine: the hours after its last fresh row (from its first reading on
    the first run) up to the last complete hour, and any stale hour before
    them. ``machine_ids``: only those machines (default: every one; machines
    are independent, so a bulk load can split them over processes). Returns
    how many hours were written.
    """
    until = oee.hour_floor(now or timezone.now())
    first_reading = [
        Subquery(
            MachineReading.objects.filter(machine_id=OuterRef("pk"), tag=tag)
            .order_by("ts")
            .values("ts")[:1]
        )
        for tag in sorted(_OEE_TAGS)
    ]
    machines = Machine.objects.annotate(
        last_fresh=Subquery(
            MachineHour.objects.filter(machine_id=OuterRef("pk"), is_stale=False)
            .order_by("-hour")
            .values("hour")[:1]
        ),
        **{f"first_{n}": subquery for n, subquery in enumerate(first_reading)},
    ).values("id", "last_fresh", *(f"first_{n}" for n in range(len(first_reading))))
    stale_hours = MachineHour.objects.filter(is_stale=True, hour__lt=until)
    if machine_ids is not None:
        machine_ids = list(machine_ids)
        machines = machines.filter(pk__in=machine_ids)
        stale_hours = stale_hours.filter(machine_id__in=machine_ids)
    stale: dict[int, list[datetime]] = {}
    for machine_id, hour in stale_hours.order_by("machine_id", "hour").values_list(
        "machine_id", "hour"
    ):
        stale.setdefault(machine_id, []).append(hour)
    written = 0
    for machine in machines:
        firsts = [machine[f"first_{n}"] for n in range(len(first_reading))]
        firsts = [ts for ts in firsts if ts is not None]
        if machine["last_fresh"] is not None:
            forward = machine["last_fresh"] + oee.HOUR
        elif firsts:
            forward = oee.hour_floor(min(firsts))
        else:
            forward = until  # no readings: nothing to roll up
        ranges = _hour_ranges(
            [h for h in stale.get(machine["id"], []) if h < forward], oee.HOUR
        )
        if forward < until:
            ranges.append((forward, until))
        for start, end in ranges:
            while start < end:
                chunk_end = min(end, start + _REFRESH_CHUNK)
                written += _machine_hours_write(
                    machine_id=machine["id"], start=start, end=chunk_end
                )
                start = chunk_end
    return written


def _hour_ranges(hours: list[datetime], step: timedelta) -> list[tuple]:
    """Sorted hour starts merged into [start, end) ranges."""
    ranges: list[tuple[datetime, datetime]] = []
    for hour in hours:
        if ranges and ranges[-1][1] == hour:
            ranges[-1] = (ranges[-1][0], hour + step)
        else:
            ranges.append((hour, hour + step))
    return ranges


@transaction.atomic
def _machine_hours_write(*, machine_id: int, start: datetime, end: datetime) -> int:
    """Roll up one machine's hours in [start, end) and store them fresh.

    The machine row is locked first, as ingestion locks it: a batch either
    committed before (and is read here) or waits and marks its hours stale
    after this commits; a fresh row never misses a reading.
    """
    lock_row(Machine.objects, what=f"Machine {machine_id}", pk=machine_id)
    hours = oee.machine_hours(machine_id, start, end)
    MachineHour.objects.bulk_create(
        [
            MachineHour(
                machine_id=machine_id,
                hour=hour,
                is_stale=False,
                **inputs.as_row_fields(),
            )
            for hour, inputs in hours.items()
        ],
        update_conflicts=True,
        unique_fields=["machine", "hour"],
        update_fields=[
            "first_change_microseconds",
            "run_microseconds",
            "last_state",
            "good_count",
            "reject_count",
            "is_stale",
        ],
    )
    if hours:
        machine_days_write(machine_id=machine_id, hours=list(hours))
    return len(hours)


def machine_days_write(*, machine_id: int, hours: list[datetime]) -> None:
    """Recompute one machine's day roll-ups (``MachineDay``) of the UTC days
    holding ``hours`` from its fresh ``MachineHour`` rows, so each stays the
    composition of its fresh hours (a day left without any: no row).

    Called with the machine row locked, in the transaction that wrote or
    marked those hours (beat's roll-up, the stale marks of late readings).
    Three queries: the days' hours, one upsert, one delete.
    """
    days = sorted({oee.day_floor(hour) for hour in hours})
    rows = (
        MachineHour.objects.filter(
            machine_id=machine_id,
            hour__gte=days[0],
            hour__lt=days[-1] + oee.DAY,
            is_stale=False,
        )
        .order_by("hour")
        .values_list(
            "hour",
            "first_change_microseconds",
            "run_microseconds",
            "last_state",
            "good_count",
            "reject_count",
        )
    )
    wanted = set(days)
    composed = {
        day: inputs
        for day, inputs in oee.day_inputs(rows).items()
        if day in wanted  # hours of days in between were not touched
    }
    if composed:
        MachineDay.objects.bulk_create(
            [
                MachineDay(machine_id=machine_id, day=day, **inputs.as_row_fields())
                for day, inputs in composed.items()
            ],
            update_conflicts=True,
            unique_fields=["machine", "day"],
            update_fields=[
                "hours",
                "lead_microseconds",
                "run_microseconds",
                "last_state",
                "last_hour",
                "good_count",
                "reject_count",
            ],
        )
    empty = [day for day in days if day not in composed]
    if empty:
        MachineDay.objects.filter(machine_id=machine_id, day__in=empty).delete()
    readmodels.ROLLUPS.changed()  # bulk writes of hours and days: no post_save
