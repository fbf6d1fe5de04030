"""URL routes of passports/api (filled by the issue-6 work)."""

urlpatterns: list = []
