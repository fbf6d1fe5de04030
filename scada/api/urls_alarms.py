"""Routes of SCADA alarms (see scada/urls.py)."""

urlpatterns: list = []
