"""Routes of the roles dashboards (see bpmos/urls.py)."""

urlpatterns: list = []
