"""The admin's list pages for tables of millions of rows (bpmos/adminlarge.py):
the same answers as Django's own queries, got from indexes and the planner.

PostgreSQL answers through the probes, the loose index scans and the planner's
estimate; SQLite (the embedded demo) through Django's own queries, and the
pages work on both.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from bpmos import adminlarge
from bpmos.context import SOURCES
from elog import audit
from elog.models import AuditRecord
from inventory.models import Item
from lines.models import Machine, MachineReading, ReadingTag
from tests.factories_inventory import make_categories, make_warehouse
from tests.factories_lines import make_line

pytestmark = pytest.mark.django_db

ON_POSTGRESQL = pytest.mark.skipif(
    not settings.DB_IS_POSTGRES, reason="PostgreSQL's planner and index paths"
)

# Rows around the turns of a year, a month and a day, in UTC and in New York
# (an item received at 03:00 UTC on 1 January is still 31 December there).
MOMENTS = [
    datetime(2024, 12, 31, 23, 30, tzinfo=UTC),
    datetime(2025, 1, 1, 3, 0, tzinfo=UTC),
    datetime(2025, 1, 1, 12, 0, tzinfo=UTC),
    datetime(2025, 1, 17, 8, 0, tzinfo=UTC),
    datetime(2025, 3, 1, 4, 59, tzinfo=UTC),
    datetime(2025, 3, 1, 5, 1, tzinfo=UTC),
    datetime(2026, 7, 4, 16, 0, tzinfo=UTC),
]


@pytest.fixture
def items(make_user):
    categories = make_categories()
    where = make_warehouse()
    Item.objects.bulk_create(
        Item(
            code=f"IT-{n}",
            sku="CELL-LFP-21700",
            category=categories["cells"],
            location=where["A-R1"],
            received_at=moment,
        )
        for n, moment in enumerate(MOMENTS)
    )


def probed(queryset):
    queryset.__class__ = adminlarge._probed_class(type(queryset))
    return queryset


@pytest.mark.parametrize("zone", ["UTC", "America/New_York"])
def test_the_date_hierarchy_by_probes_is_djangos(items, zone):
    """Every level the hierarchy asks for (years; a year's months; a month's
    days), in the current time zone, as ``datetimes()`` says it."""
    with timezone.override(zone):
        here = timezone.get_current_timezone()
        local = [timezone.localtime(m) for m in MOMENTS]
        asked = [(Item.objects.all(), "year")]
        for year in {m.year for m in local}:
            start = datetime(year, 1, 1, tzinfo=here)
            end = datetime(year + 1, 1, 1, tzinfo=here)
            span = {"received_at__gte": start, "received_at__lt": end}
            asked.append((Item.objects.filter(**span), "month"))
        for m in local:
            start = datetime(m.year, m.month, 1, tzinfo=here)
            end = datetime(m.year + m.month // 12, m.month % 12 + 1, 1, tzinfo=here)
            span = {"received_at__gte": start, "received_at__lt": end}
            asked.append((Item.objects.filter(**span), "day"))
        for queryset, kind in asked:
            for order in ("ASC", "DESC"):
                theirs = list(queryset.datetimes("received_at", kind, order))
                ours = list(
                    probed(queryset.all()).datetimes("received_at", kind, order)
                )
                assert list(ours) == theirs, (zone, kind, order)
                assert ours  # every level asked holds rows


def test_no_rows_no_periods(db):
    assert list(probed(Item.objects.all()).datetimes("received_at", "year")) == []


@ON_POSTGRESQL
def test_the_probes_read_no_period_of_every_row(items):
    with CaptureQueriesContext(connection) as queries:
        list(probed(Item.objects.all()).datetimes("received_at", "year"))
    sql = " ".join(q["sql"] for q in queries.captured_queries)
    assert "DATE_TRUNC" not in sql.upper()
    assert "DISTINCT" not in sql.upper()
    # MIN/MAX, then one probe a year between them (2024, 2025, 2026).
    assert len(queries) == 1 + 3


def test_too_many_periods_fall_back_to_djangos(items, monkeypatch):
    monkeypatch.setattr(adminlarge, "MAX_PROBES", 2)
    queryset = Item.objects.all()
    assert list(probed(queryset).datetimes("received_at", "day")) == list(
        queryset.datetimes("received_at", "day")
    )


@ON_POSTGRESQL
def test_a_large_count_is_the_planners_estimate(items, monkeypatch):
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Item._meta.db_table}")
    queryset = Item.objects.order_by("-id")
    monkeypatch.setattr(adminlarge, "EXACT_BELOW", 1)
    with CaptureQueriesContext(connection) as queries:
        count = adminlarge.EstimatedCountPaginator(queryset, 2).count
    assert count == adminlarge.planner_rows(queryset)
    assert not any("COUNT(" in q["sql"].upper() for q in queries.captured_queries)


def test_a_filter_that_matches_nothing_by_its_form_counts_none(items, monkeypatch):
    monkeypatch.setattr(adminlarge, "EXACT_BELOW", 1)
    queryset = Item.objects.filter(pk__in=[])
    assert adminlarge.EstimatedCountPaginator(queryset, 2).count == 0


def test_a_small_count_is_exact(items, monkeypatch):
    # The planner expects 7 rows (or a guess before ANALYZE): exact below 10^5.
    queryset = Item.objects.order_by("-id")
    assert adminlarge.EstimatedCountPaginator(queryset, 2).count == len(MOMENTS)
    Item.objects.filter(code="IT-0").delete()
    assert adminlarge.EstimatedCountPaginator(queryset, 2).count == len(MOMENTS) - 1


# --- the pages ------------------------------------------------------------------


@pytest.fixture
def auditor(client, make_user):
    user = make_user("auditor", username="audrey")
    client.force_login(user)
    return user


@pytest.fixture
def audited(make_user):
    actor = make_user("planner")
    for n, action in enumerate(["lot.received", "lot.held", "lot.received"]):
        audit.record(actor=actor, action=action, target=actor, after={"n": n})


def changelist(model) -> str:
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")


def filter_choices(response, title: str) -> list[str]:
    spec = next(s for s in response.context["cl"].filter_specs if s.title == title)
    return [choice["display"] for choice in spec.choices(response.context["cl"])]


def test_the_audit_logs_filters_offer_what_is_stored_and_what_the_code_writes(
    client, auditor, audited
):
    response = client.get(changelist(AuditRecord))

    assert response.status_code == 200
    stored = sorted(set(AuditRecord.objects.values_list("action", flat=True)))
    assert filter_choices(response, "action")[1:] == stored
    assert filter_choices(response, "source")[1:] == list(SOURCES)
    assert "planner" in filter_choices(response, "actor role")


def test_the_audit_log_filters_and_drills_into_dates(client, auditor, audited):
    now = timezone.now()
    base = changelist(AuditRecord)
    pages = [
        f"{base}?action=lot.held",
        f"{base}?source=system",
        f"{base}?occurred_at__year={now.year}",
        f"{base}?occurred_at__year={now.year}&occurred_at__month={now.month}",
    ]
    responses = [client.get(page) for page in pages]

    assert [r.status_code for r in responses] == [200] * len(pages)
    held = responses[0].context["cl"]
    assert [r.action for r in held.result_list] == ["lot.held"]
    assert responses[1].context["cl"].result_count == 3
    # The hierarchy offers this year's month, then this month's day.
    months = responses[2].context["cl"]
    assert (
        months.result_count
        == AuditRecord.objects.filter(occurred_at__year=now.year).count()
    )
    body = responses[3].content.decode()
    assert f"occurred_at__day={timezone.localtime(now).day}" in body


def readings(machine, tags, count: int, start: datetime) -> None:
    MachineReading.objects.bulk_create(
        MachineReading(
            machine=machine,
            tag=tag,
            ts=start + timedelta(seconds=n),
            value=float(n),
        )
        for n in range(count)
        for tag in tags
    )


def test_the_readings_newest_first_filtered_by_a_listed_or_any_tag(client, auditor):
    make_line()
    machine, other = Machine.objects.order_by("id")[:2]
    now = timezone.now().replace(microsecond=0)
    readings(machine, ["state", "temperature"], 3, now - timedelta(minutes=5))
    readings(other, ["good_count"], 2, now - timedelta(minutes=1))
    base = changelist(MachineReading)

    everything = client.get(base)
    by_tag = client.get(f"{base}?tag=temperature")
    one_machine = client.get(f"{base}?machine__id__exact={machine.pk}")

    assert [r.status_code for r in (everything, by_tag, one_machine)] == [200] * 3
    stored = list(MachineReading.objects.order_by("-id"))
    assert list(everything.context["cl"].result_list) == stored
    assert filter_choices(everything, "tag")[1:] == list(ReadingTag.values)
    assert {r.tag for r in by_tag.context["cl"].result_list} == {"temperature"}
    assert by_tag.context["cl"].result_count == 3
    mine = list(one_machine.context["cl"].result_list)
    assert [(r.tag, r.ts) for r in mine] == sorted(
        ((r.tag, r.ts) for r in stored if r.machine_id == machine.pk), reverse=True
    )
    # No column sorts the whole table.
    assert everything.context["cl"].sortable_by == ()


@pytest.mark.parametrize(
    "model_admin",
    [
        model_admin
        for model_admin in admin.site._registry.values()
        if isinstance(model_admin, adminlarge.LargeTableAdmin)
    ],
    ids=lambda model_admin: model_admin.model._meta.label,
)
def test_each_large_table_lists_without_a_distinct_or_a_count_of_every_row(
    client, auditor, model_admin, monkeypatch
):
    """With the count estimated (as for a plant-year), the page reads no
    column's distinct values and counts nothing (PostgreSQL); it lists on
    SQLite too."""
    monkeypatch.setattr(adminlarge, "EXACT_BELOW", 0)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(changelist(model_admin.model))

    assert response.status_code == 200
    if settings.DB_IS_POSTGRES:
        table = model_admin.model._meta.db_table
        big = [
            q["sql"].upper()
            for q in queries.captured_queries
            if f'FROM "{table.upper()}"' in q["sql"].upper()
        ]
        assert not any(sql.startswith("SELECT DISTINCT") for sql in big), big
        assert not any("COUNT(" in sql for sql in big), big
