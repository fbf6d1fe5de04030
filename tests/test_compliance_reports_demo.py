"""Every report previews the seeded demo plant with real rows (its own module:
``demo_plant`` keeps its seeded transaction open for the module's tests, so
the other report tests, which build their own data, must not share it)."""

from __future__ import annotations

import pytest

from bpmos.roles import Role
from compliance.reports.base import report_get
from tests.test_compliance_reports import ALL_REPORTS, api, column_keys, preview

pytestmark = pytest.mark.django_db

_TYPES = {
    "string": (str,),
    "number": (int, float),
    "percent": (int, float),
    "date": (str,),
    "datetime": (str,),
}


def test_every_report_previews_the_demo_plant_with_real_rows(demo_plant, make_user):
    """The seeded plant (a single test: seeding takes ~25 s): every report has
    rows, each row has exactly the declared columns with values of their
    type, and the total is the report's count."""
    client = api(make_user(Role.AUDITOR))
    for report_id in ALL_REPORTS:
        body = preview(client, report_id)
        report = report_get(report_id)
        assert body["isEmpty"] is False, report_id
        assert body["totalRows"] == report.count(report.parse({})), report_id
        assert len(body["rows"]) == min(body["totalRows"], 50)
        for row in body["rows"]:
            assert list(row) == column_keys(report_id)
            for column in report.columns:
                value = row[column.key]
                allowed = _TYPES[column.type] + (bool, type(None))
                assert isinstance(value, allowed), (report_id, column.key, value)
        assert [c["id"] for c in body["charts"]] == list(report.chart_ids)
        for chart in body["charts"]:
            assert any(p["y"] for s in chart["series"] for p in s["points"]), chart
