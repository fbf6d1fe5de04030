"""URL routes of passports/api_provisioning (filled by the issue-6 work)."""

urlpatterns: list = []
