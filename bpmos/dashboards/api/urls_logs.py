"""Routes of the logs dashboards (see bpmos/urls.py): the event stream
(docs/logs.md). A trailing slash is accepted too."""

from django.urls import re_path

from bpmos.dashboards.api import logs_views

urlpatterns = [
    re_path(r"^logs/?$", logs_views.LogListView.as_view(), name="logs-list"),
    re_path(r"^logs/export/?$", logs_views.LogExportView.as_view(), name="logs-export"),
]
