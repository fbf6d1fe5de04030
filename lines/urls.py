"""Every route of lines: the control UI's (lines, live status) and the mobile
contract's (machines, readings)."""

from lines.api.urls import ingest_patterns
from lines.api.urls import urlpatterns as mobile_patterns
from lines.api_tower.urls import urlpatterns as tower_patterns

# ``ingest_patterns`` (the readings POST) is included by bpmos.urls ahead of
# every other API route.
urlpatterns = [*tower_patterns, *mobile_patterns]

__all__ = ["ingest_patterns", "urlpatterns"]
