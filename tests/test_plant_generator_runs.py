"""The plant generator run from scratch (each test its own plant): the same
seed gives the same plant, and the API reads a generated plant over HTTP.
PostgreSQL only, as tests/test_plant_generator.py."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection, transaction

from plant_generator.generate import SCALES, generate, plant_counts
from runbooks import stage_wip, work_order_counts
from tests.conftest import bearer

pytestmark = pytest.mark.skipif(
    not settings.DB_IS_POSTGRES,
    reason="the plant generator needs PostgreSQL (COPY and set-based SQL)",
)

END = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SMALL = SCALES["small"]


def fingerprint() -> str:
    """A digest of the plant's content without the database's own ids."""
    queries = [
        "SELECT m.code, r.tag, r.ts, r.value, r.text FROM lines_machinereading r "
        "JOIN lines_machine m ON m.id = r.machine_id ORDER BY 1, 2, 3",
        "SELECT uuid, serial, kind, state, version, head_hash, custodian_kind "
        "FROM passports_passport ORDER BY serial",
        "SELECT p.serial, e.version, e.hash FROM passports_passportevent e "
        "JOIN passports_passport p ON p.id = e.passport_id ORDER BY 1, 2",
        "SELECT occurred_at, actor_username, action, target_type, target_id "
        "FROM elog_auditrecord WHERE actor_username <> '' ORDER BY seq",
        "SELECT lot_no, status, planned_start FROM runbooks_workorder ORDER BY 1",
        "SELECT code, status, quantity FROM inventory_item ORDER BY 1",
        "SELECT timestamp, tag_name, status FROM scada_alarmevent ORDER BY 1, 2",
        "SELECT created_at, entry_type, body FROM elog_shiftlogentry ORDER BY 1",
    ]
    digest = hashlib.sha256()
    with connection.cursor() as cursor:
        for sql in queries:
            cursor.execute(sql)
            digest.update(json.dumps(cursor.fetchall(), default=str).encode())
    return digest.hexdigest()


class _Undo(Exception):
    pass


def generated_fingerprint(seed: int) -> str:
    """The fingerprint of a small plant of ``seed``, then rolled back."""
    found = ""
    try:
        with transaction.atomic():
            generate(SMALL, seed=seed, end=END, finish=False)
            found = fingerprint()
            raise _Undo
    except _Undo:
        pass
    assert not plant_counts()["passports"]
    return found


@pytest.mark.django_db
def test_the_same_seed_gives_the_same_plant():
    first = generated_fingerprint(7)
    assert generated_fingerprint(7) == first
    assert generated_fingerprint(8) != first


@pytest.mark.django_db(transaction=True)
def test_the_api_reads_a_generated_plant(http, make_user):
    call_command("generate_plant", scale="small", seed=3, stdout=StringIO())
    headers = bearer(make_user("auditor"))
    pack = "GEN-PACK-0000004"

    def get(path: str):
        response = http.get(path, headers=headers)
        assert response.status_code == 200, (path, response.text[:300])
        return response.json()

    assert get("/api/workorders/")["count"] == SMALL.work_orders
    # Loaded by SQL, then the kept counts rebuilt: the detail's work-order
    # counts (and the stages' WIP) equal a recount.
    orders = SMALL.work_orders
    in_progress, planned = min(60, orders // 4), min(100, orders // 4)
    done = orders - in_progress - planned  # every 50th of them cancelled
    assert get("/api/runbooks/manufacturing")["workOrders"] == {
        "planned": planned,
        "inProgress": in_progress,
        "completed": done - done // 50,
        "cancelled": done // 50,
    }
    assert work_order_counts.kept_counts() == work_order_counts.recount()
    assert stage_wip.kept_counts() == stage_wip.recount()
    logs = get("/api/logs")
    assert len(logs["results"]) == 50
    # the list shows what is in stock: every 7th item is used up
    in_stock = SMALL.items - SMALL.items // 7
    assert get("/api/inventory/items")["count"] == in_stock
    detail = get(f"/api/passports/{pack}")
    assert detail["serial"] == pack
    assert detail["state"] == "In Service"
    lookup = get("/api/passports/lookup?identifier=BC0000000004")
    assert (lookup["matchedBy"], lookup["passport"]["serial"]) == ("barcode", pack)
    genealogy = get(f"/api/passports/{pack}/genealogy")
    assert json.dumps(genealogy).count("GEN-CELL-") == 8
    live = get("/api/live-products/dispatchable")
    assert [p["productId"] for p in live["products"]] == ["GEN-PACK-0000009"]
