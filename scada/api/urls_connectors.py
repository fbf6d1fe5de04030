"""Routes of SCADA connectors (see scada/urls.py)."""

urlpatterns: list = []
