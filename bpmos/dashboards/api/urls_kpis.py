"""Routes of the kpis dashboards (see bpmos/urls.py)."""

urlpatterns: list = []
