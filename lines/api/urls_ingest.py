"""The readings POST, the API's busiest route (every gateway's every batch):
bpmos.urls tries it before every other API route, not after ~70 of them (URL
resolution ~100 -> ~23 us a batch). No other route matches its path; trailing
slash optional, as for every mobile route."""

from django.urls import re_path

from lines.api import views

urlpatterns = [
    re_path(
        r"^machines/(?P<pk>\d+)/readings/?$",
        views.MachineReadingsView.as_view(),
        name="machine-readings",
    ),
]
