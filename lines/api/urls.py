from django.urls import re_path

from lines.api import views

# The readings POST, the API's busiest route (every gateway's every batch):
# bpmos.urls tries it before every other API route, not after ~70 of them
# (~0.1 ms of URL resolution a batch). No other route matches its path.
ingest_patterns = [
    re_path(
        r"^machines/(?P<pk>\d+)/readings/?$",
        views.MachineReadingsView.as_view(),
        name="machine-readings",
    ),
]

# Trailing slash optional, as for every mobile route.
urlpatterns = [
    re_path(r"^machines/?$", views.MachineListView.as_view(), name="machine-list"),
    re_path(
        r"^machines/(?P<pk>\d+)/?$",
        views.MachineDetailView.as_view(),
        name="machine-detail",
    ),
]
