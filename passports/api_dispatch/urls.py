"""URL routes of passports/api_dispatch (filled by the issue-6 work)."""

urlpatterns: list = []
