"""Routes of the dispatch desk, exactly as the dispatch contract spells them
(a trailing slash is accepted too). The stream's path is served by the ASGI
consumer (``bpmos.asgi``); its route here documents it and answers WSGI. The
contract's ``dashboard/status`` is routed by ``bpmos.dashboards``."""

from django.urls import re_path

from passports.dispatch.api import views

urlpatterns = [
    re_path(
        r"^live-products/dispatchable/?$",
        views.DispatchableView.as_view(),
        name="dispatch-dispatchable",
    ),
    re_path(
        r"^live-products/dispatchable/stream/?$",
        views.StreamView.as_view(),
        name="dispatch-stream",
    ),
    re_path(
        r"^live-products/dispatchable/stream-ticket/?$",
        views.StreamTicketView.as_view(),
        name="dispatch-stream-ticket",
    ),
    re_path(
        r"^products/lifecycle/?$",
        views.LifecycleView.as_view(),
        name="dispatch-lifecycle",
    ),
    re_path(
        r"^products/move-to-past/?$",
        views.MoveToPastView.as_view(),
        name="dispatch-move-to-past",
    ),
]
