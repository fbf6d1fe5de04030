"""A row in every model the back-office lists: the demo plant's (``seed_demo``),
and one of each kind it leaves empty (beat schedules, groups, the alarms'
journal, floods, work orders, LIMS results, report jobs...), so a test can open
every registered model's change page."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import Group
from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)
from rest_framework_simplejwt.tokens import RefreshToken

from bpmos.idempotency.models import IdempotencyKey
from compliance.models import EmailDelivery, ReportJob, ScheduledReturn, ScoreSnapshot
from passports.grants import grant_issue
from passports.models import Passport, PassportAccessGrant, ProvisioningAttempt
from scada.models import (
    AlarmEvent,
    AlarmFlood,
    AlarmHistory,
    LimsResult,
    MaintenanceWorkOrder,
    ScadaReading,
)


def fill_every_model(make_user) -> None:
    now = timezone.now()
    admin = make_user("admin")
    if not PeriodicTask.objects.exists():
        PeriodicTask.objects.create(
            name="backoffice-sample",
            task="elog.tasks.noop",
            interval=IntervalSchedule.objects.create(every=5, period="minutes"),
        )
    IntervalSchedule.objects.get_or_create(every=15, period="minutes")
    Group.objects.get_or_create(name="backoffice-sample")
    if not ClockedSchedule.objects.exists():
        ClockedSchedule.objects.create(clocked_time=now)
    if not SolarSchedule.objects.exists():
        SolarSchedule.objects.create(event="sunrise", latitude=12.9, longitude=77.6)
    RefreshToken.for_user(make_user("operator")).blacklist()

    crontab = CrontabSchedule.objects.create(minute="0", hour="7")
    schedule, _ = ScheduledReturn.objects.get_or_create(
        name="backoffice-sample",
        defaults={
            "period": "previous_month",
            "recipients": "epr@example.com",
            "crontab": crontab,
            "owner": admin,
        },
    )
    if not EmailDelivery.objects.exists():
        EmailDelivery.objects.create(
            schedule=schedule,
            status="failed",
            recipients="epr@example.com",
            subject="EPR return",
            error="=cmd|' /C calc'!A0",  # a formula, exported escaped
        )
    if not ReportJob.objects.exists():
        ReportJob.objects.create(report_id="epr", format="csv", created_by=admin)
    if not ScoreSnapshot.objects.exists():
        ScoreSnapshot.objects.create(
            computed_at=now, total=10, ready=7, per_kind={}, failing_rules=[]
        )

    if not AlarmEvent.objects.exists():
        alarm = AlarmEvent.objects.create(
            timestamp=now - timedelta(minutes=5),
            tag_name="CELL-TEMP-1",
            severity="high",
            kind="high",
            message="Temperature high",
            area="formation",
        )
        AlarmHistory.objects.create(
            alarm=alarm,
            at=alarm.timestamp,
            change="activated",
            to_state="unack_active",
            area="formation",
        )
    if not AlarmFlood.objects.exists():
        AlarmFlood.objects.create(
            area="formation", started_at=now - timedelta(hours=1), ended_at=now
        )
    if not ScadaReading.objects.exists():
        ScadaReading.objects.create(timestamp=now, tag_name="CELL-TEMP-1", value=41.5)
    if not MaintenanceWorkOrder.objects.exists():
        MaintenanceWorkOrder.objects.create(
            asset_id="M-1", asset_name="Press 1", description="Fix", priority="high"
        )
    if not LimsResult.objects.exists():
        LimsResult.objects.create(
            key="backoffice|ir|1",
            serial="SN-1",
            test_name="ir",
            passed=True,
            tested_at=now,
        )
    if not IdempotencyKey.objects.exists():
        IdempotencyKey.objects.create(
            user=admin,
            key="backoffice-sample",
            method="POST",
            path="/api/inventory/items/X/reserve/",
            fingerprint="0" * 64,
            status="completed",
            locked_until=now,
            response_status=201,
            expires_at=now + timedelta(hours=24),
        )
    if not ProvisioningAttempt.objects.exists():
        passport = Passport.objects.order_by("pk").first()
        if passport is not None:
            ProvisioningAttempt.objects.create(passport=passport, requested_by=admin)
    if not PassportAccessGrant.objects.exists():
        grant_issue(party="Recycler GmbH", customer="Fleet Co", actor=admin)


# What a reader may meet: the search box, the action menu (read actions only)
# and its Go button, the row checkboxes, the navigation filter, hidden fields,
# the log-out button and the buttons marked ``data-read-only`` (verify).
READER_NAMES = {"q", "action", "_selected_action", "select_across", "index"}


def is_reader_control(control: dict) -> bool:
    kind = control.get("type", "submit" if control["tag"] == "button" else "text")
    if "data-read-only" in control or kind == "hidden":
        return True
    if control.get("name") in READER_NAMES or control.get("id") == "nav-filter":
        return True
    if control.get("id") == "action-toggle" or control.get("value") == "Search":
        return True
    if (control.get("form") or "").endswith("/admin/logout/"):
        return True
    # The theme and sidebar toggles: buttons outside any form submit nothing.
    return control["tag"] == "button" and control["form"] is None
