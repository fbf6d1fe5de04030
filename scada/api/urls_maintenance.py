"""Routes of SCADA maintenance (see scada/urls.py)."""

urlpatterns: list = []
