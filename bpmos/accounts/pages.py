"""The plant's own sign-in page, ``/`` and the live pages' socket token
(docs/pages.md).

Every role signs in here (the admin's login takes staff accounts only). The
password check, the throttle on failures and the audit records are the API
login's (``bpmos.accounts.api``): a failed page login counts toward the same
limit and lands in the audit log as ``user.login_failed``.
"""

from __future__ import annotations

from types import SimpleNamespace

from django import forms
from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import resolve_url
from django.urls import NoReverseMatch
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from bpmos import access
from bpmos.accounts.api.throttles import LoginFailureThrottle
from bpmos.accounts.authentication import access_token_for
from bpmos.accounts.services import logged_in_record, login_failed_record
from bpmos.pagekit import nav_links, page, render_page


def _throttle_request(request, username: str):
    """What the API's throttle reads of a request: the address and the name."""
    return SimpleNamespace(META=request.META, data={"username": username})


class PlantLoginForm(AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "Wrong username or password, or the account is deactivated.",
        "throttled": "Too many failed sign-ins. Wait a minute and try again.",
    }

    def clean(self):
        username = (self.data.get("username") or "")[:150]
        throttle = LoginFailureThrottle()
        probe = _throttle_request(self.request, username)
        if not throttle.allow_request(probe, None):
            raise forms.ValidationError(
                self.error_messages["throttled"], code="throttled"
            )
        try:
            return super().clean()
        except forms.ValidationError:
            throttle.record_failure(probe)
            login_failed_record(username=username, via="page")
            raise


class PlantLoginView(auth_views.LoginView):
    """``/login/``: any active plant user, any role."""

    form_class = PlantLoginForm
    template_name = "pages/login.html"
    redirect_authenticated_user = True
    extra_context = {"hide_sign_in": True}

    def form_valid(self, form):
        response = super().form_valid(form)
        logged_in_record(user=form.get_user(), via="page")
        return response


class PlantLogoutView(auth_views.LogoutView):
    """``/logout/`` (POST): ends the session, back to the sign-in page."""

    next_page = "page-login"


@never_cache
@page("page-home")
def home(request):
    """``/``: the signed-in user's own board (``access.HOME_PAGE``)."""
    target = access.HOME_PAGE.get(request.user.role, "board-lines")
    try:
        return HttpResponseRedirect(resolve_url(target))
    except NoReverseMatch:  # a board this installation does not serve
        links = nav_links(request)
        if links:
            return HttpResponseRedirect(links[0]["url"])
        return render_page(request, "pages/forbidden.html", status=403)


@never_cache
@require_POST
@page("page-token")
def socket_token(request):
    """``POST /board/token/``: a fresh access token for the page's WebSocket
    (CSRF-checked; the session is the credential). Nothing is stored."""
    token = access_token_for(request.user)
    lifetime = settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"]
    return JsonResponse(
        {"access": str(token), "expiresIn": int(lifetime.total_seconds())},
        headers={"Cache-Control": "no-store"},
    )
