"""Routes of passports: the registry and passport API, BMS provisioning, and the
dispatch desk's contract (paths exactly as the contracts spell them)."""

from django.urls import include, path

urlpatterns = [
    path("", include("passports.api.urls")),
    path("", include("passports.api_provisioning.urls")),
    path("", include("passports.dispatch.api.urls")),
]
