"""Report jobs (compliance.reports.jobs): the runner renders to a file under
BPMOS_REPORT_DIR with progress moving as it reads, a failure keeps its error,
the prune removes old jobs and their files; through the API a job is asked for
(202 and a Location), polled and fetched, its file the same as the synchronous
download, and hidden from everyone but its creator and admins."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from bpmos import access
from bpmos.celery import BEAT_SCHEDULE
from bpmos.celery import app as celery_app
from bpmos.roles import Role
from compliance import tasks_reports
from compliance.models import JobStatus, ReportJob
from compliance.reports import base, jobs
from compliance.reports.csvout import report_csv
from elog.models import AuditRecord
from tests.conftest import api_as as api
from tests.support import assert_envelope
from tests.test_compliance_report_pdf import BrokenReport, SampleReport

pytestmark = pytest.mark.django_db

SPAN = {"from": "2026-11-01", "to": "2026-11-07"}
JOB_KEYS = {
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
}


class WatchedReport(SampleReport):
    """Notes its job's progress, as a poller would see it, every 500 rows."""

    id = "test-watched"
    seen: list[tuple] = []

    def rows(self, params):
        for n, row in enumerate(super().rows(params)):
            if n % 500 == 0:
                job = ReportJob.objects.get(report_id=self.id)
                self.seen.append(
                    (job.status, job.rows_done, job.rows_total, job.progress)
                )
            yield row


class CrashingReport(SampleReport):
    """Fails as our own bug would."""

    id = "test-crashing"

    def rows(self, params):
        raise RuntimeError("secret internals at 0xdeadbeef")


@pytest.fixture(autouse=True)
def reports(monkeypatch, settings, tmp_path):
    """The test reports registered (readers may open them); files in tmp_path."""
    settings.BPMOS_REPORT_DIR = tmp_path / "reports"
    base.report_list()
    WatchedReport.seen = []
    for report in (SampleReport(), BrokenReport(), WatchedReport(), CrashingReport()):
        monkeypatch.setitem(base.REGISTRY, report.id, report)
        monkeypatch.setitem(access.ACTIONS, report.action, access.REPORT_READERS)
    return settings.BPMOS_REPORT_DIR


@pytest.fixture
def eager():
    """Celery runs tasks in the caller: the job queued after commit is rendered
    before the request answers."""
    before = celery_app.conf.task_always_eager
    celery_app.conf.CELERY_TASK_ALWAYS_EAGER = True
    yield
    celery_app.conf.CELERY_TASK_ALWAYS_EAGER = before


def create(report_id: str, fmt: str, user, **query) -> ReportJob:
    report = base.report_get(report_id)
    return jobs.job_create(
        report=report, params=report.parse(query), fmt=fmt, user=user
    )


def pdf_text(body: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(body)).pages)


# --- the runner -----------------------------------------------------------------


def test_a_csv_job_renders_its_file_with_progress_moving(make_user, reports):
    user = make_user(Role.PLANNER)
    job = create("test-watched", "csv", user, rows="1200", **SPAN)
    assert (job.status, job.progress, job.rows_total) == (JobStatus.QUEUED, 0, None)
    assert job.params == {**SPAN, "rows": 1200, "station": None}

    done = jobs.job_run(job_id=job.pk)

    assert WatchedReport.seen == [
        (JobStatus.RUNNING, 0, 1200, 0),
        (JobStatus.RUNNING, 500, 1200, 41),
        (JobStatus.RUNNING, 1000, 1200, 83),
    ]
    report = base.report_get("test-watched")
    expected = b"".join(report_csv(report, report.parse({**SPAN, "rows": "1200"})))
    body = (reports / f"{job.pk}.csv").read_bytes()
    assert body == expected
    assert (done.status, done.progress, done.rows_done, done.rows_total) == (
        JobStatus.DONE,
        100,
        1200,
        1200,
    )
    assert done.file_path == str(reports / f"{job.pk}.csv")
    assert done.file_name == "test-watched_2026-11-01_2026-11-07.csv"
    assert done.content_type == "text/csv; charset=utf-8"
    assert done.checksum == hashlib.sha256(body).hexdigest()
    assert done.size == len(body)
    assert done.error == ""
    assert done.started_at <= done.finished_at
    assert sorted(os.listdir(reports)) == [f"{job.pk}.csv"]


def test_a_pdf_job_renders_the_pdf(make_user, reports):
    job = create("test-sample", "pdf", make_user(Role.AUDITOR), rows="40", **SPAN)
    done = jobs.job_run(job_id=job.pk)
    assert (done.status, done.rows_done, done.rows_total) == (JobStatus.DONE, 40, 40)
    body = (reports / f"{job.pk}.pdf").read_bytes()
    assert done.checksum == hashlib.sha256(body).hexdigest()
    assert done.content_type == "application/pdf"
    text = pdf_text(body)
    assert "Sample <packs> & co" in text
    assert "SN-0039" in text


def test_a_job_taken_already_is_not_run_again(make_user, reports):
    job = create("test-sample", "csv", make_user(Role.PLANNER), **SPAN)
    first = jobs.job_run(job_id=job.pk)
    again = jobs.job_run(job_id=job.pk)
    assert again.status == JobStatus.DONE
    assert again.finished_at == first.finished_at
    assert tasks_reports.report_job_run_task.apply(args=[str(job.pk)]).get() == "done"
    assert tasks_reports.report_job_run_task.apply(args=[str(uuid.uuid4())]).get() == (
        "missing"
    )


def test_a_failed_job_keeps_its_error_and_leaves_no_file(make_user, reports):
    job = create("test-broken", "csv", make_user(Role.PLANNER), rows="5", **SPAN)
    failed = jobs.job_run(job_id=job.pk)
    assert failed.status == JobStatus.FAILED
    assert failed.error == "The ledger is being rebuilt; try again later."
    assert failed.file_path == ""
    assert failed.finished_at is not None
    assert list(reports.iterdir()) == []


def test_an_unexpected_failure_is_logged_not_shown(make_user, reports):
    job = create("test-crashing", "pdf", make_user(Role.PLANNER), **SPAN)
    failed = jobs.job_run(job_id=job.pk)
    assert failed.status == JobStatus.FAILED
    assert failed.error == (
        "The report could not be rendered (RuntimeError); the error has been logged."
    )


def test_a_job_the_prune_failed_meanwhile_stays_failed(make_user, reports):
    job = create("test-watched", "csv", make_user(Role.PLANNER), rows="600", **SPAN)

    class FailedMidway(WatchedReport):
        def rows(self, params):
            for n, row in enumerate(super().rows(params)):
                if n == 100:  # the prune judged it stalled
                    ReportJob.objects.filter(pk=job.pk).update(
                        status=JobStatus.FAILED, error="stalled"
                    )
                yield row

    base.REGISTRY["test-watched"] = FailedMidway()
    after = jobs.job_run(job_id=job.pk)
    assert (after.status, after.error, after.progress) == (
        JobStatus.FAILED,
        "stalled",
        0,
    )


def test_a_creator_who_may_no_longer_open_the_report_gets_a_failed_job(make_user):
    user = make_user(Role.PLANNER)
    job = create("test-sample", "csv", user, **SPAN)
    user.role = Role.OPERATOR
    user.save(update_fields=["role"])
    failed = jobs.job_run(job_id=job.pk)
    assert (failed.status, failed.error) == (
        JobStatus.FAILED,
        "Your role may no longer open this report.",
    )


def test_the_prune_deletes_old_jobs_and_files_and_fails_stalled_ones(
    make_user, reports, settings
):
    settings.BPMOS_REPORT_JOB_KEEP_HOURS = 24
    user = make_user(Role.PLANNER)
    old = jobs.job_run(job_id=create("test-sample", "csv", user, **SPAN).pk)
    fresh = jobs.job_run(job_id=create("test-sample", "csv", user, **SPAN).pk)
    stalled = create("test-sample", "csv", user, **SPAN)
    now = timezone.now()
    ReportJob.objects.filter(pk=old.pk).update(created_at=now - timedelta(hours=25))
    ReportJob.objects.filter(pk=stalled.pk).update(
        status=JobStatus.RUNNING, started_at=now - timedelta(hours=2)
    )
    leftover = reports / f"{uuid.uuid4()}.csv.part"  # a killed worker's
    leftover.write_bytes(b"half")
    foreign = reports / "notes.txt"  # not a job's: never touched
    foreign.write_bytes(b"mine")
    day_old = (now - timedelta(hours=25)).timestamp()
    for path in (leftover, foreign):
        os.utime(path, (day_old, day_old))

    assert tasks_reports.report_jobs_prune_task.apply().get() == 1

    assert set(ReportJob.objects.values_list("pk", flat=True)) == {
        fresh.pk,
        stalled.pk,
    }
    assert sorted(os.listdir(reports)) == sorted([f"{fresh.pk}.csv", "notes.txt"])
    stalled.refresh_from_db()
    assert stalled.status == JobStatus.FAILED
    assert stalled.error.startswith("The worker stopped")
    entry = BEAT_SCHEDULE["report-jobs-prune"]
    assert entry["task"] == "compliance.tasks_reports.report_jobs_prune_task"
    assert entry["options"]["expires"] < entry["schedule"]


# --- the API ----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_job_is_asked_for_polled_and_fetched_like_the_sync_download(eager, make_user):
    planner = make_user(Role.PLANNER)
    client = api(planner)
    query = {**SPAN, "rows": 7}
    response = client.post(
        "/api/reports/test-sample/jobs",
        {"format": "csv", "parameters": query},
        format="json",
    )
    assert response.status_code == 202, response.json()
    body = response.json()
    assert set(body) == JOB_KEYS
    job_id = body["jobId"]
    assert response["Location"] == f"/api/reports/jobs/{job_id}"
    assert body["reportId"] == "test-sample"
    assert body["parameters"] == {**SPAN, "rows": 7, "station": None}
    assert body["format"] == "csv"
    assert body["downloadUrl"] is None

    polled = client.get(response["Location"]).json()
    assert polled["status"] == "done"
    assert polled["progress"] == 100
    assert (polled["rowsDone"], polled["rowsTotal"]) == (7, 7)
    assert polled["error"] == ""
    assert polled["downloadUrl"] == f"/api/reports/jobs/{job_id}/file"

    file = client.get(polled["downloadUrl"], HTTP_ACCEPT="text/csv")
    assert file.status_code == 200
    content = b"".join(file.streaming_content)
    assert file["X-Checksum-SHA256"] == hashlib.sha256(content).hexdigest()
    digest = base64.b64encode(hashlib.sha256(content).digest()).decode()
    assert file["Repr-Digest"] == f"sha-256=:{digest}:"
    assert file["Content-Disposition"] == (
        'attachment; filename="test-sample_2026-11-01_2026-11-07.csv"'
    )
    sync = client.get("/api/reports/test-sample/download", {"format": "csv", **query})
    assert sync.status_code == 200
    assert content == b"".join(sync.streaming_content)
    audit = AuditRecord.objects.get(action="report_job.created")
    assert audit.actor_id == planner.pk
    assert audit.target_id == job_id


@pytest.mark.django_db(transaction=True)
def test_a_download_above_the_sync_limit_becomes_a_job(eager, make_user, settings):
    settings.BPMOS_REPORT_SYNC_ROWS = 5
    client = api(make_user(Role.SUPERVISOR))
    response = client.get(
        "/api/reports/test-sample/download", {"format": "pdf", "rows": "6", **SPAN}
    )
    assert response.status_code == 202, response.content
    job = response.json()
    assert response["Location"] == f"/api/reports/jobs/{job['jobId']}"
    polled = client.get(response["Location"]).json()
    assert polled["status"] == "done"
    file = client.get(polled["downloadUrl"])
    content = b"".join(file.streaming_content)
    assert file["Content-Type"] == "application/pdf"
    assert "SN-0005" in pdf_text(content)
    # At the limit it is still served at once.
    at_limit = client.get(
        "/api/reports/test-sample/download", {"format": "csv", "rows": "5", **SPAN}
    )
    assert at_limit.status_code == 200
    assert ReportJob.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_failed_job_shows_its_error(eager, make_user):
    client = api(make_user(Role.PLANT_HEAD))
    response = client.post(
        "/api/reports/test-broken/jobs", {"format": "pdf"}, format="json"
    )
    assert response.status_code == 202
    polled = client.get(response["Location"]).json()
    assert polled["status"] == "failed"
    assert polled["error"] == "The ledger is being rebuilt; try again later."
    assert polled["downloadUrl"] is None
    assert_envelope(client.get(f"{response['Location']}/file"), 409, "job_not_done")


def test_a_job_is_its_creators_and_the_admins(make_user, reports):
    owner = make_user(Role.PLANNER)
    job = jobs.job_run(job_id=create("test-sample", "csv", owner, **SPAN).pk)
    url = f"/api/reports/jobs/{job.pk}"
    for other in (make_user(Role.PLANNER), make_user(Role.AUDITOR)):
        assert_envelope(api(other).get(url), 404, "not_found")
        assert_envelope(api(other).get(f"{url}/file"), 404, "not_found")
    for reader in (owner, make_user(Role.ADMIN)):
        assert api(reader).get(url).json()["status"] == "done"
        assert api(reader).get(f"{url}/file").status_code == 200
    missing = f"/api/reports/jobs/{uuid.uuid4()}"
    assert_envelope(api(owner).get(missing), 404, "not_found")
    assert_envelope(api(owner).get("/api/reports/jobs/not-a-uuid"), 404, "not_found")


def test_the_file_is_409_while_the_job_is_queued(make_user):
    owner = make_user(Role.PLANNER)
    job = create("test-sample", "csv", owner, **SPAN)
    body = assert_envelope(
        api(owner).get(f"/api/reports/jobs/{job.pk}/file"), 409, "job_not_done"
    )
    assert body["details"] == {"status": "queued", "progress": 0}


def test_asking_for_a_job_refuses_bad_input_and_roles(make_user):
    planner = api(make_user(Role.PLANNER))
    url = "/api/reports/test-sample/jobs"
    for body, field in (
        ({}, "format"),
        ({"format": "xlsx"}, "format"),
        ({"format": None}, "format"),
        ({"format": "csv", "parameters": "rows=5"}, "parameters"),
        ({"format": "csv", "parameters": {"rows": [5]}}, "parameters"),
        ({"format": "csv", "parameters": {"rows": {"n": 5}}}, "parameters"),
        ({"format": "csv", "parameters": {"rows": "many"}}, "rows"),
        ({"format": "csv", "parameters": {"rows": 10**40}}, "rows"),
        ({"format": "csv", "parameters": {"from": "2026-13-01"}}, "from"),
        ({"format": "csv", "parameters": {"station": "<b>"}}, "station"),
    ):
        response = planner.post(url, body, format="json")
        details = assert_envelope(response, 400, "validation_error")["details"]
        assert field in details, (body, details)
    assert_envelope(
        planner.post(url, "not json", content_type="application/json"),
        400,
        "parse_error",
    )
    assert_envelope(
        planner.post("/api/reports/nope/jobs", {"format": "csv"}, format="json"),
        404,
        "not_found",
    )
    operator = api(make_user(Role.OPERATOR))
    assert_envelope(
        operator.post(url, {"format": "csv"}, format="json"), 403, "permission_denied"
    )
    assert ReportJob.objects.count() == 0
    assert not AuditRecord.objects.filter(action="report_job.created").exists()


def test_a_report_a_role_may_not_open_is_403_for_jobs_too(make_user):
    supervisor = api(make_user(Role.SUPERVISOR))
    response = supervisor.post(
        "/api/reports/audit-extract/jobs", {"format": "csv"}, format="json"
    )
    assert_envelope(response, 403, "permission_denied")
    response = supervisor.get("/api/reports/audit-extract/download", {"format": "csv"})
    assert_envelope(response, 403, "permission_denied")
    assert ReportJob.objects.count() == 0


# --- the admin --------------------------------------------------------------------

CHANGELIST = "admin:compliance_reportjob_changelist"


@pytest.mark.parametrize("role", [Role.ADMIN, Role.AUDITOR])
def test_the_admin_lists_jobs_read_only(client, make_user, role):
    job = create("test-broken", "csv", make_user(Role.PLANNER), **SPAN)
    jobs.job_run(job_id=job.pk)
    client.force_login(make_user(role, is_staff=True))
    response = client.get(reverse(CHANGELIST), {"status__exact": "failed"})
    assert response.status_code == 200
    assert [row.pk for row in response.context["cl"].result_list] == [job.pk]
    detail = client.get(reverse("admin:compliance_reportjob_change", args=[job.pk]))
    assert detail.status_code == 200
    assert "The ledger is being rebuilt" in detail.content.decode()


def test_nobody_adds_changes_or_deletes_a_job_in_the_admin(client, make_user):
    job = create("test-sample", "csv", make_user(Role.PLANNER), **SPAN)
    client.force_login(make_user(Role.ADMIN, is_staff=True, is_superuser=True))
    assert client.get(reverse("admin:compliance_reportjob_add")).status_code == 403
    delete = reverse("admin:compliance_reportjob_delete", args=[job.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    change = reverse("admin:compliance_reportjob_change", args=[job.pk])
    assert client.post(change, {"status": "done"}).status_code == 403
    assert ReportJob.objects.get().status == JobStatus.QUEUED
