"""The EU attributes a lab measures, sourced from the LIMS's results
(passports.services.LIMS_ATTRIBUTES, applied by scada.quality): a CSV through
POST /api/lims/import sets them on the passport with the QA event, an invalid
one rejects its row and changes nothing, the initial ones keep the first
measurement, and completeness counts them with the one validator."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from bpmos.roles import Role
from elog.models import AuditRecord
from passports import attributes, services
from passports.models import Passport, PassportEvent
from tests.conftest import bearer
from tests.factories_passports import register

pytestmark = pytest.mark.django_db

MADE = "2026-01-05T08:00:00Z"
HEADER = (
    "serial,test_name,result,tested_at,initialInternalResistance,"
    "initial_self_discharge_percent,roundTripEfficiencyAt50PerCentCycleLife,"
    "resultOfTestReport,ir_mohm\n"
)


def upload(user, content: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(user)["Authorization"])
    data = {
        "file": SimpleUploadedFile("lab.csv", content.encode(), content_type="text/csv")
    }
    return client.post("/api/lims/import", data, format="multipart")


@pytest.fixture
def boss(make_user):
    return make_user(Role.SUPERVISOR, username="lab-boss")


def test_the_lims_attributes_are_the_registry_s():
    keys = {a.key for a in services.LIMS_ATTRIBUTES}
    assert keys == {
        "roundTripEfficiencyAt50PerCentCycleLife",
        "initialInternalResistance",
        "initialSelfDischarge",
        "resultOfTestReport",
    }


def test_a_result_sets_the_lab_s_attributes_with_its_qa_event(boss):
    pack = register("pack", serial="LAB-A", manufactured_at=MADE)
    url = "https://lab.example/reports/LAB-A.pdf"
    response = upload(
        boss,
        HEADER + f"LAB-A,EOL,PASS,2026-03-01T10:00:00Z,12.3456,1.5,93.25,{url},0.8\n",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["applied"] == 1
    pack.refresh_from_db()
    assert pack.initial_internal_resistance_mohm == Decimal("12.346")
    assert pack.initial_self_discharge_percent == Decimal("1.500")
    assert pack.round_trip_efficiency_half_life_percent == Decimal("93.25")
    assert pack.test_report == url
    record = AuditRecord.objects.get(action="passport.lims_attributes_recorded")
    assert record.actor_username == "lab-boss"
    assert set(record.after) == {
        "initial_internal_resistance_mohm",
        "initial_self_discharge_percent",
        "round_trip_efficiency_half_life_percent",
        "test_report",
    }
    # The test report is the authorities': not in the QA event's data nor the
    # kept result, which every signed-in reader sees.
    from scada.models import LimsResult

    assert url not in str(LimsResult.objects.get().values)
    assert url not in str(list(PassportEvent.objects.values_list("data", flat=True)))
    assert LimsResult.objects.get().values["ir_mohm"] == 0.8
    applied = AuditRecord.objects.get(action="lims_result.applied")
    assert len(applied.after["attributes"]) == 4
    # The completeness counts them: none of the four is missing any more.
    values = attributes.values_of(pack)
    for attribute in services.LIMS_ATTRIBUTES:
        assert attribute.valid(values), attribute.key

    # A later result: the initial ones stay, the others take the newest.
    upload(
        boss,
        HEADER + "LAB-A,Half life,PASS,2026-04-01T10:00:00Z,99,9,90,,\n",
    )
    pack.refresh_from_db()
    assert pack.initial_internal_resistance_mohm == Decimal("12.346")
    assert pack.initial_self_discharge_percent == Decimal("1.500")
    assert pack.round_trip_efficiency_half_life_percent == Decimal("90.00")
    assert pack.test_report == url  # an empty cell sets nothing


@pytest.mark.parametrize(
    ("cells", "name"),
    [
        ("-1,,,,", "initialInternalResistance"),
        ("0,,,,", "initialInternalResistance"),
        ("99999999,,,,", "initialInternalResistance"),
        (",101,,,", "initial_self_discharge_percent"),
        (",,abc,,", "roundTripEfficiencyAt50PerCentCycleLife"),
        (",,,not a url,", "resultOfTestReport"),
    ],
)
def test_an_invalid_lab_value_rejects_its_row_and_changes_nothing(boss, cells, name):
    pack = register("pack", serial="LAB-B", manufactured_at=MADE)
    events = PassportEvent.objects.count()
    audits = AuditRecord.objects.count()
    csv = HEADER + f"LAB-B,EOL,PASS,2026-03-01T10:00:00Z,{cells}\n"
    response = upload(boss, csv)
    assert response.status_code == 400, response.json()
    assert f"values.{name.lower()}" in str(response.json())
    assert PassportEvent.objects.count() == events
    assert AuditRecord.objects.count() == audits
    fresh = Passport.objects.get(pk=pack.pk)
    assert fresh.initial_internal_resistance_mohm is None
    assert fresh.test_report == ""
