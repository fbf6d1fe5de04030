"""Bound the OEE snapshots stored before actual production time was bounded by
planned busy time (docs/oee.md, "Snapshots stored before the bound").

Such a row holds the raw run time in ``run_seconds`` (not APT) and may show
Availability or OEE above 100 %. The readings they were computed from may be
gone (pruned), so each row is recomputed from its own stored inputs: a
station's APT is ``min(run, PBT)``; a line's is the sum of its stations'
(bounded) APTs for the same window when those rows are all there (their PBTs
add up to the line's), else ``min(run, PBT)``; the four percentages are then
recomputed from the row's inputs with ``lines.oee.Figures``. Rows already
bounded (every row stored since) are left exactly as they are. Irreversible
in effect: going back leaves the bounded values.
"""

from __future__ import annotations

from collections import defaultdict
from fractions import Fraction

from django.db import migrations

# How far a stored float may stray from an exact sum before a row counts as
# unbounded (seconds).
TOLERANCE = 1e-6
FACTORS = ("availability", "performance", "quality", "oee")


def _bounded_apt(row, station_sums) -> float:
    apt = min(row.run_seconds, row.planned_busy_seconds)
    if row.station_id is None:
        found = station_sums.get((row.line_id, row.window_start))
        if found and abs(found[0] - row.planned_busy_seconds) <= TOLERANCE:
            apt = min(apt, found[1])
    return apt


def _percentages(row, apt: float) -> dict:
    from lines.oee import Figures

    figures = Figures(
        planned_busy=Fraction(row.planned_busy_seconds),
        run=Fraction(row.run_seconds),
        ideal=Fraction(row.ideal_seconds),
        good=row.good_count,
        reject=row.reject_count,
        apt=Fraction(apt),
    )
    return figures.percentages()


def bound_snapshots(snapshot_model) -> int:
    """Bound every stored snapshot of ``snapshot_model`` (the historical
    ``OEESnapshot`` in the migration, the real one in tests): stations first,
    then lines from their stations. Returns how many rows changed."""
    changed = []
    station_sums: dict = defaultdict(lambda: [0.0, 0.0])  # PBT, APT
    rows = snapshot_model.objects.order_by("station_id", "pk")
    stations = [r for r in rows.filter(station__isnull=False).iterator()]
    for row in [*stations, *rows.filter(station__isnull=True).iterator()]:
        apt = _bounded_apt(row, station_sums)
        over = any((getattr(row, n) or 0) > 100 for n in FACTORS)
        if apt < row.run_seconds - TOLERANCE or over:
            row.run_seconds = apt
            for name, value in _percentages(row, apt).items():
                setattr(row, name, value)
            changed.append(row)
        if row.station_id is not None:
            sums = station_sums[(row.line_id, row.window_start)]
            sums[0] += row.planned_busy_seconds
            sums[1] += row.run_seconds
    snapshot_model.objects.bulk_update(
        changed, ["run_seconds", *FACTORS], batch_size=500
    )
    return len(changed)


def forwards(apps, schema_editor):
    bound_snapshots(apps.get_model("lines", "OEESnapshot"))


class Migration(migrations.Migration):
    dependencies = [
        ("lines", "0003_machinereading_ts_brin"),
    ]

    operations = [
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
