"""The returns API: build, read and approve compliance returns, list the CSV
schemas, and export an approved return as the regulator's CSV. Thin: the
rules are ``compliance.returns``'s (docs/compliance.md)."""

from __future__ import annotations

from django.http import HttpResponse
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError

from bpmos import filters as bpmos_filters
from bpmos.filters import EnumFilter
from bpmos.jsonfields import read_body
from bpmos.renderers import FirstRendererNegotiation, JSONRenderer
from bpmos.views import ApiViewMixin, BpmosAPIView
from compliance import returns
from compliance.api import returns_serializers as s
from compliance.api.fields import FinancialYearFilter
from compliance.models import ComplianceReturn, ReturnEvent, ReturnLine, ReturnStatus
from compliance.periods import fy_parse

_TAGS = ["compliance"]
_ID = OpenApiParameter(
    "id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The return's id."
)


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(
        response={"$ref": "#/components/schemas/Error"}, description=description
    )


class ReturnFilterSet(bpmos_filters.FilterSet):
    status = EnumFilter(enum=ReturnStatus, field_name="status")
    financialYear = FinancialYearFilter(
        method="filter_financial_year",
        help_text='A financial year, "2026-27".',
    )

    class Meta:
        model = ComplianceReturn
        fields: list[str] = []

    def filter_financial_year(self, queryset, name, value):
        try:
            fy_parse(value)
        except ValueError as error:
            raise ValidationError({"financialYear": [str(error)]}) from None
        return queryset.filter(financial_year=value)


class ReturnLineFilterSet(bpmos_filters.FilterSet):
    event = EnumFilter(enum=ReturnEvent, field_name="event")

    class Meta:
        model = ReturnLine
        fields: list[str] = []


class ReturnListView(ApiViewMixin, generics.ListAPIView):
    """Compliance returns, newest built first (filters ``status``,
    ``financialYear``); POST builds a draft return for a period."""

    queryset = returns.return_list()
    serializer_class = s.ReturnSerializer
    filterset_class = ReturnFilterSet
    filter_backends = [filters.DjangoFilterBackend]

    @extend_schema(tags=_TAGS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=_TAGS,
        request=s.ReturnBuildSerializer,
        responses={201: s.ReturnDetailSerializer},
        examples=[
            OpenApiExample("A financial year", value={"fy": "2026-27"}),
            OpenApiExample(
                "A quarter",
                value={"from": "2026-04-01", "to": "2026-06-30", "note": "Q1"},
            ),
        ],
    )
    def post(self, request):
        body = self.validated(s.ReturnBuildSerializer)
        ret = returns.return_build(
            period=body["period"], actor=request.user, note=body.get("note", "")
        )
        return self.respond(
            s.ReturnDetailSerializer,
            returns.return_get(return_id=ret.pk),
            status=status.HTTP_201_CREATED,
        )


class ReturnDetailView(BpmosAPIView):
    """A return: status, who built and approved it, its frozen EPR figures,
    row count, content hash and exports."""

    @extend_schema(
        tags=_TAGS, parameters=[_ID], responses={200: s.ReturnDetailSerializer}
    )
    def get(self, request, pk: int):
        return self.respond(
            s.ReturnDetailSerializer, returns.return_get(return_id=int(pk))
        )


class ReturnLinesView(generics.ListAPIView):
    """A return's pack rows (placed, collected, recycled), in the order they
    were built; filter ``event``. 404 when there is no such return."""

    serializer_class = s.ReturnLineSerializer
    filterset_class = ReturnLineFilterSet
    filter_backends = [filters.DjangoFilterBackend]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular
            return ReturnLine.objects.none()
        return returns.return_lines(return_id=int(self.kwargs["pk"]))

    @extend_schema(tags=_TAGS, parameters=[_ID])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ReturnApproveView(BpmosAPIView):
    """Approve a draft return (supervisor, plant head, admin): the approver,
    their role and the time are recorded; 409 when already approved."""

    @extend_schema(
        tags=_TAGS,
        parameters=[_ID],
        request=None,
        responses={
            200: s.ReturnDetailSerializer,
            (409, "application/json"): _error(
                "The return is already approved (illegal_transition)."
            ),
        },
    )
    def post(self, request, pk: int):
        read_body(request)
        ret = returns.return_approve(return_id=int(pk), actor=request.user)
        return self.respond(
            s.ReturnDetailSerializer, returns.return_get(return_id=ret.pk)
        )


class ExportView(BpmosAPIView):
    """Export an approved return as the regulator's CSV (for manual upload).

    Body (optional): ``returnId`` (omitted: the most recently approved
    return) and ``schema`` (a CSV schema's slug; omitted: the default
    pack-level schema). The answer is the CSV itself, with
    ``Content-Disposition: attachment``, ``X-Checksum-SHA256`` (hex) and
    ``Repr-Digest`` (RFC 9530) of its bytes. Cells that a spreadsheet would
    read as a formula are escaped. Every export is in the audit log as
    ``compliance_export``. 409 when the return is a draft
    (``return_not_approved``), when none is approved
    (``no_approved_return``) or when its stored rows were altered
    (``return_altered``)."""

    # The answer is the CSV the view builds, whatever the client accepts;
    # errors are JSON. No DRF ``?format=`` override: there is nothing to choose.
    renderer_classes = [JSONRenderer]
    content_negotiation_class = FirstRendererNegotiation

    @extend_schema(
        tags=_TAGS,
        request=s.ExportSerializer,
        responses={
            (200, "text/csv"): OpenApiResponse(
                response=OpenApiTypes.BINARY,
                description="The CSV (UTF-8, no BOM, CRLF, RFC 4180 quoting): "
                "the schema's headers, then one row per pack or per category. "
                "Headers: `Content-Disposition: attachment; filename=...`, "
                "`X-Checksum-SHA256` (hex SHA-256 of the body), `Repr-Digest: "
                "sha-256=:<base64>:` (RFC 9530) and `X-Row-Count`.",
            ),
            (400, "application/json"): _error(
                "Invalid body, or no CSV schema of that slug."
            ),
            (404, "application/json"): _error("No return of that id."),
            (409, "application/json"): _error(
                "The return is a draft (return_not_approved), none is approved "
                "(no_approved_return), its rows were altered (return_altered), "
                "or no schema is the default (no_default_schema)."
            ),
        },
    )
    def post(self, request):
        body = self.validated(s.ExportSerializer)
        export = returns.return_export(
            return_id=body.get("returnId"),
            schema_slug=body.get("schema"),
            actor=request.user,
            source="api",
        )
        response = HttpResponse(export.content, content_type=export.content_type)
        response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
        response["X-Checksum-SHA256"] = export.sha256
        response["Repr-Digest"] = export.repr_digest
        response["X-Row-Count"] = str(export.rows)
        response["Cache-Control"] = "no-store"
        return response


@extend_schema(tags=_TAGS)
class SchemaListView(generics.ListAPIView):
    """The CSV layouts an export may name (read-only; admins edit them in
    the admin). ``columns`` are ``{"header", "field"}``."""

    queryset = returns.schema_list()
    serializer_class = s.CsvSchemaSerializer
    filter_backends: list = []
