"""Routes of compliance's report downloads and jobs (see compliance/urls.py).

``reports/jobs/<uuid>`` only matches a UUID, so no report id is ever taken
for a job (and the reports area's ``reports/<reportId>/…`` routes are not
shadowed: a report id is never a UUID followed by these suffixes)."""

from django.urls import re_path

from compliance.api import report_jobs_views as views

UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
JOB = rf"(?P<job_id>{UUID})"
REPORT = r"(?P<report_id>[^/]{1,100})"

urlpatterns = [
    re_path(
        rf"^reports/jobs/{JOB}/?$",
        views.ReportJobDetailView.as_view(),
        name="report-job-detail",
    ),
    re_path(
        rf"^reports/jobs/{JOB}/file/?$",
        views.ReportJobFileView.as_view(),
        name="report-job-file",
    ),
    re_path(
        rf"^reports/{REPORT}/download/?$",
        views.ReportDownloadView.as_view(),
        name="report-download",
    ),
    re_path(
        rf"^reports/{REPORT}/jobs/?$",
        views.ReportJobCreateView.as_view(),
        name="report-jobs",
    ),
]
