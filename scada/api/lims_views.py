"""The LIMS API: import a lab's CSV, fetch from a REST LIMS, list what was
applied. Thin: the rules are ``scada.quality``'s."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.parsers import FormParser, MultiPartParser

from bpmos.idempotency import OUTSIDE
from bpmos.parsers import JSONParser
from bpmos.views import BpmosAPIView
from scada import quality
from scada.api import lims_serializers as s
from scada.api.lims_filters import LimsResultFilterSet


def _report(report: quality.ApplyReport) -> dict:
    return {
        "applied": report.applied,
        "skipped": report.skipped,
        "rejected": [error.as_dict() for error in report.rejected],
        "dry_run": report.dry_run,
    }


class LimsImportView(BpmosAPIView):
    """Import quality results from a CSV (multipart, field ``file``).

    Good rows become passports' QA events; bad rows and unknown serials are
    listed in ``rejected`` and not applied; rows applied before are counted in
    ``skipped``. 400 when the file cannot be read or none of its rows could be
    applied (``details.rejected`` names them). ``dry_run``: check, apply nothing.
    """

    # The file comes as multipart; a JSON body still goes through the bounded
    # parser, so it is a 400 naming ``file`` (or a parse error), never a 415.
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(
        tags=["lims"],
        request={"multipart/form-data": s.LimsImportSerializer},
        responses={200: s.LimsReportSerializer},
    )
    def post(self, request):
        body = self.validated(s.LimsImportSerializer)
        upload = body["file"]
        report = quality.lims_import_csv(
            file=upload,
            actor=request.user,
            dry_run=body["dry_run"],
            name=upload.name or "",
        )
        return self.respond(s.LimsReportSerializer, _report(report))


class LimsFetchView(BpmosAPIView):
    """Fetch new results from a LIMS connector now and apply them (503 when
    the LIMS cannot be reached)."""

    # Calls the LIMS outside any transaction.
    idempotency = OUTSIDE

    @extend_schema(
        tags=["lims"],
        request=s.LimsFetchSerializer,
        responses={200: s.LimsReportSerializer},
    )
    def post(self, request):
        body = self.validated(s.LimsFetchSerializer)
        report = quality.lims_fetch(connector_id=body["connector"], actor=request.user)
        return self.respond(s.LimsReportSerializer, _report(report))


@extend_schema(tags=["lims"])
class LimsResultListView(generics.ListAPIView):
    """The quality results applied, newest test first, with the passport event
    each became; filters serial, test_name, passed, connector, source,
    from/to (tested_at)."""

    queryset = quality.lims_result_list()
    serializer_class = s.LimsResultSerializer
    filterset_class = LimsResultFilterSet
