"""Auth endpoints: thin views over bpmos.accounts.services."""

from django.conf import settings
from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from bpmos.accounts import services
from bpmos.accounts.api import serializers as s
from bpmos.accounts.api.throttles import LoginFailureThrottle
from bpmos.accounts.authentication import (
    BpmosTokenRefreshSerializer,
    refresh_token_for,
)
from bpmos.accounts.models import User
from bpmos.accounts.services import logged_in_record, login_failed_record
from bpmos.errors import DomainError
from bpmos.idempotency import EXEMPT
from bpmos.views import BpmosAPIView


class LoginFailed(DomainError):
    status_code = 401
    code = "invalid_credentials"


class PublicAuthView(BpmosAPIView):
    """A view reached without an access token that still answers 401 (not 403)."""

    authentication_classes: list = []
    # No user to hold a key, and the answers carry tokens: never stored.
    idempotency = EXEMPT

    def get_authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class LoginView(PublicAuthView):
    """Exchange a username and password for an access and a refresh token."""

    throttle_classes = [LoginFailureThrottle]

    @extend_schema(
        request=s.LoginSerializer, responses={200: s.LoginResponseSerializer}
    )
    def post(self, request):
        data = self.validated(s.LoginSerializer)
        user = authenticate(
            request,
            username=data["username"],
            password=data["password"],
        )
        if user is None:
            LoginFailureThrottle().record_failure(request)
            login_failed_record(username=data["username"])
            raise LoginFailed(
                "Wrong username or password, or the account is deactivated."
            )
        refresh = refresh_token_for(user)
        access = refresh.access_token
        logged_in_record(user=user)
        return Response(
            {
                "access": str(access),
                "refresh": str(refresh),
                "token_type": "bearer",
                "expires_in": int(
                    settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds()
                ),
                "user": s.UserSerializer(user).data,
            }
        )


class RefreshView(PublicAuthView):
    """Trade a refresh token for a new pair; the old refresh token is blacklisted."""

    @extend_schema(request=s.RefreshSerializer, responses={200: s.TokenPairSerializer})
    def post(self, request):
        serializer = BpmosTokenRefreshSerializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except TokenError as exc:
            raise InvalidToken(exc.args[0]) from exc
        return Response(serializer.validated_data)


class LogoutView(BpmosAPIView):
    """Blacklist the caller's refresh token."""

    # Idempotent by itself: a token blacklisted twice is blacklisted.
    idempotency = EXEMPT

    @extend_schema(request=s.RefreshSerializer, responses={204: None})
    def post(self, request):
        data = self.validated(s.RefreshSerializer)
        services.user_logout(refresh=data["refresh"], actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(BpmosAPIView):
    """The signed-in user."""

    @extend_schema(responses={200: s.UserSerializer})
    def get(self, request):
        return self.respond(s.UserSerializer, request.user)


class RegisterView(BpmosAPIView):
    """Create a user (admins only: a plant has no open self-registration)."""

    @extend_schema(request=s.RegisterSerializer, responses={201: s.UserSerializer})
    def post(self, request):
        data = self.validated(s.RegisterSerializer)
        user = services.user_register(actor=request.user, **data)
        return self.respond(s.UserSerializer, user, status=status.HTTP_201_CREATED)


class UserListView(generics.ListAPIView):
    """Every user, filterable by role and active flag."""

    queryset = User.objects.order_by("username")
    serializer_class = s.UserSerializer
    filterset_fields = ["role", "is_active"]
    search_fields = ["username", "first_name", "last_name", "email"]
    ordering_fields = ["username", "date_joined", "last_login"]


class UserDetailView(generics.RetrieveAPIView):
    """One user."""

    queryset = User.objects.all()
    serializer_class = s.UserSerializer


class UserRoleView(BpmosAPIView):
    """Change a user's role; effective on their very next request."""

    # The PATCH body is read whole (``validated()``): its schema says so.
    patch_is_partial = False

    @extend_schema(request=s.RoleChangeSerializer, responses={200: s.UserSerializer})
    def patch(self, request, pk: int):
        data = self.validated(s.RoleChangeSerializer)
        user = services.user_role_change(
            user_id=pk, role=data["role"], actor=request.user
        )
        return self.respond(s.UserSerializer, user)


class UserDeactivateView(BpmosAPIView):
    """Deactivate a user: their tokens stop working on the next request."""

    @extend_schema(request=None, responses={200: s.UserSerializer})
    def post(self, request, pk: int):
        user = services.user_set_active(user_id=pk, active=False, actor=request.user)
        return self.respond(s.UserSerializer, user)


class UserReactivateView(BpmosAPIView):
    """Reactivate a deactivated user."""

    @extend_schema(request=None, responses={200: s.UserSerializer})
    def post(self, request, pk: int):
        user = services.user_set_active(user_id=pk, active=True, actor=request.user)
        return self.respond(s.UserSerializer, user)
