"""URL map: the API under /api/ (namespace ``api``), the admin under /admin/,
the server-rendered pages everywhere else (docs/pages.md)."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularSwaggerView

from bpmos.accounts import pages as account_pages
from bpmos.health import HealthView
from bpmos.schema_view import SchemaView

api_patterns = [
    # First: every gateway's every batch; tried after ~70 routes it cost
    # ~0.1 ms of a batch (docs/performance.md, session 18).
    path("", include("lines.api.urls_ingest")),
    re_path(r"^health/?$", HealthView.as_view(), name="health"),
    re_path(r"^schema/?$", SchemaView.as_view(), name="schema"),
    re_path(
        r"^docs/?$",
        # No OPTIONS metadata: its HTML-only renderer crashed rendering it (500).
        SpectacularSwaggerView.as_view(url_name="api:schema", metadata_class=None),
        name="docs",
    ),
    path("", include("bpmos.accounts.api.urls")),
    path("", include("elog.api.urls")),
    path("", include("bpmos.dashboards.api_tower.urls")),
    path("", include("exceptions.api.urls")),
    path("", include("runbooks.api.urls")),
    path("", include("inventory.api.urls")),
    path("", include("lines.urls")),
    path("", include("passports.urls")),
    path("", include("scada.urls")),
    path("", include("compliance.urls")),
    path("", include("bpmos.dashboards.api.urls")),
    path("", include("bpmos.dashboards.api.urls_kpis")),
    path("", include("bpmos.dashboards.api.urls_roles")),
    path("", include("bpmos.dashboards.api.urls_logs")),
]

# The pages (bpmos/pagekit.py): who may open each is bpmos.access.PAGES.
page_patterns = [
    path("", account_pages.home, name="page-home"),
    path("login/", account_pages.PlantLoginView.as_view(), name="page-login"),
    path("logout/", account_pages.PlantLogoutView.as_view(), name="page-logout"),
    path("board/token/", account_pages.socket_token, name="page-token"),
    path("", include("lines.pages")),
    path("", include("scada.pages")),
    path("", include("passports.pages")),
]

urlpatterns = [
    path("api/", include((api_patterns, "api"))),
    path("admin/", admin.site.urls),
    *page_patterns,
]
