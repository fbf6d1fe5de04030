"""The list pages read as ``values()`` rows (``bpmos.listrows``) against the
path they replace: the same view answering through its serializer, for the
same rows, at the same clock. The two bodies must be equal byte for byte."""

from __future__ import annotations

from datetime import datetime
from unittest import mock

import time_machine
from rest_framework import mixins
from rest_framework.test import APIClient
from rest_framework.views import APIView

from tests.conftest import bearer


def rendered(path: str, user, *, at: datetime) -> tuple[int, bytes]:
    """Status and body of ``GET path`` for ``user`` at the clock ``at`` (so an
    age or a "now" is the same in both bodies)."""
    with time_machine.travel(at, tick=False):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=bearer(user)["Authorization"])
        response = client.get(path)
    return response.status_code, response.content


def assert_same_page(view_class, path: str, user, *, at: datetime) -> bytes:
    """``view_class``'s page at ``path`` equals, byte for byte, what its
    serializer prints for the same rows (DRF's own ``ListModelMixin.list``,
    as the view answered before ``ValuesListMixin``, written by the default
    ``JSONRenderer``, not ``RowsJSONRenderer``); returns the body."""
    fast = rendered(path, user, at=at)
    with (
        mock.patch.object(view_class, "list", mixins.ListModelMixin.list),
        mock.patch.object(view_class, "get_renderers", APIView.get_renderers),
    ):
        reference = rendered(path, user, at=at)
    assert fast == reference, (path, fast, reference)
    assert fast[0] == 200, fast
    return fast[1]
