"""Routes of SCADA lims (see scada/urls.py)."""

urlpatterns: list = []
