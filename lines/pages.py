"""This app's server-rendered pages (docs/pages.md; bpmos/pagekit.py)."""

urlpatterns: list = []
