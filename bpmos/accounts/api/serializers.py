"""Shapes of the auth endpoints (mobile contract: snake_case)."""

from rest_framework import serializers

from bpmos.accounts.models import User
from bpmos.roles import Role


class UserSerializer(serializers.ModelSerializer):
    """A user as the apps see it."""

    # A plain string, not format "email": a user may have none (""), which an
    # email-format schema would declare invalid.
    email = serializers.CharField(
        read_only=True, help_text="E-mail address; empty when none is set."
    )

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "role",
            "email",
            "first_name",
            "last_name",
            "is_active",
            "last_login",
            "date_joined",
        ]
        read_only_fields = fields


class LoginSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(
        max_length=128, trim_whitespace=False, write_only=True
    )


class LoginResponseSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()
    token_type = serializers.CharField()
    expires_in = serializers.IntegerField(
        help_text="Seconds until the access token expires."
    )
    user = UserSerializer()


class RefreshSerializer(serializers.Serializer):
    refresh = serializers.CharField()


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class RegisterSerializer(serializers.Serializer):
    username = serializers.RegexField(
        r"^[\w.@+-]+\Z", max_length=150, help_text="Letters, digits and @/./+/-/_ only."
    )
    password = serializers.CharField(
        max_length=128, trim_whitespace=False, write_only=True
    )
    role = serializers.ChoiceField(choices=Role.choices)
    # No default="": the schema would declare '' as the default of an email-format
    # string, which OpenAPI validators reject; user_register defaults it instead.
    # The column's length: DRF's EmailField has none, and Django's validator
    # takes up to 320 characters, past the 254 of the column (a 500 on
    # PostgreSQL).
    email = serializers.EmailField(
        required=False,
        allow_blank=True,
        max_length=User._meta.get_field("email").max_length,
    )
    first_name = serializers.CharField(
        required=False, allow_blank=True, max_length=150, default=""
    )
    last_name = serializers.CharField(
        required=False, allow_blank=True, max_length=150, default=""
    )


class RoleChangeSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)
