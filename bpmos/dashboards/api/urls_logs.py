"""Routes of the logs dashboards (see bpmos/urls.py)."""

urlpatterns: list = []
