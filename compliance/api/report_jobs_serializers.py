"""Shapes of the report downloads and jobs (camelCase, as /api/reports/)."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from compliance.models import JobStatus, ReportJob

FORMAT_CHOICES = ["csv", "pdf"]


@extend_schema_field(
    {"oneOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]}
)
class ParameterValueField(serializers.Field):
    """One report parameter's value: a string, a number or a boolean, as the
    report's query string would carry it (null: leave it to the default)."""

    default_error_messages = {
        "invalid": "One value (a string, a number or a boolean), not a list."
    }

    def to_internal_value(self, data):
        if isinstance(data, bool):
            return "true" if data else "false"
        if isinstance(data, str | int | float):
            return str(data)
        self.fail("invalid")

    def to_representation(self, value):
        return value


class ReportJobCreateSerializer(serializers.Serializer):
    """The body of ``POST /api/reports/{reportId}/jobs``."""

    format = serializers.ChoiceField(choices=FORMAT_CHOICES)
    parameters = serializers.DictField(
        child=ParameterValueField(allow_null=True),
        required=False,
        default=dict,
        help_text="The report's parameters as its query string takes them "
        '(e.g. {"from": "2026-11-01", "to": "2026-11-30"}); null or absent: '
        "the report's default.",
    )

    def validate_parameters(self, value: dict) -> dict[str, str]:
        return {key: item for key, item in value.items() if item is not None}


class ReportJobSerializer(serializers.ModelSerializer):
    """A report job: its progress, and where its file is once it is done."""

    jobId = serializers.UUIDField(source="id")
    reportId = serializers.CharField(source="report_id")
    parameters = serializers.DictField(source="params", child=serializers.JSONField())
    format = serializers.ChoiceField(choices=FORMAT_CHOICES)
    status = serializers.ChoiceField(choices=JobStatus.choices)
    progress = serializers.IntegerField(help_text="Percent, 0 to 100.")
    rowsDone = serializers.IntegerField(source="rows_done")
    rowsTotal = serializers.IntegerField(
        source="rows_total", allow_null=True, help_text="Known once the job runs."
    )
    createdAt = serializers.DateTimeField(source="created_at")
    startedAt = serializers.DateTimeField(source="started_at", allow_null=True)
    finishedAt = serializers.DateTimeField(source="finished_at", allow_null=True)
    error = serializers.CharField(help_text="Why it failed; empty otherwise.")
    fileName = serializers.CharField(source="file_name")
    size = serializers.IntegerField(allow_null=True, help_text="Bytes, when done.")
    downloadUrl = serializers.SerializerMethodField(
        help_text="Where the file is, once the job is done; null before."
    )

    class Meta:
        model = ReportJob
        fields = [
            "jobId",
            "reportId",
            "parameters",
            "format",
            "status",
            "progress",
            "rowsDone",
            "rowsTotal",
            "createdAt",
            "startedAt",
            "finishedAt",
            "error",
            "fileName",
            "size",
            "downloadUrl",
        ]

    def get_downloadUrl(self, job: ReportJob) -> str | None:
        if job.status != JobStatus.DONE:
            return None
        return reverse("api:report-job-file", args=[job.pk])
