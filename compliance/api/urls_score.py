"""Routes of compliance's score area (see compliance/urls.py)."""

urlpatterns: list = []
