"""Routes of compliance's reports area (see compliance/urls.py)."""

urlpatterns: list = []
