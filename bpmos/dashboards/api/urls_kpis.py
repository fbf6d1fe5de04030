"""Routes of the kpis dashboards (see bpmos/urls.py): control-UI contract
group I, a trailing slash accepted too."""

from django.urls import re_path

from bpmos.dashboards.api import kpis_views as views

urlpatterns = [
    re_path(
        r"^dashboard/summary/?$",
        views.DashboardSummaryView.as_view(),
        name="dashboard-summary",
    ),
    re_path(
        r"^dashboard/trends/?$",
        views.DashboardTrendsView.as_view(),
        name="dashboard-trends",
    ),
    re_path(
        r"^dashboard/distributions/?$",
        views.DashboardDistributionsView.as_view(),
        name="dashboard-distributions",
    ),
]
