"""Fill the exceptions' journal from the exceptions raised before it existed.

Each exception without journal rows gets, from its own row: ``raised`` at
``raised_at`` (by ``raised_by``, level 0); one ``escalated`` per entry of
``escalation_log`` above level 0 (at the entry's time, by the system, the
entry's level and role); ``acknowledged`` at ``acknowledged_at`` (by
``acknowledged_by``) unless it is the resolution's own stamp (resolving an
unacknowledged exception sets both to the same instant, and the services
journal only ``resolved`` then); ``resolved`` at ``resolved_at`` (by
``resolved_by``, the resolution note). An exception that already has journal
rows is left alone, so running it again adds nothing.
"""

from datetime import datetime

from django.db import migrations
from django.utils.dateparse import parse_datetime

PATH = ["operator", "supervisor", "plant-head"]  # exceptions.models.ESCALATION_PATH
BATCH = 1000


def _role(level: int) -> str:
    return PATH[min(max(level, 0), len(PATH) - 1)]


def _entry_at(entry) -> datetime | None:
    value = entry.get("at") if isinstance(entry, dict) else None
    return parse_datetime(value) if isinstance(value, str) else None


def journal_of(exc, Event) -> list:
    """The journal rows (unsaved ``Event``) the state of ``exc`` implies."""
    rows = [
        Event(
            exception_id=exc.pk,
            kind="raised",
            at=exc.raised_at,
            actor_id=exc.raised_by_id,
            level=0,
            role=_role(0),
        )
    ]
    for entry in exc.escalation_log or []:
        level = entry.get("level") if isinstance(entry, dict) else None
        at = _entry_at(entry)
        if not isinstance(level, int) or level < 1 or at is None:
            continue
        role = entry.get("role") if isinstance(entry.get("role"), str) else ""
        rows.append(
            Event(
                exception_id=exc.pk,
                kind="escalated",
                at=at,
                level=level,
                role=role or _role(level),
            )
        )
    level = exc.escalation_level
    acknowledged = exc.acknowledged_at is not None and not (
        exc.resolved_at is not None
        and exc.acknowledged_at == exc.resolved_at
        and exc.acknowledged_by_id == exc.resolved_by_id
    )
    if acknowledged:
        rows.append(
            Event(
                exception_id=exc.pk,
                kind="acknowledged",
                at=exc.acknowledged_at,
                actor_id=exc.acknowledged_by_id,
                level=level,
                role=_role(level),
            )
        )
    if exc.resolved_at is not None:
        rows.append(
            Event(
                exception_id=exc.pk,
                kind="resolved",
                at=exc.resolved_at,
                actor_id=exc.resolved_by_id,
                level=level,
                role=_role(level),
                note=exc.resolution_note,
            )
        )
    return rows


def backfill(apps, schema_editor=None) -> int:
    """Journal every exception that has no journal yet; returns the rows written."""
    PlantException = apps.get_model("exceptions", "PlantException")
    Event = apps.get_model("exceptions", "ExceptionEvent")
    todo = PlantException.objects.filter(journal__isnull=True).order_by("pk")
    written, rows = 0, []
    for exc in todo.iterator(chunk_size=BATCH):
        rows.extend(journal_of(exc, Event))
        if len(rows) >= BATCH:
            Event.objects.bulk_create(rows)
            written, rows = written + len(rows), []
    if rows:
        Event.objects.bulk_create(rows)
        written += len(rows)
    return written


class Migration(migrations.Migration):
    dependencies = [
        ("exceptions", "0003_exceptionevent_append_only"),
    ]

    operations = [
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=False),
    ]
