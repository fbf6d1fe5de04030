"""Routes of BMS provisioning (docs/passports.md, "BMS provisioning over CAN")."""

from django.urls import re_path

from passports.api_provisioning import views

_PASSPORT = r"passports/(?P<identifier>[^/]+)"

urlpatterns = [
    re_path(
        rf"^{_PASSPORT}/provision/?$",
        views.ProvisionView.as_view(),
        name="passport-provision",
    ),
    re_path(
        rf"^{_PASSPORT}/provisioning/?$",
        views.ProvisioningListView.as_view(),
        name="passport-provisioning",
    ),
]
