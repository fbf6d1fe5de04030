"""What every server-rendered page shares (docs/pages.md): who may open it, the
navigation, and the page that says "not for your role".

Pages are Django views rendering ``templates/``; they sign in with the session
(``/login/``), never a JWT in the browser's storage. A page that follows live
events gets a short-lived access token for its WebSocket from ``/board/token/``
(``bpmos.accounts.pages``), so the socket is checked exactly as the API's
clients are. Who may open a page is ``bpmos.access.PAGES``; what its buttons
may do is the API's own rule for that action (``bpmos.access.POLICY``), and the
buttons call the same services as the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse

from bpmos import access
from bpmos.adminkit import is_admin_reader


@dataclass(frozen=True)
class NavLink:
    name: str  # the page's URL name
    title: str


# The boards, in the order the navigation shows them.
BOARDS: tuple[NavLink, ...] = (
    NavLink("board-lines", "Plant board"),
    NavLink("board-alarms", "Alarm board"),
    NavLink("board-dispatch", "Dispatch board"),
)


def role_of(request) -> str | None:
    user = request.user
    return getattr(user, "role", None) if user.is_authenticated else None


def nav_links(request) -> list[dict]:
    """The links of the page header: the boards the user may open, and the
    back-office for its readers."""
    role = role_of(request)
    links = []
    for board in BOARDS:
        if not access.may_open_page(board.name, role):
            continue
        try:
            url = reverse(board.name)
        except NoReverseMatch:  # a board this installation does not serve
            continue
        links.append({"url": url, "title": board.title, "name": board.name})
    if request.user.is_authenticated and is_admin_reader(request):
        links.append(
            {"url": reverse("admin:index"), "title": "Back-office", "name": "admin"}
        )
    return links


def render_page(request, template: str, context: dict | None = None, status=200):
    """``template`` with the navigation and the signed-in user."""
    page_context = {
        "nav": nav_links(request),
        "current": getattr(request.resolver_match, "url_name", None),
        "plant_user": request.user if request.user.is_authenticated else None,
    }
    page_context.update(context or {})
    return render(request, template, page_context, status=status)


def page(name: str):
    """A page view opened by the roles of ``access.PAGES[name]``: anyone
    signed out is sent to the login page (then back), a signed-in user whose
    role may not open it gets the 403 page."""

    def decorate(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            role = role_of(request)
            if not access.may_open_page(name, role):
                if not request.user.is_authenticated:
                    return redirect_to_login(request.get_full_path())
                return render_page(
                    request,
                    "pages/forbidden.html",
                    {"page_name": name},
                    status=403,
                )
            return view(request, *args, **kwargs)

        wrapped.page_name = name
        return wrapped

    return decorate
