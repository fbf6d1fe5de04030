"""Routes of the dashboards' read models, as their contracts spell them (a
trailing slash is accepted too)."""

from django.urls import re_path

from bpmos.dashboards.api import views

urlpatterns = [
    # The dispatch contract's dashboard (docs/dispatch.md).
    re_path(
        r"^dashboard/status/?$",
        views.DashboardStatusView.as_view(),
        name="dashboard-status",
    ),
]
