from django.urls import re_path

from lines.api import views

# Trailing slash optional, as for every mobile route.
urlpatterns = [
    re_path(r"^machines/?$", views.MachineListView.as_view(), name="machine-list"),
    re_path(
        r"^machines/(?P<pk>\d+)/?$",
        views.MachineDetailView.as_view(),
        name="machine-detail",
    ),
    re_path(
        r"^machines/(?P<pk>\d+)/readings/?$",
        views.MachineReadingsView.as_view(),
        name="machine-readings",
    ),
]
