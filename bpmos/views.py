"""The one shape of an API view: parse the input, call one service or selector,
serialize the output (as the HackSoft styleguide's APIs and NetBox's base view).

Views hold no rule. What every view did by hand (a serializer built on the body,
``is_valid(raise_exception=True)``, ``Response(Serializer(obj).data)``) is here
once; the error envelope, authentication and the role check stay where they are
(``bpmos.errors``'s handler, the settings' defaults, ``bpmos.permissions``).
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from bpmos.filters import EMPTY_VALUE_MESSAGE, empty_parameters


def _refuse_empty_values(data, serializer) -> None:
    """A 400 naming each query parameter sent empty that may not be blank.

    DRF reads an empty form value of an optional field as "not given", so
    ``?until=`` was the default period although the schema declares no
    ``allowEmptyValue`` (the same rule as ``bpmos.filters.FilterSet``'s).
    """
    names = [
        name
        for name, field in serializer.fields.items()
        if not getattr(field, "allow_blank", False)
    ]
    empty = empty_parameters(data, names)
    if empty:
        raise serializers.ValidationError(
            {name: [EMPTY_VALUE_MESSAGE] for name in empty}
        )


class ApiViewMixin:
    """``validated()`` for the input and ``respond()`` for the output."""

    request: Any

    def validated(
        self, serializer_class: type[serializers.Serializer], *, query: bool = False
    ) -> Any:
        """The request body (or, with ``query``, the query string) checked by
        ``serializer_class``: its ``validated_data``, or a 400 in the envelope."""
        data = self.request.query_params if query else self.request.data
        serializer = serializer_class(data=data)
        if query:
            _refuse_empty_values(data, serializer)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    @staticmethod
    def respond(
        serializer_class: type[serializers.Serializer],
        instance: Any,
        *,
        many: bool = False,
        status: int | None = None,
    ) -> Response:
        """``instance`` serialized by ``serializer_class`` (status 200 unless given)."""
        return Response(serializer_class(instance, many=many).data, status=status)


class BpmosAPIView(ApiViewMixin, APIView):
    """The base of the API's hand-written views (``APIView`` with the shape above)."""
