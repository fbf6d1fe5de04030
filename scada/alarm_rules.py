"""Alert rules' writes (admins, through the API and the admin): create, change,
delete. Each is checked by ``alarm_evaluation.alert_rule_problems`` and audited;
a rule that is disabled or moved to another tag starts over."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from bpmos.errors import Conflict, InvalidInput
from bpmos.locking import lock_row
from elog import audit
from scada import alarms
from scada.alarm_evaluation import RuleState, alert_rule_problems
from scada.models import AlarmEvent, AlertRule, Tag

RULE_FIELDS = (
    "name",
    "tag",
    "high_limit",
    "low_limit",
    "deadband",
    "on_delay_s",
    "off_delay_s",
    "severity",
    "message",
    "escalate_after_s",
    "create_work_order",
    "enabled",
)


def _rule_snapshot(rule: AlertRule) -> dict[str, Any]:
    return {
        name: getattr(rule, "tag_id" if name == "tag" else name) for name in RULE_FIELDS
    }


def _rule_check(rule: AlertRule) -> None:
    problems = alert_rule_problems(
        high_limit=rule.high_limit, low_limit=rule.low_limit, deadband=rule.deadband
    )
    name_taken = AlertRule.objects.filter(name=rule.name).exclude(pk=rule.pk).exists()
    if name_taken:
        problems["name"] = ["A rule with this name exists."]
    if problems:
        raise InvalidInput(
            "The rule is not valid.", code="validation_error", details=problems
        )


def _tag(tag_id: int) -> Tag:
    tag = Tag.objects.filter(pk=tag_id).first()
    if tag is None:
        raise InvalidInput(
            f"Tag {tag_id} does not exist.",
            code="validation_error",
            details={"tag": [f"Tag {tag_id} does not exist."]},
        )
    return tag


@transaction.atomic
def alert_rule_create(*, data: dict[str, Any], actor) -> AlertRule:
    """A new rule (admins); checked by ``alert_rule_problems``."""
    fields = {k: v for k, v in data.items() if k in RULE_FIELDS}
    fields["tag"] = _tag(fields["tag"])
    rule = AlertRule(**fields)
    _rule_check(rule)
    rule.save()
    audit.record(
        actor=actor,
        action="alert_rule.created",
        target=rule,
        after=_rule_snapshot(rule),
    )
    return rule


def _lock_rule(rule_id: int) -> AlertRule:
    return lock_row(
        AlertRule.objects.select_related("tag"),
        what=f"Alert rule {rule_id}",
        pk=rule_id,
    )


@transaction.atomic
def alert_rule_update(*, rule_id: int, data: dict[str, Any], actor) -> AlertRule:
    """Change a rule (admins). A rule that changes tag or is disabled starts
    over: its open alarm returns to normal and its timers reset."""
    rule = _lock_rule(rule_id)
    before = _rule_snapshot(rule)
    for name, value in data.items():
        if name not in RULE_FIELDS:
            continue
        if name == "tag":
            rule.tag = _tag(value)
        else:
            setattr(rule, name, value)
    _rule_check(rule)
    starts_over = (not rule.enabled and before["enabled"]) or rule.tag_id != before[
        "tag"
    ]
    if starts_over:
        alarms.keep_state(rule, RuleState())
        open_alarm = alarms.lock_open(rule=rule)
        if open_alarm is not None and open_alarm.active:
            alarms.return_to_normal(
                open_alarm, at=timezone.now(), actor=actor, note="rule changed"
            )
    rule.save()
    after = _rule_snapshot(rule)
    changed = {k for k in after if after[k] != before[k]}
    if changed:
        audit.record(
            actor=actor,
            action="alert_rule.changed",
            target=rule,
            before={k: before[k] for k in changed},
            after={k: after[k] for k in changed},
        )
    return rule


@transaction.atomic
def alert_rule_delete(*, rule_id: int, actor) -> None:
    """Delete a rule (admins); 409 while it has an open alarm (disable it, let
    the alarm close, then delete)."""
    rule = _lock_rule(rule_id)
    if AlarmEvent.objects.filter(rule=rule, closed_at__isnull=True).exists():
        raise Conflict(
            f"Alert rule {rule_id} has an open alarm; disable the rule instead, "
            "or delete it once the alarm is closed.",
            code="alarm_open",
        )
    snapshot, pk = _rule_snapshot(rule), rule.pk
    rule.delete()
    audit.record(
        actor=actor,
        action="alert_rule.deleted",
        target=None,
        target_type="scada.alertrule",
        target_id=str(pk),
        before=snapshot,
    )
