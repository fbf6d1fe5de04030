"""Group I dashboards on the demo plant (``seed_demo``): every endpoint
answers, figures within their bounds. Its own module: the demo plant stays in
an outer transaction for the whole module (tests/conftest.py ``demo_plant``),
which the fixed-plant tests of test_dashboard_kpis.py must not see."""

import pytest
from rest_framework.test import APIClient

from bpmos.dashboards import trends
from passports.models import TelemetryReading


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.django_db
def test_demo_plant_figures_are_within_bounds(demo_plant, make_user):
    """Every endpoint answers on the seeded plant, percentages in 0..100;
    the demo's roll-ups and telemetry give the OEE and SoH trends values."""
    client = api(make_user("plant-head"))
    summary = client.get("/api/dashboard/summary").json()
    for name in ("shift", "today", "week"):
        window = summary[name]
        assert window["qaPassed"] <= window["qaTested"]
        for key in ("yieldPercent", "lineYieldPercent"):
            assert window[key] is None or 0 <= window[key] <= 100
    assert summary["hold"]["total"] == sum(
        v for k, v in summary["hold"].items() if k != "total"
    )
    distributions = client.get("/api/dashboard/distributions").json()
    assert distributions["stageMix"]
    assert sum(share["count"] for share in distributions["custodyMix"]) > 0
    model = TelemetryReading.objects.values_list("passport__model", flat=True)[0]
    found = {}
    for metric in trends.METRICS:
        params = {"metric": metric, "bucket": "day"}
        if metric in trends.TELEMETRY_METRICS:
            params["model"] = model
        response = client.get("/api/dashboard/trends", params)
        assert response.status_code == 200, metric
        values = [
            point["value"]
            for series in response.json()["series"]
            for point in series["points"]
            if point["value"] is not None
        ]
        if response.json()["unit"] == "%":
            assert all(0 <= value <= 100 for value in values), metric
        found[metric] = values
    assert found["oee"]
    assert found["soh"]
