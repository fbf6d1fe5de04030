from django.urls import re_path

from lines.api import views

# Trailing slash optional, as for every mobile route. The readings POST is in
# lines.api.urls_ingest, which bpmos.urls tries first.
urlpatterns = [
    re_path(r"^machines/?$", views.MachineListView.as_view(), name="machine-list"),
    re_path(
        r"^machines/(?P<pk>\d+)/?$",
        views.MachineDetailView.as_view(),
        name="machine-detail",
    ),
]
