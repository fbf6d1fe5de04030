"""``bpmos.renderers``: ``RowsJSONRenderer`` writes ``JSONRenderer``'s bytes."""

from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import pytest
from django.utils.translation import gettext_lazy
from rest_framework.exceptions import ErrorDetail

from bpmos.renderers import JSONRenderer, RowsJSONRenderer

ROWS = {
    "count": 2**63 - 1,
    "next": "https://localhost/api/workorders/?page=2&page_size=50",
    "previous": None,
    "results": [
        {
            "id": -7,
            "serial": 'PK-001 "quoted" \\ back/slash',
            "location": "Dock 2 \u00b7 \u201cbay\u201d \U0001f50b",
            "controls": "\x00\x01\x08\x09\x0a\x0c\x0d\x1f\x7f",
            "separators": "a\u2028b\u2029c",
            "onHold": False,
            "isDispatchable": True,
            "holdReason": None,
            "custodian": {"kind": "manufacturer", "name": ""},
            "tags": ["a", 1, None, True, []],
            "pair": ("tuple", 2),
            "uuid": UUID("12345678-1234-5678-1234-567812345678"),
        }
    ],
}


@pytest.mark.parametrize(
    "data",
    [
        ROWS,
        [],
        {},
        "text",
        0,
        # What orjson refuses or would write otherwise: JSONRenderer writes it.
        {"detail": ErrorDetail("Not found.", code="not_found")},
        {"message": gettext_lazy("Not found.")},
        {"at": datetime(2026, 3, 2, 8, 0, 1, 250_000, tzinfo=UTC)},
        {"quantity": Decimal("1.50")},
        {1: "a non-text key"},
        {"big": 2**64},
        {"lone": "\ud800"},
    ],
)
def test_rows_renderer_writes_what_json_renderer_writes(data):
    assert RowsJSONRenderer().render(data) == JSONRenderer().render(data)


def test_rows_renderer_indents_as_json_renderer_does():
    media_type = "application/json; indent=2"
    indented = RowsJSONRenderer().render(ROWS, media_type)
    assert indented == JSONRenderer().render(ROWS, media_type)
    assert b'\n  "count"' in indented


def test_rows_renderer_renders_nothing_for_none():
    assert RowsJSONRenderer().render(None) == b""
