"""The dashboards' cached read models (``bpmos.readcache``): the summary, the
distributions, and each role's cards and attention list, computed once and
served from the cache until something they are computed from changes.

Invalidation (docs/dashboards.md, "Read models"), two ways, so that no write
the domain announces is missed:

* every ``post_save`` / ``post_delete`` of the models a read model names
  (``ReadModel.connect``: services' ORM writes, admin edits, beat's OEE
  snapshots and compliance scores);
* every domain event of a family those models belong to (``on_event``,
  registered with ``bpmos.events.event_listen``: it runs in the publisher's
  transaction), which also covers the services' ``queryset.update()`` writes
  that no signal reports (an alarm acknowledged, a return approved). One
  batch per transaction: each read model invalidated once at once and once
  on commit.

Time: a payload whose figures depend on the clock is keyed by its window
(the plant's current shift, the UTC day, the ISO week) and stored only until
the earliest of them ends (``readcache.MAX_AGE`` at most). The current shift
itself comes from ``CALENDAR``, checked against the clock on every read.

Figures that change without any event or signal stay out of the cache and
are read per request (each one cheap query, or none): the connectors'
communication state (the collectors write it in bulk), the audit chain's
stored verification (already a cache entry) and the lines' live status (the
lines' own read model, ``lines.readmodels.LINE_STATUS``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, transaction

from bpmos.readcache import ReadModel
from bpmos.roles import Role

# The models behind each figure or attention kind (app_label.Model).
WORK = ("runbooks.WorkOrder", "runbooks.WorkOrderStage", "runbooks.StageAssignment")
RUNBOOKS = ("runbooks.Runbook", "runbooks.Stage")
GATES = ("runbooks.Gate", *RUNBOOKS, *WORK)
ITEMS = ("inventory.Item",)
PASSPORTS = ("passports.Passport",)
LEDGER = ("passports.PassportEvent",)
LINES = ("lines.Line",)
SNAPSHOTS = ("lines.OEESnapshot",)
ALARMS = ("scada.AlarmEvent",)
EXCEPTIONS = ("exceptions.PlantException",)
RETURNS = ("compliance.ComplianceReturn",)
SCORES = ("compliance.ScoreSnapshot",)
USERS = ("accounts.User",)

# The domain events' families and the models their changes write.
EVENT_MODELS: dict[str, tuple[str, ...]] = {
    "workorder": WORK,
    "stage": WORK,
    "gate": GATES,
    "item": ITEMS,
    "passport": PASSPORTS + LEDGER,
    "line": LINES,
    "alarm": ALARMS,
    "exception": EXCEPTIONS,
    "compliance_return": RETURNS,
    "user": USERS,
}

# The shift running now on the first active line (``current_shift``).
CALENDAR = ReadModel("dashboard-calendar", LINES)
SUMMARY = ReadModel(
    "dashboard-summary", (*WORK, *ITEMS, *PASSPORTS, *LEDGER, *LINES, *SNAPSHOTS)
)
DISTRIBUTIONS = ReadModel(
    "dashboard-distributions", (*RUNBOOKS, *WORK, *ITEMS, *PASSPORTS)
)
# Each role's cards, without the ones read per request (module docstring).
ROLE_SUMMARY: dict[str, ReadModel] = {
    Role.OPERATOR: ReadModel("dashboard-operator-summary", (*LINES, *WORK, *ALARMS)),
    Role.PLANNER: ReadModel("dashboard-planner-summary", (*RUNBOOKS, *WORK)),
    Role.SUPERVISOR: ReadModel(
        "dashboard-supervisor-summary",
        (*GATES, *EXCEPTIONS, *ITEMS, *PASSPORTS, *RETURNS),
    ),
    Role.PLANT_HEAD: ReadModel(
        "dashboard-plant-head-summary", (*RUNBOOKS, *WORK, *EXCEPTIONS)
    ),
    Role.AUDITOR: ReadModel("dashboard-auditor-summary", SCORES),
    Role.ADMIN: ReadModel("dashboard-admin-summary", (*USERS, *SCORES)),
}
# Each role's attention kinds, without the ones read per request.
ATTENTION: dict[str, ReadModel] = {
    Role.OPERATOR: ReadModel("dashboard-operator-attention", (*WORK, *ALARMS)),
    Role.PLANNER: ReadModel("dashboard-planner-attention", WORK),
    Role.SUPERVISOR: ReadModel(
        "dashboard-supervisor-attention",
        (*GATES, *EXCEPTIONS, *ITEMS, *PASSPORTS, *RETURNS),
    ),
    Role.PLANT_HEAD: ReadModel("dashboard-plant-head-attention", EXCEPTIONS),
}

ALL: tuple[ReadModel, ...] = (
    CALENDAR,
    SUMMARY,
    DISTRIBUTIONS,
    *ROLE_SUMMARY.values(),
    *ATTENTION.values(),
)


def read_models_of(event_name: str) -> list[ReadModel]:
    """The read models a domain event named ``event_name`` may have changed."""
    family = event_name.partition(".")[0]
    models = set(EVENT_MODELS.get(family, ()))
    if not models:
        return []
    return [model for model in ALL if models & set(model.models)]


@dataclass
class _Batch:
    """The read models one transaction changed; invalidated again on commit."""

    models: dict[str, ReadModel] = field(default_factory=dict)

    def flush(self) -> None:
        _local.batch = None
        for model in self.models.values():
            model.invalidate()


_local = threading.local()


def _current_batch() -> _Batch:
    batch = getattr(_local, "batch", None)
    if batch is not None and any(
        entry[1] == batch.flush for entry in connection.run_on_commit
    ):
        return batch
    batch = _local.batch = _Batch()
    transaction.on_commit(batch.flush)
    return batch


def on_event(event) -> None:
    """``bpmos.events`` listener: drop the payloads ``event`` may have changed,
    now (the writer's own next read) and once more when its transaction
    commits (a reader who computed from the state before it)."""
    models = read_models_of(event.name)
    if not models:
        return
    batch = _current_batch() if connection.in_atomic_block else None
    for model in models:
        if batch is None:
            model.invalidate()
        elif model.name not in batch.models:
            model.invalidate()
            batch.models[model.name] = model


def install() -> None:
    """Connect the read models to their models' writes and to the domain
    events (bpmos/apps.py calls this once, after the app registry is ready)."""
    from bpmos.events.services import event_listen

    for model in ALL:
        model.connect()
    event_listen(on_event)


def in_window(start: datetime, end: datetime, now: datetime) -> bool:
    return start <= now < end
