"""Every route of lines: the control UI's (lines, live status) and the mobile
contract's (machines, readings)."""

from lines.api.urls import urlpatterns as mobile_patterns
from lines.api_tower.urls import urlpatterns as tower_patterns

urlpatterns = [*tower_patterns, *mobile_patterns]
