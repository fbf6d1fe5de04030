"""Routes of SCADA alarms (see scada/urls.py): alert rules, alarms and their
ISA-18.2 actions, floods, chattering, and the contract's POST /api/alerts/process.
Trailing slash optional, as everywhere."""

from django.urls import re_path

from scada.api import alarms_views as views

_ID = r"(?P<pk>\d{1,18})"

urlpatterns = [
    re_path(
        r"^alerts/rules/?$", views.AlertRuleListView.as_view(), name="alert-rule-list"
    ),
    re_path(
        rf"^alerts/rules/{_ID}/?$",
        views.AlertRuleDetailView.as_view(),
        name="alert-rule-detail",
    ),
    re_path(
        r"^alerts/process/?$", views.AlertsProcessView.as_view(), name="alerts-process"
    ),
    re_path(r"^alarms/?$", views.AlarmListView.as_view(), name="alarm-list"),
    re_path(r"^alarms/floods/?$", views.FloodListView.as_view(), name="alarm-floods"),
    re_path(
        r"^alarms/chattering/?$",
        views.ChatteringView.as_view(),
        name="alarm-chattering",
    ),
    re_path(rf"^alarms/{_ID}/?$", views.AlarmDetailView.as_view(), name="alarm-detail"),
    *(
        re_path(rf"^alarms/{_ID}/{action}/?$", view.as_view(), name=f"alarm-{action}")
        for action, view in (
            ("acknowledge", views.AlarmAcknowledgeView),
            ("shelve", views.AlarmShelveView),
            ("unshelve", views.AlarmUnshelveView),
            ("suppress", views.AlarmSuppressView),
            ("unsuppress", views.AlarmUnsuppressView),
            ("out-of-service", views.AlarmOutOfServiceView),
            ("return-to-service", views.AlarmReturnToServiceView),
        )
    ),
]
