"""A line's stations and active machines, read in one raw statement.

Every line read (status views, OEE) and every status change of ingest needs the
same picture: the stations of some lines in position order and their active
machines with their statuses. Read through the ORM that took two queries and
about 2.5 ms of query building on this machine, against ~0.4 ms for this one
join (docs/lines.md, "Cost of the reads").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import connection

from bpmos.rawsql import orm_instance
from lines import status as st
from lines.models import Machine, Station

_STATION_FIELDS = ("id", "line_id", "slug", "name", "position", "ideal_cycle_seconds")
_MACHINE_FIELDS = ("id", "station_id", "status", "status_reason")


@dataclass
class LineTopology:
    """One line's stations (position order) and active machines (id order,
    each with ``station`` set to its station)."""

    stations: list[Station] = field(default_factory=list)
    machines: list[Machine] = field(default_factory=list)

    def machine_statuses(self) -> list[st.MachineStatus]:
        """What the station, line and health rules read of the machines."""
        return [
            st.MachineStatus(
                id=m.pk,
                station_id=m.station_id,
                status=m.status,
                reason=m.status_reason,
            )
            for m in self.machines
        ]


def line_topology_sql(line_ids: list[int]) -> tuple[str, list]:
    """The statement ``line_topology`` runs for ``line_ids`` (not empty) and
    its parameters, for a caller that sends it with another statement in one
    round trip (``lines.services._lock_line``); ``line_topology_of`` reads its
    rows."""
    qn = connection.ops.quote_name
    station_columns = ", ".join(f"s.{qn(name)}" for name in _STATION_FIELDS)
    machine_columns = ", ".join(f"m.{qn(name)}" for name in _MACHINE_FIELDS)
    return (
        f"SELECT {station_columns}, {machine_columns} "
        f"FROM {qn(Station._meta.db_table)} s "
        f"LEFT JOIN {qn(Machine._meta.db_table)} m "
        "ON m.station_id = s.id AND m.is_active "
        f"WHERE s.line_id IN ({', '.join(['%s'] * len(line_ids))}) "
        "ORDER BY s.line_id, s.position, s.id, m.id",
        list(line_ids),
    )


def line_topology_of(line_ids: list[int], rows: list[tuple]) -> dict[int, LineTopology]:
    """``line_topology``'s answer from the rows of ``line_topology_sql``."""
    result = {pk: LineTopology() for pk in line_ids}
    width = len(_STATION_FIELDS)
    station: Station | None = None
    for row in rows:
        if station is None or station.pk != row[0]:
            station = orm_instance(Station, _STATION_FIELDS, row[:width])
            result[station.line_id].stations.append(station)
        if row[width] is not None:
            machine = orm_instance(Machine, _MACHINE_FIELDS, row[width:])
            machine.station = station
            result[station.line_id].machines.append(machine)
    return result


def line_topology(line_ids: list[int]) -> dict[int, LineTopology]:
    """The stations and active machines of ``line_ids``, by line id (every id
    given has an entry, empty for a line without stations). One query."""
    if not line_ids:
        return {}
    sql, params = line_topology_sql(line_ids)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return line_topology_of(line_ids, rows)
