"""Report downloads (CSV, PDF) and report jobs. Thin: the rules are
``compliance.reports.jobs``'s, the files ``csvout``'s and ``pdf``'s."""

from __future__ import annotations

import base64
import hashlib

from django.conf import settings
from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response

from bpmos.access import require_action
from bpmos.renderers import FirstRendererNegotiation
from bpmos.views import BpmosAPIView
from compliance.api import report_jobs_serializers as s
from compliance.api.reports_views import report_query_parameters
from compliance.reports import csvout, jobs
from compliance.reports.base import Report, report_get
from compliance.reports.pdf import report_pdf

TAGS = ["reports"]
REPORT_ID = OpenApiParameter(
    "report_id",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description='"oee-by-line-shift"',
)
JOB_ID = OpenApiParameter(
    "job_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The job's id."
)
FORMAT = OpenApiParameter(
    "format",
    OpenApiTypes.STR,
    required=True,
    enum=s.FORMAT_CHOICES,
    description="csv (every row) or pdf (charts, summary, the first 5,000 rows).",
)


_FILE_HEADERS = (
    " Content-Disposition: attachment with the file's name; X-Checksum-SHA256"
    " (hex) and Repr-Digest (RFC 9530): the file's SHA-256 (PDFs and job files;"
    " a streamed CSV has none); Cache-Control: no-store."
)
FILE = {
    (200, "text/csv"): OpenApiResponse(
        OpenApiTypes.BINARY, description="The file." + _FILE_HEADERS
    ),
    (200, "application/pdf"): OpenApiResponse(
        OpenApiTypes.BINARY, description="The file." + _FILE_HEADERS
    ),
}


def _report_for(report_id: str, user) -> Report:
    """The report (404) if the caller may open it (403)."""
    report = report_get(report_id)
    require_action(report.action, user)
    return report


def _accepted(job) -> Response:
    """202: the job's body, and where to poll it."""
    response = Response(s.ReportJobSerializer(job).data, status=202)
    response["Location"] = reverse("api:report-job-detail", args=[job.pk])
    return response


def _attachment(
    response: HttpResponse, file_name: str, sha256_hex: str | None = None
) -> HttpResponse:
    """A file download: its name, never cached (plant data), and when the
    bytes are known, their SHA-256 (hex, and RFC 9530's ``Repr-Digest``, as
    the returns export sends)."""
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=True, filename=file_name
    )
    response["Cache-Control"] = "no-store"
    if sha256_hex:
        response["X-Checksum-SHA256"] = sha256_hex
        digest = base64.b64encode(bytes.fromhex(sha256_hex)).decode()
        response["Repr-Digest"] = f"sha-256=:{digest}:"
    return response


class ReportDownloadView(BpmosAPIView):
    """The full report as a file: ``format`` csv (every row, streamed) or pdf
    (title, parameters, summary, charts, rows). A report of more rows than
    ``BPMOS_REPORT_SYNC_ROWS`` is rendered by a worker instead: 202 with the
    job to poll (``Location``). PDFs carry ``X-Checksum-SHA256``."""

    content_negotiation_class = FirstRendererNegotiation

    @extend_schema(
        tags=TAGS,
        parameters=[REPORT_ID, FORMAT, *report_query_parameters("reports: ")],
        responses={**FILE, (202, "application/json"): s.ReportJobSerializer},
    )
    def get(self, request, report_id: str):
        report = _report_for(report_id, request.user)
        fmt = jobs.format_check(report, request.query_params.get("format"))
        query = {k: v for k, v in request.query_params.items() if k != "format"}
        params = report.parse(query)
        if report.count(params) > settings.BPMOS_REPORT_SYNC_ROWS:
            job = jobs.job_create(
                report=report, params=params, fmt=fmt, user=request.user
            )
            return _accepted(job)
        name = report.filename(params, fmt)
        if fmt == "csv":
            response = StreamingHttpResponse(
                csvout.report_csv(report, params), content_type=jobs.CONTENT_TYPES[fmt]
            )
            return _attachment(response, name)
        body = report_pdf(report, params)
        response = HttpResponse(body, content_type=jobs.CONTENT_TYPES[fmt])
        return _attachment(response, name, hashlib.sha256(body).hexdigest())


class ReportJobCreateView(BpmosAPIView):
    """Render a report as a file in the background, whatever its size: 202
    with the job to poll (``Location``); its file when it is done."""

    @extend_schema(
        tags=TAGS,
        parameters=[REPORT_ID],
        request=s.ReportJobCreateSerializer,
        responses={202: s.ReportJobSerializer},
    )
    def post(self, request, report_id: str):
        report = _report_for(report_id, request.user)
        body = self.validated(s.ReportJobCreateSerializer)
        fmt = jobs.format_check(report, body["format"])
        params = report.parse(body["parameters"])
        job = jobs.job_create(report=report, params=params, fmt=fmt, user=request.user)
        return _accepted(job)


class ReportJobDetailView(BpmosAPIView):
    """A report job's progress (its creator's and admins'; 404 to others)."""

    @extend_schema(
        tags=TAGS, parameters=[JOB_ID], responses={200: s.ReportJobSerializer}
    )
    def get(self, request, job_id):
        job = jobs.job_get(job_id=job_id, user=request.user)
        return self.respond(s.ReportJobSerializer, job)


class ReportJobFileView(BpmosAPIView):
    """A finished job's file (409 while it is not done), with its
    ``X-Checksum-SHA256``."""

    content_negotiation_class = FirstRendererNegotiation

    @extend_schema(tags=TAGS, parameters=[JOB_ID], responses=FILE)
    def get(self, request, job_id):
        job, path = jobs.job_file(job_id=job_id, user=request.user)
        response = FileResponse(path.open("rb"), content_type=job.content_type)
        return _attachment(response, job.file_name, job.checksum)
