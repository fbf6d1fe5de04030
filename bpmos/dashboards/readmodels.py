"""The dashboards' cached read models (``bpmos.readcache``): the summary, the
distributions, and each role's cards and attention list, computed once and
served from the cache until something they are computed from changes.

Invalidation (docs/dashboards.md, "Read models"), two ways, so that no write
the domain announces is missed:

* every ``post_save`` / ``post_delete`` of the models a read model names
  (services' ORM writes, admin edits, beat's OEE snapshots and compliance
  scores);
* every domain event of a family those models belong to (``on_event``,
  registered with ``bpmos.events.event_listen``: it runs in the publisher's
  transaction), which also covers the services' ``queryset.update()`` writes
  that no signal reports (a return approved). A write in autocommit drops
  the payloads at once (one cache round trip); a transaction drops them once
  on commit (``changed``: once per read model, however many rows it wrote;
  one round trip), none on rollback.

Time: a payload whose figures depend on the clock is keyed by its window
(the plant's current shift, the UTC day, the ISO week) and stored only until
the earliest of them ends (``readcache.MAX_AGE`` at most). The current shift
itself comes from ``CALENDAR``, checked against the clock on every read.

Only reads outside a transaction (web requests run in autocommit) use the
cache (``DashboardReadModel``): a payload computed inside one may count its
uncommitted writes and outlive a rollback, so it is computed, not stored.

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

from bpmos import readcache
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


class DashboardReadModel(ReadModel):
    """A ``ReadModel`` that serves and stores only outside transactions: a
    payload computed inside one may count its uncommitted writes (some of
    them signal-less: ``bulk_create``, raw SQL) and outlive a rollback. Web
    reads run in autocommit; a read inside a transaction computes."""

    def get(self, key, compute, *, valid=None):
        if connection.in_atomic_block:
            return compute()[0]
        return super().get(key, compute, valid=valid)


def get_together(wanted, compute):
    """``readcache.get_together`` as ``DashboardReadModel.get`` serves: inside
    a transaction every payload is computed, none served or stored."""
    if connection.in_atomic_block:
        return {name: payload for name, (payload, _) in compute(set(wanted)).items()}
    return readcache.get_together(wanted, compute)


# The shift running now on the first active line (``current_shift``).
CALENDAR = DashboardReadModel("dashboard-calendar", LINES)
# The summary's parts, each dropped only by the writes to its own figures: a
# work order completed recomputes Planned and Built, not the ledger's Yield.
PLAN = DashboardReadModel("dashboard-plan", WORK)  # planned, built per window
FIRST_PASS = DashboardReadModel("dashboard-first-pass", LEDGER)  # QA tested, passed
PIECES = DashboardReadModel("dashboard-pieces", SNAPSHOTS)  # good, rejected
HOLDS = DashboardReadModel("dashboard-holds", (*WORK, *ITEMS, *PASSPORTS))
# The distributions' parts (the stage WIP also makes the bottleneck cards).
STAGE_WIP = DashboardReadModel("dashboard-stage-wip", (*RUNBOOKS, *WORK))
CUSTODY = DashboardReadModel("dashboard-custody", PASSPORTS)
STOCK = DashboardReadModel("dashboard-stock", ITEMS)
# Each role's cards, without the ones read per request (module docstring).
ROLE_SUMMARY: dict[str, ReadModel] = {
    Role.OPERATOR: DashboardReadModel(
        "dashboard-operator-summary", (*LINES, *WORK, *ALARMS)
    ),
    Role.PLANNER: DashboardReadModel("dashboard-planner-summary", WORK),
    Role.SUPERVISOR: DashboardReadModel(
        "dashboard-supervisor-summary",
        (*GATES, *EXCEPTIONS, *ITEMS, *PASSPORTS, *RETURNS),
    ),
    Role.PLANT_HEAD: DashboardReadModel("dashboard-plant-head-summary", EXCEPTIONS),
    Role.AUDITOR: DashboardReadModel("dashboard-auditor-summary", SCORES),
    Role.ADMIN: DashboardReadModel("dashboard-admin-summary", (*USERS, *SCORES)),
}
# Each role's attention kinds, without the ones read per request.
ATTENTION: dict[str, ReadModel] = {
    Role.OPERATOR: DashboardReadModel("dashboard-operator-attention", (*WORK, *ALARMS)),
    Role.PLANNER: DashboardReadModel("dashboard-planner-attention", WORK),
    Role.SUPERVISOR: DashboardReadModel(
        "dashboard-supervisor-attention",
        (*GATES, *EXCEPTIONS, *ITEMS, *PASSPORTS, *RETURNS),
    ),
    Role.PLANT_HEAD: DashboardReadModel("dashboard-plant-head-attention", EXCEPTIONS),
}

ALL: tuple[ReadModel, ...] = (
    CALENDAR,
    PLAN,
    FIRST_PASS,
    PIECES,
    HOLDS,
    STAGE_WIP,
    CUSTODY,
    STOCK,
    *ROLE_SUMMARY.values(),
    *ATTENTION.values(),
)


def read_models_of(event_name: str) -> list[ReadModel]:
    """The read models a domain event named ``event_name`` may have changed."""
    models = set(EVENT_MODELS.get(event_name.partition(".")[0], ()))
    return [model for model in ALL if models & set(model.models)]


def read_models_of_model(label: str) -> list[ReadModel]:
    """The read models computed from the model ``label`` ("app.Model")."""
    return [model for model in ALL if label in model.models]


@dataclass
class _Batch:
    """The read models one transaction changed, invalidated again on commit."""

    models: dict[str, ReadModel] = field(default_factory=dict)

    def flush(self) -> None:
        _local.batch = None
        readcache.invalidate_many(self.models.values())


_local = threading.local()


def _current_batch() -> _Batch:
    """This thread's transaction's batch (a new one, flushed on commit, when
    it has none or the one it had was rolled back)."""
    batch = getattr(_local, "batch", None)
    if batch is not None and any(
        entry[1] == batch.flush for entry in connection.run_on_commit
    ):
        return batch
    batch = _local.batch = _Batch()
    transaction.on_commit(batch.flush)
    return batch


def changed(models: list[ReadModel]) -> None:
    """A write ``models`` are computed from: drop their payloads, in one
    cache round trip: at once outside a transaction (the write is committed),
    inside one when it commits, each read model once per transaction however
    many rows or events it wrote (one round trip per ledger append, not two),
    and not at all when it rolls back (nothing changed).

    Nothing has to be dropped before the commit: a reader inside the writer's
    transaction computes (``DashboardReadModel``: nothing is served or stored
    inside a transaction), and a reader outside it sees the committed state,
    which the stored payloads still are until the commit. The drop at commit
    runs in the committing thread before its caller goes on (the request
    answers after it): a reader served after the writer's answer gets the new
    state. (It used to drop at once as well: a second round trip per
    transaction that served no reader.)"""
    if not models:
        return
    if not connection.in_atomic_block:
        readcache.invalidate_many(models)
        return
    batch = _current_batch()
    for model in models:
        batch.models.setdefault(model.name, model)


def on_event(event) -> None:
    """``bpmos.events`` listener: drop the payloads ``event`` may have changed."""
    changed(read_models_of(event.name))


def on_events(events) -> None:
    """``on_event`` for a batch (``events.publish_many``): each read model once."""
    models: dict[str, ReadModel] = {}
    for name in dict.fromkeys(event.name for event in events):
        for model in read_models_of(name):
            models.setdefault(model.name, model)
    changed(list(models.values()))


on_event.many = on_events  # type: ignore[attr-defined]


def install() -> None:
    """Drop the payloads on every save and delete of the models they are
    computed from, and on the domain events (bpmos/apps.py calls this once,
    after the app registry is ready)."""
    from django.apps import apps
    from django.db.models.signals import post_delete, post_save

    from bpmos.events.services import event_listen

    labels = {label for model in ALL for label in model.models}
    for label in sorted(labels):
        models = read_models_of_model(label)

        def on_write(sender, models=models, **kwargs) -> None:
            changed(models)

        for signal, name in ((post_save, "save"), (post_delete, "delete")):
            signal.connect(
                on_write,
                sender=apps.get_model(label),
                weak=False,
                dispatch_uid=f"dashboard-readmodels:{label}:{name}",
            )
    event_listen(on_event)


def in_window(start: datetime, end: datetime, now: datetime) -> bool:
    return start <= now < end
