"""This app's server-rendered pages (docs/pages.md; bpmos/pagekit.py): the
alarm board.

The board is rendered with the open alarms as they are now; its script
(``bpmos/static/bpmos/board-alarms.js``) then follows the ``alerts`` topic.
Its buttons are shown by the API's own rule for each action, and they call the
API (``BPMOS.api``: the page's short-lived bearer token, so the same view,
checks, service, audit and event as any client's): the page holds no rule of
its own.
"""

from __future__ import annotations

from django.urls import path
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from bpmos import access
from bpmos.pagekit import page, render_page, role_of
from exceptions.models import Severity
from scada.alarms import MAX_SHELVE
from scada.api.alarms_selectors import alarm_board_list
from scada.api.alarms_serializers import AlarmSerializer
from scada.models import AlarmState

# The ISA-18.2 states that are shown (someone should look at them), and those
# someone hid on purpose, listed apart.
SHOWN = (AlarmState.UNACK_ACTIVE, AlarmState.ACK_ACTIVE, AlarmState.UNACK_RTN)
ACKNOWLEDGEABLE = (AlarmState.UNACK_ACTIVE, AlarmState.UNACK_RTN)
SHELVE_CHOICES = (  # minutes, label; the API takes 1 to 1440
    (15, "15 minutes"),
    (30, "30 minutes"),
    (60, "1 hour"),
    (120, "2 hours"),
    (240, "4 hours"),
    (480, "8 hours"),
    (int(MAX_SHELVE.total_seconds() // 60), "24 hours"),
)


def age_text(seconds: float) -> str:
    """How long ago, as the board's script writes it (``formatAge``)."""
    s = max(int(seconds), 0)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def _may(route: str, role: str | None) -> bool:
    return access.allows(access.rule_for(route, "POST"), role)


@never_cache
@require_GET
@page("board-alarms")
def alarm_board(request):
    """``/board/alarms/``: the open alarms by severity and age, with their
    ISA-18.2 state; acknowledge and shelve for the roles the API allows."""
    role = role_of(request)
    may = {
        "acknowledge": _may("alarm-acknowledge", role),
        "shelve": _may("alarm-shelve", role),
        "unshelve": _may("alarm-unshelve", role),
    }
    now = timezone.now()
    alarms = alarm_board_list()
    data = AlarmSerializer(alarms, many=True).data
    state_labels = dict(AlarmState.choices)
    severity_labels = dict(Severity.choices)
    rows = [
        {
            "alarm": item,
            "state_label": state_labels[item["alarm_state"]],
            "severity_label": severity_labels.get(item["severity"], item["severity"]),
            "age": age_text((now - alarm.timestamp).total_seconds()),
            "may_acknowledge": may["acknowledge"]
            and item["alarm_state"] in ACKNOWLEDGEABLE,
            "may_shelve": may["shelve"] and item["alarm_state"] in SHOWN,
            "may_unshelve": may["unshelve"]
            and item["alarm_state"] == AlarmState.SHELVED,
        }
        for alarm, item in zip(alarms, data, strict=True)
    ]
    shown = [r for r in rows if r["alarm"]["alarm_state"] in SHOWN]
    hidden = [r for r in rows if r["alarm"]["alarm_state"] not in SHOWN]
    counts = {
        key: sum(1 for r in shown if r["alarm"]["severity"] == key)
        for key in ("critical", "high", "medium", "low")
    }
    unacknowledged = sum(
        1 for r in shown if r["alarm"]["alarm_state"] in ACKNOWLEDGEABLE
    )
    board = {
        "alarms": list(data),
        "may": may,
        "stateLabels": state_labels,
        "severityLabels": severity_labels,
        "shown": list(SHOWN),
        "acknowledgeable": list(ACKNOWLEDGEABLE),
        "serverNow": now.isoformat(),
    }
    return render_page(
        request,
        "pages/board_alarms.html",
        {
            "shown": shown,
            "hidden": hidden,
            "counts": counts,
            "unacknowledged": unacknowledged,
            "board": board,
            "may": may,
            "shelve_choices": SHELVE_CHOICES,
        },
    )


urlpatterns: list = [
    path("board/alarms/", alarm_board, name="board-alarms"),
]
