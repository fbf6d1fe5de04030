"""SCADA's routes under /api/: connectors, tags and readings; alert rules and
alarms; maintenance work orders; LIMS import. One module per area."""

from django.urls import include, path

urlpatterns = [
    path("", include("scada.api.urls_connectors")),
    path("", include("scada.api.urls_alarms")),
    path("", include("scada.api.urls_maintenance")),
    path("", include("scada.api.urls_lims")),
]
