"""Routes of compliance's report jobs area (see compliance/urls.py)."""

urlpatterns: list = []
