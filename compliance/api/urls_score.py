"""Routes of compliance's score area (see compliance/urls.py)."""

from django.urls import re_path

from compliance.api import score_views as views

urlpatterns = [
    re_path(
        r"^compliance/score/?$",
        views.ComplianceScoreView.as_view(),
        name="compliance-score",
    ),
]
