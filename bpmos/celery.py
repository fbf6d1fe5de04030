"""The Celery app and the whole beat schedule, in one place."""

import os

from celery import Celery
from celery.signals import worker_process_shutdown
from kombu.transport import TRANSPORT_ALIASES

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bpmos.settings")

# "filesystem://" (the embedded default's broker) means our subclass of kombu's
# filesystem transport, whose messages appear whole (bpmos/fsbroker.py). An
# alias, not CELERY_BROKER_TRANSPORT: that would override any other broker URL.
TRANSPORT_ALIASES["filesystem"] = "bpmos.fsbroker:Transport"

app = Celery("bpmos")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# How often the audit chain's head is anchored (read here, not from Django's
# settings: this module is imported before they are).
_ANCHOR_SECONDS = float(os.environ.get("BPMOS_AUDIT_ANCHOR_SECONDS") or 900)
# How often the passport ledgers' heads are checkpointed into a Merkle root
# (passports/checkpoints.py).
_CHECKPOINT_SECONDS = float(os.environ.get("BPMOS_LEDGER_CHECKPOINT_SECONDS") or 900)
# Staged audit records are chained by their writer right after commit; this
# sweep chains what a crash or a lock timeout left (elog.audit.seal_pending).
_SEAL_SECONDS = float(os.environ.get("BPMOS_AUDIT_SEAL_SECONDS") or 10)

# Every periodic job of the plant. ``expires`` is below the interval so a backlog
# after an outage never runs the same job many times over.
BEAT_SCHEDULE = {
    "events-redeliver": {
        "task": "bpmos.events.tasks.events_redeliver_task",
        "schedule": 5.0,
        "options": {"expires": 4.0},
    },
    "events-prune": {
        "task": "bpmos.events.tasks.events_prune_task",
        "schedule": 3600.0,
        "options": {"expires": 3000.0},
    },
    # Idempotency keys past BPMOS_IDEMPOTENCY_KEY_HOURS (docs/api.md).
    # The kept row counts' deltas folded into one row each (bpmos/rowcounts).
    "rowcounts-compact": {
        "task": "bpmos.rowcounts.tasks.rowcounts_compact_task",
        "schedule": 60.0,
        "options": {"expires": 50.0},
    },
    "idempotency-keys-prune": {
        "task": "bpmos.idempotency.tasks.idempotency_keys_prune_task",
        "schedule": 3600.0,
        "options": {"expires": 3000.0},
    },
    "exceptions-escalate": {
        "task": "exceptions.tasks.exceptions_escalate_task",
        "schedule": 60.0,
        "options": {"expires": 50.0},
    },
    "oee-snapshots-refresh": {
        "task": "lines.tasks.oee_snapshots_refresh_task",
        "schedule": 60.0,
        "options": {"expires": 50.0},
    },
    "oee-hours-refresh": {
        "task": "lines.tasks.machine_hours_refresh_task",
        "schedule": 60.0,
        "options": {"expires": 50.0},
    },
    # Readings' month partitions ahead, and retention (docs/lines.md "Partitions").
    "readings-partitions-maintain": {
        "task": "lines.tasks.readings_partitions_maintain_task",
        "schedule": 3600.0,
        "options": {"expires": 3000.0},
    },
    "lims-fetch": {
        "task": "scada.tasks_lims.lims_fetch_due_task",
        "schedule": 60.0,
        "options": {"expires": 50.0},
    },
    # SCADA alarms: on/off-delay timers, shelf expiry, escalation, floods.
    "alerts-process": {
        "task": "scada.tasks_alarms.alerts_process_task",
        "schedule": 5.0,
        "options": {"expires": 4.0},
    },
    "scada-work-orders-redeliver": {
        "task": "scada.tasks_maintenance.work_orders_redeliver_task",
        "schedule": 60.0,
        "options": {"expires": 50.0},
    },
    "scada-work-orders-status-refresh": {
        "task": "scada.tasks_maintenance.work_orders_status_refresh_task",
        "schedule": 300.0,
        "options": {"expires": 250.0},
    },
    # Stands in for the collector process when it does not run (scada.tasks_collector).
    "scada-connectors-poll": {
        "task": "scada.tasks_collector.scada_connectors_poll_task",
        "schedule": 5.0,
        "options": {"expires": 4.0},
    },
    # The Aadhaar Ready % (compliance.score): one scan of every passport.
    "compliance-score-refresh": {
        "task": "compliance.tasks_score.compliance_score_refresh_task",
        "schedule": 600.0,
        "options": {"expires": 540.0},
    },
    # Report jobs' files and rows past BPMOS_REPORT_JOB_KEEP_HOURS; stalled jobs.
    "report-jobs-prune": {
        "task": "compliance.tasks_reports.report_jobs_prune_task",
        "schedule": 3600.0,
        "options": {"expires": 3000.0},
    },
    # The audit chain's stored verification, shown on the auditor's dashboard.
    "audit-chain-status-refresh": {
        "task": "elog.tasks_chain.audit_chain_status_refresh_task",
        "schedule": 900.0,
        "options": {"expires": 800.0},
    },
    # The audit chain's head, written outside the database (elog/anchors.py).
    "audit-anchor-write": {
        "task": "elog.tasks_chain.audit_anchor_write_task",
        "schedule": _ANCHOR_SECONDS,
        "options": {"expires": _ANCHOR_SECONDS * 0.9},
    },
    # The passport ledgers' periodic Merkle root (passports/checkpoints.py).
    "ledger-checkpoint": {
        "task": "passports.tasks.ledger_checkpoint_task",
        "schedule": _CHECKPOINT_SECONDS,
        "options": {"expires": _CHECKPOINT_SECONDS * 0.9},
    },
    "audit-pending-seal": {
        "task": "elog.tasks_chain.audit_pending_seal_task",
        "schedule": _SEAL_SECONDS,
        "options": {"expires": _SEAL_SECONDS * 0.9},
    },
}
app.conf.beat_schedule = BEAT_SCHEDULE


@worker_process_shutdown.connect
def _background_workers_shutdown(**_kwargs) -> None:
    """A prefork pool process leaves with ``os._exit``, past ``atexit``: its
    background threads (bpmos.background) hand over what they hold and close
    their database connections here."""
    from bpmos import background

    background.shutdown_all()
