"""Routes of compliance's reports area (see compliance/urls.py)."""

from django.urls import re_path

from compliance.api import reports_views as views

urlpatterns = [
    re_path(r"^reports/?$", views.ReportListView.as_view(), name="report-list"),
    re_path(
        r"^reports/(?P<report_id>[-\w]+)/preview/?$",
        views.ReportPreviewView.as_view(),
        name="report-preview",
    ),
]
