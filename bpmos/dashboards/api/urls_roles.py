"""Routes of the roles dashboards (see bpmos/urls.py).

Two path segments after ``dashboard/``, so they never shadow the literal
``dashboard/status`` or ``dashboard/summary|trends|distributions``; any role
text reaches the view, which answers 404 in the envelope for an unknown one.
"""

from django.urls import re_path

from bpmos.dashboards.api import roles_views as views

_ROLE = r"(?P<role>[^/]{1,64})"

urlpatterns: list = [
    re_path(
        rf"^dashboard/{_ROLE}/summary/?$",
        views.RoleSummaryView.as_view(),
        name="dashboard-role-summary",
    ),
    re_path(
        rf"^dashboard/{_ROLE}/attention/?$",
        views.RoleAttentionView.as_view(),
        name="dashboard-role-attention",
    ),
]
