"""Routes of SCADA connectors, tags and readings, and the contract's test and
poll (see scada/urls.py)."""

from django.urls import re_path

from scada.api import connectors_views as views

_ID = r"(?P<pk>\d{1,18})"

urlpatterns = [
    re_path(
        r"^scada/connectors/?$",
        views.ConnectorListView.as_view(),
        name="scada-connector-list",
    ),
    re_path(
        rf"^scada/connectors/{_ID}/?$",
        views.ConnectorDetailView.as_view(),
        name="scada-connector-detail",
    ),
    re_path(
        rf"^scada/connectors/{_ID}/browse/?$",
        views.ConnectorBrowseView.as_view(),
        name="scada-connector-browse",
    ),
    re_path(r"^scada/tags/?$", views.TagListView.as_view(), name="scada-tag-list"),
    re_path(
        rf"^scada/tags/{_ID}/?$",
        views.TagDetailView.as_view(),
        name="scada-tag-detail",
    ),
    re_path(
        r"^scada/readings/?$",
        views.ReadingListView.as_view(),
        name="scada-reading-list",
    ),
    re_path(r"^scada/test/?$", views.ScadaTestView.as_view(), name="scada-test"),
    re_path(r"^scada/poll/?$", views.ScadaPollView.as_view(), name="scada-poll"),
]
