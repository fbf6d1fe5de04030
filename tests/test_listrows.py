"""``bpmos.listrows``: the values printed as DRF's fields print them."""

from datetime import UTC, datetime, timedelta
from datetime import timezone as fixed

import pytest
from django.utils import timezone
from rest_framework import serializers

from bpmos.listrows import drf_datetime, labels_of, narrowed

TIMES = [
    None,
    datetime(2026, 3, 2, 8, 0, tzinfo=UTC),
    datetime(2026, 3, 2, 8, 0, 1, 250_000, tzinfo=UTC),
    datetime(2026, 3, 2, 23, 30, tzinfo=fixed(timedelta(hours=5, minutes=30))),
    datetime(2026, 3, 2, 8, 0, 0, 7),  # noqa: DTZ001 (naive: read in the current zone)
]


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata", "America/New_York"])
@pytest.mark.parametrize("value", TIMES)
def test_drf_datetime_prints_what_drfs_field_prints(zone, value):
    with timezone.override(zone):
        field = serializers.DateTimeField()
        expected = None if value is None else field.to_representation(value)
        assert drf_datetime(value) == expected


def test_drf_datetime_in_utc_ends_in_z():
    assert drf_datetime(TIMES[2]) == "2026-03-02T08:00:01.250000Z"


def test_labels_of_is_the_choice_fields_output():
    field = serializers.ChoiceField(choices=["Good", "On Hold"])
    assert labels_of(field, [("good", "Good"), ("hold", "On Hold")]) == {
        "good": "Good",
        "hold": "On Hold",
    }


@pytest.mark.django_db
def test_a_distinct_queryset_takes_the_serializers_path(make_user):
    """values() of a distinct() queryset would be distinct over the chosen
    columns only: such a list answers through its serializer, not the rows."""
    from unittest import mock

    from rest_framework.test import APIClient

    from runbooks import selectors
    from runbooks.api.views import WorkOrderListView
    from tests.conftest import bearer
    from tests.factories_production import make_runbook, make_work_order

    planner = make_user("planner")
    runbook = make_runbook()
    for lot in ("LOT-1", "LOT-2", "LOT-3"):
        make_work_order(planner, runbook=runbook, lot_no=lot)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(planner)["Authorization"])
    with (
        mock.patch.object(
            WorkOrderListView,
            "get_queryset",
            return_value=selectors.work_order_list().distinct(),
        ),
        mock.patch.object(
            WorkOrderListView, "shape_rows", side_effect=AssertionError("rows")
        ),
    ):
        body = client.get("/api/workorders/").json()
    assert body["count"] == 3
    assert sorted(row["lot_no"] for row in body["results"]) == [
        "LOT-1",
        "LOT-2",
        "LOT-3",
    ]


def test_only_page_parameters_or_empty_filters_leave_the_list_whole():
    from django.http import QueryDict

    assert not narrowed(QueryDict(""))
    assert not narrowed(QueryDict("page=3&page_size=10&ordering=-qty"))
    assert not narrowed(QueryDict("category=&status=&search="))
    assert narrowed(QueryDict("status=hold"))
    assert narrowed(QueryDict("search=%20"))
    assert narrowed(QueryDict("page=2&kind=&kind=pack"))


@pytest.mark.django_db
def test_a_kept_count_off_postgresql_is_the_querysets_count(make_user):
    from django.db import connection

    from bpmos.accounts.models import User
    from bpmos.rowcounts import services as rowcounts

    make_user("planner")
    if connection.vendor == "postgresql":
        pytest.skip("PostgreSQL keeps the count: tests/test_rowcounts.py")
    assert rowcounts.kept("no.such.count", User.objects.all()) == 1
    assert rowcounts.compact() == 0


# Times a column can hold, as the database prints them (``time_texts``):
# whole seconds, microseconds (one, and a round tenth), before year 1000.
STORED_TIMES = [
    datetime(2026, 3, 2, 8, 0, tzinfo=UTC),
    datetime(2026, 3, 2, 8, 0, 1, 250_000, tzinfo=UTC),
    datetime(2026, 3, 2, 23, 59, 59, 7, tzinfo=UTC),
    datetime(2026, 3, 2, 23, 30, 0, 999_999, tzinfo=fixed(timedelta(hours=5))),
    datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC),
]


def _printed_by_the_database(user, value, *, whole_seconds: bool, zone="UTC"):
    from bpmos.accounts.models import User
    from bpmos.listrows import time_texts

    User.objects.filter(pk=user.pk).update(date_joined=value)
    with timezone.override(zone):
        return (
            User.objects.filter(pk=user.pk)
            .values(**time_texts(["date_joined"], whole_seconds=whole_seconds))
            .get()["date_joined_text"]
        )


@pytest.mark.django_db
@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata"])
@pytest.mark.parametrize("value", STORED_TIMES)
def test_time_texts_print_what_drfs_field_prints(make_user, value, zone):
    """On PostgreSQL the database prints the time (in UTC; in another current
    zone the datetime comes back to be printed here); either way the page
    prints what DRF's DateTimeField does."""
    from bpmos.listrows import drf_datetime_printer

    text = _printed_by_the_database(
        make_user("planner"), value, whole_seconds=False, zone=zone
    )
    with timezone.override(zone):
        expected = serializers.DateTimeField().to_representation(value)
        assert drf_datetime_printer()(text) == expected


@pytest.mark.django_db
@pytest.mark.parametrize("value", STORED_TIMES)
def test_time_texts_in_whole_seconds_print_what_utc_text_prints(make_user, value):
    from bpmos.fields import utc_text

    text = _printed_by_the_database(make_user("planner"), value, whole_seconds=True)
    assert utc_text(text) == utc_text(value)


@pytest.mark.django_db
def test_time_texts_are_text_from_postgresql_in_utc_only(make_user):
    from django.db import connection

    user = make_user("planner")
    value = STORED_TIMES[1]
    in_utc = _printed_by_the_database(user, value, whole_seconds=False)
    elsewhere = _printed_by_the_database(
        user, value, whole_seconds=False, zone="Asia/Kolkata"
    )
    if connection.vendor == "postgresql":
        assert in_utc == "2026-03-02T08:00:01.250000Z"
    else:
        assert in_utc == value
    assert elsewhere == value
