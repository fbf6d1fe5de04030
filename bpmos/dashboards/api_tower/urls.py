from django.urls import re_path

from bpmos.dashboards.api_tower import views

# Trailing slash optional, as everywhere. A runbook's exceptions are routed by
# exceptions/api/urls.py.
urlpatterns = [
    re_path(
        r"^control-tower/runbooks/?$",
        views.ControlTowerRunbookListView.as_view(),
        name="tower-runbook-list",
    ),
    re_path(
        r"^runbooks/(?P<runbook_id>[-\w]+)/?$",
        views.RunbookDetailView.as_view(),
        name="tower-runbook-detail",
    ),
    re_path(
        r"^runbooks/(?P<runbook_id>[-\w]+)/stages/?$",
        views.RunbookStageListView.as_view(),
        name="tower-runbook-stages",
    ),
    re_path(
        r"^lines/(?P<line_id>[-\w]+)/?$",
        views.LineDetailView.as_view(),
        name="line-detail",
    ),
]
