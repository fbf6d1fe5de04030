"""Routes of compliance's returns area (see compliance/urls.py)."""

urlpatterns: list = []
