"""``bpmos.listrows``: the values printed as DRF's fields print them."""

from datetime import UTC, datetime, timedelta
from datetime import timezone as fixed

import pytest
from django.utils import timezone
from rest_framework import serializers

from bpmos.listrows import drf_datetime, labels_of

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
