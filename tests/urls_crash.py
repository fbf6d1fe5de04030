"""Test-only URLconf: the real routes plus two views that crash.

Used with ``@pytest.mark.urls("tests.urls_crash")`` so the 500 envelope can be
tested without a crashing route in production's URLconf.
"""

from django.urls import include, path
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

SECRET = "kaboom-internal-detail-7f3a"  # must never reach the client


class CrashingApiView(APIView):
    """A DRF view with an unhandled exception (outside POLICY: test-only)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request):
        raise RuntimeError(SECRET)


def crashing_django_view(request):
    """A plain Django view with an unhandled exception."""
    raise RuntimeError(SECRET)


urlpatterns = [
    path("api/test-crash/drf", CrashingApiView.as_view()),
    path("api/test-crash/django", crashing_django_view),
    path("", include("bpmos.urls")),
]
