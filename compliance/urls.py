"""Compliance's routes under /api/: EPR and categories, the score, returns and
the regulator export, reports. One module per area."""

from django.urls import include, path

urlpatterns = [
    path("", include("compliance.api.urls_epr")),
    path("", include("compliance.api.urls_score")),
    path("", include("compliance.api.urls_returns")),
    path("", include("compliance.api.urls_reports")),
    path("", include("compliance.api.urls_report_jobs")),
]
