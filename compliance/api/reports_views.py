"""The reports API (control-UI contract, group VIII): the registry of report
templates a caller may open, and a report's preview over real data. Thin:
``compliance.reports`` holds the rules."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema

from bpmos.access import require_action
from bpmos.views import BpmosAPIView
from compliance.api import reports_serializers as s
from compliance.api.fields import FY_PATTERN
from compliance.reports.base import (
    DAY_PATTERN,
    TOKEN_PATTERN,
    Param,
    report_get,
    report_list,
)
from compliance.reports.preview import report_preview, reports_visible


def _schema(params: list[Param]) -> dict:
    """A query parameter's schema: what ``Param.parse`` takes (never "").
    A name several reports use with other choices takes any of them (which
    report takes which stays the report's 400)."""
    kind = params[0].type
    if kind == "date":
        return {"type": "string", "format": "date", "pattern": DAY_PATTERN}
    if kind == "integer":
        return {"type": "integer", "minimum": -999_999_999, "maximum": 999_999_999}
    if kind == "fy":
        return {"type": "string", "pattern": FY_PATTERN}
    if kind == "choice":
        return {
            "type": "string",
            "enum": sorted({c for param in params for c in param.choices}),
        }
    return {"type": "string", "pattern": TOKEN_PATTERN}


def report_query_parameters(named: str = "") -> list[OpenApiParameter]:
    """Every report's query parameters, once each, naming the reports using
    it (after ``named``); the preview's and the download's."""
    seen: dict[str, tuple[list[Param], list[str]]] = {}
    for report in report_list():
        for param in report.params:
            params, ids = seen.setdefault(param.name, ([], []))
            params.append(param)
            ids.append(report.id)
    return [
        OpenApiParameter(
            name,
            _schema(params),
            description=f"{params[0].label} ({named}{', '.join(ids)}).",
        )
        for name, (params, ids) in seen.items()
    ]


REPORT_ID = OpenApiParameter(
    "report_id",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description='A report\'s id, e.g. "oee-by-line-shift".',
)


class ReportListView(BpmosAPIView):
    """The report templates the caller's role may open (a plain array)."""

    @extend_schema(tags=["reports"], responses=s.ReportSerializer(many=True))
    def get(self, request):
        reports = [report.as_dict() for report in reports_visible(request.user)]
        return self.respond(s.ReportSerializer, reports, many=True)


class ReportPreviewView(BpmosAPIView):
    """A report's preview over real data: the first 50 rows, the total, the
    summary and charts; ``isEmpty`` and ``emptyMessage`` when there are none.
    404 for an unknown report, 403 when the role may not open it, 400 naming
    each bad parameter (dates ``YYYY-MM-DD``, ``from`` after ``to``, a span
    over 366 days, an unknown line)."""

    @extend_schema(
        tags=["reports"],
        parameters=[REPORT_ID, *report_query_parameters()],
        responses={200: s.ReportPreviewSerializer},
    )
    def get(self, request, report_id: str):
        report = report_get(report_id)
        require_action(report.action, request.user)
        params = report.parse(request.query_params)
        return self.respond(s.ReportPreviewSerializer, report_preview(report, params))
