from django.urls import re_path

from exceptions.api import views

# "EX-001" or the bare number; trailing slash optional, as everywhere.
_EXCEPTION = r"(?P<exception_id>(?:EX-|ex-)?\d+)"
_ID = r"(?P<pk>\d+)"  # a work-order stage

urlpatterns = [
    re_path(
        r"^exceptions/?$", views.ExceptionListView.as_view(), name="exception-list"
    ),
    re_path(
        rf"^exceptions/{_EXCEPTION}/?$",
        views.ExceptionDetailView.as_view(),
        name="exception-detail",
    ),
    re_path(
        rf"^exceptions/{_EXCEPTION}/acknowledge/?$",
        views.ExceptionAcknowledgeView.as_view(),
        name="exception-acknowledge",
    ),
    re_path(
        rf"^exceptions/{_EXCEPTION}/resolve/?$",
        views.ExceptionResolveView.as_view(),
        name="exception-resolve",
    ),
    re_path(
        r"^runbooks/(?P<runbook_id>[-\w]+)/exceptions/?$",
        views.RunbookExceptionListView.as_view(),
        name="tower-runbook-exceptions",
    ),
    # issues
    re_path(
        rf"^stages/{_ID}/issue/?$",
        views.StageIssueCreateView.as_view(),
        name="stage-issue",
    ),
    re_path(
        rf"^stages/{_ID}/issues/?$",
        views.StageIssuesView.as_view(),
        name="stage-issues",
    ),
    re_path(
        rf"^stages/{_ID}/issues/(?P<issue_id>\d+)/?$",
        views.StageIssueDetailView.as_view(),
        name="stage-issue-detail",
    ),
    re_path(r"^issues/?$", views.IssueListView.as_view(), name="issue-list"),
]
