"""Routes of compliance's returns area (see compliance/urls.py)."""

from django.urls import re_path

from compliance.api import returns_views as views

# Ids: at most 18 digits (a bigint), so a longer one is a 404, not an overflow.
_ID = r"(?P<pk>[0-9]{1,18})"

urlpatterns = [
    re_path(
        r"^compliance/returns/?$",
        views.ReturnListView.as_view(),
        name="compliance-return-list",
    ),
    re_path(
        rf"^compliance/returns/{_ID}/?$",
        views.ReturnDetailView.as_view(),
        name="compliance-return-detail",
    ),
    re_path(
        rf"^compliance/returns/{_ID}/lines/?$",
        views.ReturnLinesView.as_view(),
        name="compliance-return-lines",
    ),
    re_path(
        rf"^compliance/returns/{_ID}/approve/?$",
        views.ReturnApproveView.as_view(),
        name="compliance-return-approve",
    ),
    re_path(
        r"^compliance/export/?$", views.ExportView.as_view(), name="compliance-export"
    ),
    re_path(
        r"^compliance/schemas/?$",
        views.SchemaListView.as_view(),
        name="compliance-schemas",
    ),
]
