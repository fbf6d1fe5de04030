"""``GET /api/logs`` and its CSV export (control-UI contract group VII;
docs/logs.md). Thin: ``bpmos.dashboards.logs`` reads and merges."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from bpmos.csvsafe import csv_lines
from bpmos.dashboards import logs
from bpmos.dashboards.api import logs_serializers as s
from bpmos.fields import TIME_SCHEMA
from bpmos.logevents import CATEGORIES, SEVERITIES, LogEvent, LogQuery
from bpmos.renderers import FirstRendererNegotiation
from bpmos.views import BpmosAPIView
from elog import audit

TAGS = ["logs"]


def _many(name: str, choices: tuple[str, ...], what: str) -> OpenApiParameter:
    return OpenApiParameter(
        name,
        {"type": "array", "items": {"type": "string", "enum": list(choices)}},
        style="form",
        explode=True,
        description=f"{what}: one or more, repeated or comma-separated.",
    )


FILTERS = [
    _many("category", CATEGORIES, "Categories (default: all you may read)"),
    _many("severity", SEVERITIES, "Severities (default: all)"),
    OpenApiParameter(
        "from",
        TIME_SCHEMA,
        description="Events at or after this time (ISO 8601, 2000 to 2100).",
    ),
    OpenApiParameter(
        "to",
        TIME_SCHEMA,
        description="Events before this time (ISO 8601, 2000 to 2100).",
    ),
    OpenApiParameter(
        "search",
        {"type": "string", "maxLength": s.MAX_SEARCH},
        description="Case-insensitive text in the message or the target "
        "(type, id, label) and the actor.",
    ),
    OpenApiParameter(
        "cursor",
        {"type": "string", "maxLength": 512},
        description="Opaque; from a page's `next` link (the events older than "
        "the previous page's last).",
    ),
]
PAGE_SIZE = OpenApiParameter(
    "page_size",
    {"type": "integer", "minimum": 1, "maximum": logs.MAX_PAGE_SIZE},
    description=f"Events per page (default {logs.PAGE_SIZE}).",
)
FORMAT = OpenApiParameter(
    "format", OpenApiTypes.STR, enum=["csv"], description="csv (the default)."
)


def _query(request, params: dict, limit: int) -> LogQuery:
    role = getattr(request.user, "role", None)
    before = logs.decode_cursor(params["cursor"]) if params.get("cursor") else None
    return LogQuery(
        limit=limit,
        categories=logs.check_categories(params.get("category"), role),
        severities=params.get("severity"),
        start=params.get("from"),
        end=params.get("to"),
        search=params.get("search") or None,
        before=before,
        role=role,
    )


class LogListView(BpmosAPIView):
    """The plant's event stream, newest first: the audit log (auditors and
    admins only), the shift log, passport ledger events, alarms and system
    events (connector communication loss, failed CMMS deliveries, failed
    compliance e-mails), each one ``LogEvent``. Immutable history: GET only.
    Cursor-paginated (``next``; no total, no ``previous``)."""

    @extend_schema(
        tags=TAGS,
        operation_id="logs_list",
        parameters=[*FILTERS, PAGE_SIZE],
        responses={200: s.LogPageSerializer},
    )
    def get(self, request):
        params = self.validated(s.LogListQuerySerializer, query=True)
        query = _query(request, params, params.get("page_size") or logs.PAGE_SIZE)
        page = logs.read_page(query)
        next_url = None
        if page.next_cursor is not None:
            next_url = replace_query_param(
                request.build_absolute_uri(), "cursor", page.next_cursor
            )
        return Response(s.page_data(page.events, next_url))


CSV_HEADER = [
    "id",
    "timestamp",
    "category",
    "severity",
    "actor",
    "action",
    "targetType",
    "targetId",
    "targetLabel",
    "message",
    "source",
]


def _row(event: LogEvent) -> list:
    target = event.target
    return [
        event.id,
        event.timestamp,  # csvsafe writes it ISO 8601 UTC ("Z")
        event.category,
        event.severity,
        event.actor or "",
        event.action,
        target.type if target else "",
        target.id if target else "",
        target.label if target else "",
        event.message,
        event.source,
    ]


class LogExportView(BpmosAPIView):
    """The filtered stream as CSV (UTF-8, RFC 4180, cells escaped against
    formula injection), newest first, streamed, at most
    ``EXPORT_MAX_ROWS`` events (from ``cursor`` when given). Same visibility
    as ``GET /api/logs``; every export is audited (``logs_export``, with its
    filters)."""

    content_negotiation_class = FirstRendererNegotiation

    @extend_schema(
        tags=TAGS,
        operation_id="logs_export",
        parameters=[*FILTERS, FORMAT],
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.BINARY,
                description="The CSV (Content-Disposition: attachment; "
                "Cache-Control: no-store).",
            )
        },
    )
    def get(self, request):
        params = self.validated(s.LogExportQuerySerializer, query=True)
        query = _query(request, params, logs.EXPORT_CHUNK)
        audit.record(
            actor=request.user,
            action="logs_export",
            target_type="logs",
            target_id="stream",
            after={
                "format": "csv",
                "category": sorted(query.categories),
                "severity": sorted(query.severities) if query.severities else None,
                "from": query.start.isoformat() if query.start else None,
                "to": query.end.isoformat() if query.end else None,
                "search": query.search,
                "cursor": bool(query.before),
                "max_rows": logs.EXPORT_MAX_ROWS,
            },
        )
        rows = (_row(e) for e in logs.export_events(query))
        response = StreamingHttpResponse(
            csv_lines(CSV_HEADER, rows), content_type="text/csv; charset=utf-8"
        )
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response["Content-Disposition"] = content_disposition_header(
            as_attachment=True, filename=f"logs-{stamp}.csv"
        )
        response["Cache-Control"] = "no-store"
        return response
