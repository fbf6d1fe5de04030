"""Routes of SCADA lims (see scada/urls.py)."""

from django.urls import re_path

from scada.api import lims_views as views

urlpatterns = [
    re_path(r"^lims/import/?$", views.LimsImportView.as_view(), name="lims-import"),
    re_path(r"^lims/fetch/?$", views.LimsFetchView.as_view(), name="lims-fetch"),
    re_path(
        r"^lims/results/?$", views.LimsResultListView.as_view(), name="lims-results"
    ),
]
