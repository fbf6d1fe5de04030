"""Report jobs: a long report rendered by a Celery worker into a file, with
progress a client polls (docs/compliance.md, "Report downloads, PDFs and jobs").

A job moves ``queued`` → ``running`` → ``done`` or ``failed`` (with the
error). It stores the report's parameters as parsed and echoed back to JSON
(``Report.echo``), so the worker renders exactly what was asked even if it
runs after midnight, when "the last 30 days" would mean other days. While it
renders, ``rows_done``/``rows_total``/``progress`` move every
``PROGRESS_EVERY`` rows. The file lives under ``BPMOS_REPORT_DIR`` and, with
the job's row, is deleted ``BPMOS_REPORT_JOB_KEEP_HOURS`` after the job was
asked for (``jobs_prune``, on the beat).

A job is its creator's: only they and admins see it or fetch its file; to
anyone else it does not exist (404).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from bpmos import access
from bpmos.errors import Conflict, DomainError, InvalidInput, NotFound
from bpmos.roles import Role
from compliance.models import JobStatus, ReportJob
from compliance.reports.base import Report, report_get

log = logging.getLogger(__name__)

FORMATS = ("csv", "pdf")
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "pdf": "application/pdf"}
# Progress is written to the job's row every this many rows.
PROGRESS_EVERY = 500
# A job still running this long after it started lost its worker (a restart, a
# kill past the task's time limit): the prune marks it failed.
STALLED_AFTER = timedelta(hours=1)
# The files jobs write in BPMOS_REPORT_DIR (and their temporary names).
_JOB_FILE = re.compile(
    r"^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}\.(csv|pdf)(\.part)?$"
)


def format_check(report: Report, fmt: Any) -> str:
    """``fmt`` if ``report`` comes in it; 400 naming ``format`` otherwise."""
    offered = [f for f in FORMATS if f in report.formats]
    if not isinstance(fmt, str) or fmt not in offered:
        raise InvalidInput(
            f"format: one of {', '.join(offered)}.",
            code="validation_error",
            details={"format": [f"One of: {', '.join(offered)}."]},
        )
    return fmt


def job_create(*, report: Report, params: dict[str, Any], fmt: str, user) -> ReportJob:
    """Ask for ``report`` with parsed ``params`` as a ``fmt`` file, rendered by
    a worker once this commits (``compliance.tasks_reports``)."""
    from elog import audit

    format_check(report, fmt)
    with transaction.atomic():
        job = ReportJob.objects.create(
            report_id=report.id,
            params=report.echo(params),
            format=fmt,
            created_by=user,
        )
        audit.record(
            actor=user,
            action="report_job.created",
            target=job,
            after={"reportId": report.id, "format": fmt, "parameters": job.params},
        )
        _run_after_commit(job.pk)
    return job


def _run_after_commit(job_id: UUID) -> None:
    """Queue the rendering once the job is committed (a broker that is down
    leaves the job queued; it says so to whoever polls it)."""

    def send() -> None:
        from compliance.tasks_reports import report_job_run_task

        try:
            report_job_run_task.apply_async(args=[str(job_id)])
        except Exception:
            log.warning("report_job_not_queued", exc_info=True)

    transaction.on_commit(send)


def job_get(*, job_id: UUID | str, user) -> ReportJob:
    """The job, for its creator or an admin; NotFound for anyone else."""
    job = ReportJob.objects.filter(pk=job_id).select_related("created_by").first()
    if job is None or not (
        job.created_by_id == user.pk or getattr(user, "role", None) == Role.ADMIN
    ):
        raise NotFound("There is no such report job.")
    return job


def job_file(*, job_id: UUID | str, user) -> tuple[ReportJob, Path]:
    """The finished job and its file; 409 while it is not done."""
    job = job_get(job_id=job_id, user=user)
    if job.status != JobStatus.DONE:
        raise Conflict(
            f"The report job is {job.status}; its file is ready when it is done.",
            code="job_not_done",
            details={"status": job.status, "progress": job.progress},
        )
    path = Path(job.file_path)
    if not path.is_file():
        raise NotFound("The report's file has been deleted; ask for it again.")
    return job, path


# --- running ----------------------------------------------------------------------


def _update(job_id: UUID | str, **fields: Any) -> None:
    """Plain UPDATEs in autocommit, so whoever polls sees each step at once;
    only while the job is running (the prune may have failed it meanwhile)."""
    ReportJob.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(**fields)


class _Ticker:
    """Writes the job's progress every ``PROGRESS_EVERY`` rows."""

    def __init__(self, job_id: UUID | str, total: int):
        self.job_id = job_id
        self.total = total

    def __call__(self, done: int, total: int | None = None) -> None:
        total = self.total if total is None else total
        self.total = total
        percent = 99 if total <= 0 else min(99, done * 100 // total)
        _update(self.job_id, rows_done=done, rows_total=total, progress=percent)


class _CountedReport:
    """``report`` whose ``rows`` tell the ticker how far they are (the CSV
    writer reads the rows through it)."""

    def __init__(self, report: Report, ticker: _Ticker):
        self._report = report
        self._ticker = ticker

    def __getattr__(self, name: str) -> Any:
        return getattr(self._report, name)

    def rows(self, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        done = 0
        for row in self._report.rows(params):
            yield row
            done += 1
            if done % PROGRESS_EVERY == 0:
                self._ticker(done, max(done, self._ticker.total))
        self._ticker(done, done)


def _write(path: Path, chunks) -> tuple[str, int]:
    """Write ``chunks`` to ``path`` (through a temporary name, so a half
    written file is never served); its SHA-256 and size."""
    digest = hashlib.sha256()
    size = 0
    partial = path.with_name(path.name + ".part")
    try:
        with partial.open("wb") as out:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return digest.hexdigest(), size


def _render(job: ReportJob, report: Report, params: dict[str, Any]) -> dict:
    from compliance.reports import csvout, pdf

    total = report.count(params)
    if job.format == "pdf":
        total = min(total, pdf.PDF_ROW_LIMIT)
    _update(job.pk, rows_total=total)
    ticker = _Ticker(job.pk, total)
    directory = Path(settings.BPMOS_REPORT_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{job.pk}.{job.format}"
    if job.format == "pdf":
        body = pdf.report_pdf(report, params, progress=ticker)
        checksum, size = _write(path, [body])
    else:
        chunks = csvout.report_csv(_CountedReport(report, ticker), params)
        checksum, size = _write(path, chunks)
    return {
        "file_path": str(path),
        "file_name": report.filename(params, job.format),
        "content_type": CONTENT_TYPES[job.format],
        "checksum": checksum,
        "size": size,
        "rows_done": ticker.total,
        "rows_total": ticker.total,
    }


def job_run(*, job_id: UUID | str) -> ReportJob:
    """Render a queued job to its file; the worker's task calls this. A job
    already taken (a redelivered message) is left alone: the conditional
    UPDATE lets exactly one worker take it."""
    taken = ReportJob.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=timezone.now(), progress=0, rows_done=0
    )
    job = ReportJob.objects.select_related("created_by").filter(pk=job_id).first()
    if job is None:
        raise NotFound("There is no such report job.")
    if not taken:
        return job
    try:
        report = report_get(job.report_id)
        # The creator's role may have changed since they asked.
        if not access.allows(access.ACTIONS.get(report.action), job.created_by.role):
            raise DomainError("Your role may no longer open this report.")
        params = report.parse(job.params)
        done = _render(job, report, params)
    except Exception as exc:
        if isinstance(exc, DomainError):
            error = exc.message
        else:  # our bug or the machine's: the details go to the log, not the client
            log.exception("report_job_failed", extra={"job_id": str(job.pk)})
            error = (
                f"The report could not be rendered ({type(exc).__name__}); "
                "the error has been logged."
            )
        _update(
            job.pk, status=JobStatus.FAILED, error=error, finished_at=timezone.now()
        )
    else:
        _update(
            job.pk,
            status=JobStatus.DONE,
            progress=100,
            finished_at=timezone.now(),
            **done,
        )
    job = ReportJob.objects.filter(pk=job.pk).first()
    if job is None:  # pruned while it ran
        raise NotFound("There is no such report job.")
    return job


# --- pruning ----------------------------------------------------------------------


def jobs_prune(*, now=None) -> int:
    """Delete jobs (rows and files) asked for more than
    ``BPMOS_REPORT_JOB_KEEP_HOURS`` ago, and any file left in the directory
    that old (a worker killed mid-write; only files named as jobs name
    theirs); mark jobs running for longer than
    ``STALLED_AFTER`` failed. Returns how many jobs were deleted."""
    now = now or timezone.now()
    _update_stalled(now)
    cutoff = now - timedelta(hours=settings.BPMOS_REPORT_JOB_KEEP_HOURS)
    removed = 0
    while True:
        batch = list(
            ReportJob.objects.filter(created_at__lt=cutoff)
            .order_by("created_at")
            .values_list("pk", "file_path")[:500]
        )
        if not batch:
            break
        for _, file_path in batch:
            if file_path:
                Path(file_path).unlink(missing_ok=True)
        ReportJob.objects.filter(pk__in=[pk for pk, _ in batch]).delete()
        removed += len(batch)
    directory = Path(settings.BPMOS_REPORT_DIR)
    if directory.is_dir():
        for path in directory.iterdir():
            if not _JOB_FILE.match(path.name):  # not ours: never touched
                continue
            try:
                old = path.is_file() and path.stat().st_mtime < cutoff.timestamp()
            except FileNotFoundError:  # another prune took it
                continue
            if old:
                path.unlink(missing_ok=True)
    return removed


def _update_stalled(now) -> None:
    ReportJob.objects.filter(
        status=JobStatus.RUNNING, started_at__lt=now - STALLED_AFTER
    ).update(
        status=JobStatus.FAILED,
        finished_at=now,
        error="The worker stopped before the report was finished; ask for it again.",
    )
