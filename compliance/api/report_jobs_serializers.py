"""Shapes of the report downloads and jobs (camelCase, as /api/reports/)."""

from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from compliance.models import JobStatus, ReportJob

FORMAT_CHOICES = ["csv", "pdf"]
# A parameter's value as a report's query takes it: one scalar.
_SCALARS = (str, int, float, bool)


class ReportJobCreateSerializer(serializers.Serializer):
    """The body of ``POST /api/reports/{reportId}/jobs``."""

    format = serializers.ChoiceField(choices=FORMAT_CHOICES)
    parameters = serializers.DictField(
        child=serializers.JSONField(),
        required=False,
        default=dict,
        help_text="The report's parameters as its query string takes them "
        '(e.g. {"from": "2026-11-01", "to": "2026-11-30"}); one value each.',
    )

    def validate_parameters(self, value: dict) -> dict[str, str]:
        """Each value one scalar, as a query value (a string); null is absent."""
        errors = {}
        query: dict[str, str] = {}
        for key, item in value.items():
            if item is None:
                continue
            if not isinstance(item, _SCALARS):
                errors[key] = ["One value (a string or a number), not a list."]
            elif isinstance(item, bool):
                query[key] = "true" if item else "false"
            else:
                query[key] = str(item)
        if errors:
            raise serializers.ValidationError(errors)
        return query


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
