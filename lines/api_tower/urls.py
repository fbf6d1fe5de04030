from django.urls import re_path

from lines.api_tower import views

_LINE = r"(?P<line_id>[-\w]+)"

# Trailing slash optional, as everywhere.
urlpatterns = [
    re_path(r"^lines/?$", views.LineListView.as_view(), name="line-list"),
    # The line detail (with its runbook's status) is bpmos.dashboards.api_tower's.
    re_path(
        rf"^lines/{_LINE}/stations/?$",
        views.LineStationsView.as_view(),
        name="line-stations",
    ),
    re_path(rf"^lines/{_LINE}/oee/?$", views.LineOEEView.as_view(), name="line-oee"),
    re_path(
        r"^live-status/summary/?$",
        views.LiveSummaryView.as_view(),
        name="live-status-summary",
    ),
    re_path(
        r"^live-status/operations/?$",
        views.LiveOperationsView.as_view(),
        name="live-status-operations",
    ),
    re_path(
        r"^live-status/lines/?$",
        views.LiveLinesView.as_view(),
        name="live-status-lines",
    ),
    re_path(
        r"^live-status/bottlenecks/?$",
        views.LiveBottlenecksView.as_view(),
        name="live-status-bottlenecks",
    ),
]
