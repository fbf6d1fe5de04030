"""Attention changes pushed live: ``attention.changed`` on ``attention.<userId>``.

Design (the cheapest correct one we found; docs/dashboards.md):

* The domain services already publish an event for every change that can move
  an item into or out of an attention list (alarm raised/acknowledged/shelved,
  exception escalated/acknowledged/resolved, gate changed, stage held/resumed/
  assigned, work order started/completed, item held/released/blocked/issued,
  passport held/released, compliance return built/approved, the audit chain's
  verification state changed). ``install()`` registers ``on_event`` with
  ``bpmos.events`` (``event_listen``); no app imports the dashboards.
* ``on_event`` runs in the publisher's transaction and only notes which
  attention *kinds* changed (and which work-order stages), in one batch per
  transaction, flushed once ``on_commit``: a readings batch that raises eleven
  alarms costs one flush, and a rolled-back transaction announces nothing.
* The flush maps kinds to the roles whose lists carry them
  (``attention.KINDS_BY_ROLE``), finds those roles' active users (one query;
  an operator's blocked stages: only the operators assigned to those stages,
  one more) and publishes ONE event whose topics are every such user's
  ``attention.<id>``: one outbox row whatever the number of users.
* The payload says what changed (``{"changed": true, "kinds": [...]}``), not
  the new list: a client refetches ``GET /api/dashboard/{role}/attention``
  (a fixed number of queries). Computing each user's count here would cost a
  list per user per change. It is a hint: it may say "changed" when a user's
  list is in fact unchanged (an alarm raised and acknowledged in one go);
  never silent when it did change, for the events listed above. A compliance
  return built or approved (``compliance_return.*``) tells the supervisors
  (``return``); the chain verification's state changing
  (``audit_chain.changed``, published by the beat task's refresh) tells the
  auditors (``auditChain``; their summary's chain card changes with it).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TypedDict

import structlog
from django.db import connection, transaction

from bpmos import events
from bpmos.accounts import selectors as account_selectors
from bpmos.dashboards import attention
from bpmos.events import Event, declare
from bpmos.roles import Role
from runbooks import selectors as runbook_selectors

log = structlog.get_logger(__name__)


class AttentionChangedPayload(TypedDict):
    changed: bool
    kinds: list[str]


ATTENTION_CHANGED = declare("attention.changed", AttentionChangedPayload)


def topic(user_id: int) -> str:
    """The live topic of one user's attention list."""
    return f"attention.{user_id}"


def kinds_of(event: Event) -> set[str]:
    """The attention kinds ``event`` may have changed (empty: none). A work
    order that starts or ends changes the gates' list only where its runbook
    has a gate not Open: ``on_event`` notes it and the flush checks that."""
    name, data = event.name, event.data
    family, _, change = name.partition(".")
    if family == "alarm":
        kinds = {attention.ALARM}
        if data.get("kind") == "comm_loss":
            kinds.add(attention.CONNECTOR)
        return kinds
    if family == "exception":
        level = data.get("escalationLevel") or 0
        return {attention.EXCEPTION} if level >= 1 else set()
    if name == "gate.changed":
        return {attention.GATE}
    if name in {"stage.held", "stage.resumed"}:
        return {attention.BLOCKED_STAGE}
    if name in {"stage.assigned", "stage.unassigned"}:
        # Only a stage on hold is in anyone's list.
        return {attention.BLOCKED_STAGE} if data.get("status") == "hold" else set()
    if name == "workorder.cancelled":  # its stages on hold leave the lists
        return {attention.BLOCKED_STAGE}
    if family == "item" and change in {"held", "hold_released", "blocked", "issued"}:
        return {attention.HOLD}
    if name == "passport.changed" and data.get("event") in {"held", "released"}:
        return {attention.HOLD}
    if family == "compliance_return":  # a draft built, or approved
        return {attention.RETURN}
    if name == "audit_chain.changed":  # verified <-> broken, or broken elsewhere
        return {attention.CHAIN}
    return set()


@dataclass
class AttentionBatch:
    """What one transaction changed in attention lists; ``flush`` runs once,
    on commit (its one ``on_commit`` callback)."""

    kinds: set[str] = field(default_factory=set)
    stage_ids: set[int] = field(default_factory=set)  # held/resumed/assigned
    all_operators: bool = False  # a stage lost an assignee, a work order moved
    # Work orders started, completed or cancelled: gates' list if their
    # runbooks have a gate not Open (checked at the flush).
    work_order_ids: set[int] = field(default_factory=set)

    def flush(self) -> None:
        _local.batch = None
        try:
            attention_changed_publish(self)
        except Exception:  # after commit: the change itself stands
            log.warning("attention_changed_not_published", exc_info=True)


_local = threading.local()


def _current_batch() -> AttentionBatch:
    """The batch of this thread's transaction; a new one (flushed on commit)
    when there is none, or when the one it had was rolled back."""
    batch = getattr(_local, "batch", None)
    if batch is not None and any(
        entry[1] == batch.flush for entry in connection.run_on_commit
    ):
        return batch
    batch = _local.batch = AttentionBatch()
    transaction.on_commit(batch.flush)  # called inside a transaction only
    return batch


def on_event(event: Event) -> None:
    """``bpmos.events`` listener: note what ``event`` changed in attention lists."""
    if event.name == ATTENTION_CHANGED:
        return
    kinds = kinds_of(event)
    moved = event.name in {
        "workorder.started",
        "workorder.completed",
        "workorder.cancelled",
    }
    if not kinds and not moved:
        return
    batch = _current_batch() if connection.in_atomic_block else AttentionBatch()
    batch.kinds |= kinds
    if moved:
        batch.work_order_ids.add(int(event.data["id"]))
    if attention.BLOCKED_STAGE in kinds:
        if event.name in {"stage.held", "stage.resumed", "stage.assigned"}:
            batch.stage_ids.add(int(event.data["id"]))
        else:
            batch.all_operators = True
    if not connection.in_atomic_block:
        batch.flush()


def attention_changed_publish(batch: AttentionBatch) -> int:
    """Publish one ``attention.changed`` to every user whose list may have
    changed; returns how many users. Three queries at most, and one insert."""
    if (
        batch.work_order_ids
        and attention.GATE not in batch.kinds
        and runbook_selectors.gate_not_open_exists(work_order_ids=batch.work_order_ids)
    ):
        batch.kinds.add(attention.GATE)
    if not batch.kinds:
        return 0
    roles = {
        role
        for role, kinds in attention.KINDS_BY_ROLE.items()
        if kinds & batch.kinds and role != Role.OPERATOR
    }
    operator_kinds = attention.KINDS_BY_ROLE[Role.OPERATOR] & batch.kinds
    operators_all = bool(operator_kinds - {attention.BLOCKED_STAGE}) or (
        attention.BLOCKED_STAGE in operator_kinds and batch.all_operators
    )
    if operators_all:
        roles.add(Role.OPERATOR)
    user_ids = (
        [user_id for user_id, _ in account_selectors.user_ids_by_roles(roles=roles)]
        if roles
        else []
    )
    personal = attention.BLOCKED_STAGE in operator_kinds and not operators_all
    if personal and batch.stage_ids:
        assignees = runbook_selectors.stage_assignee_ids(stage_ids=batch.stage_ids)
        user_ids = sorted(set(user_ids) | assignees)
    if not user_ids:
        return 0
    with transaction.atomic():
        events.publish(attention_event(user_ids=user_ids, kinds=batch.kinds))
    return len(user_ids)


def attention_event(*, user_ids, kinds) -> Event:
    """The ``attention.changed`` event to the lists of ``user_ids``."""
    payload: AttentionChangedPayload = {"changed": True, "kinds": sorted(kinds)}
    return Event(
        name=ATTENTION_CHANGED,
        topics=tuple(topic(user_id) for user_id in user_ids),
        data=payload,
    )


def install() -> None:
    """Listen to every event of this process (bpmos/apps.py calls this once)."""
    from bpmos.events.services import event_listen  # app registry must be ready

    event_listen(on_event)
