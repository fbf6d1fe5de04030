"""Routes of compliance's epr area (see compliance/urls.py)."""

urlpatterns: list = []
