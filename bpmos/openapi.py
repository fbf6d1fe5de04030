"""OpenAPI: the schema class, and post-processing that documents the error
envelope and ``Idempotency-Key`` on every operation."""

from decimal import Decimal

from django.core.validators import RegexValidator
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import serializers

from bpmos.fields import TIME_PATTERN, PositiveDecimalField
from bpmos.textfields import BLANK_PATTERN, no_nul, not_blank


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's, saying that a request string DRF trims may not be
    blank after trimming (``NOT_BLANK_PATTERN``), that a bounded time is
    within its bounds (``TIME_PATTERN``) and a positive decimal above 0."""

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if (
            direction == "request"
            and schema.get("type") == "number"
            and isinstance(field, serializers.DecimalField)
        ):
            return _decimal_number(field, schema)
        if direction != "request" or schema.get("type") != "string":
            return schema
        if getattr(field, "bounded_time", False):
            # bpmos.fields.DateTimeField and the query serializers' times: the
            # bounds as a pattern (OpenAPI 3.0 has no date-time minimum).
            schema["pattern"] = TIME_PATTERN
        elif isinstance(field, serializers.DecimalField):
            # drf-spectacular's decimal pattern matches "", "-" and ".", which
            # DRF refuses ("A valid number is required."): not those. A
            # positive one takes no sign, and no value of zeros alone.
            pattern = schema.get("pattern", "")
            if pattern.startswith("^-?") and isinstance(field, PositiveDecimalField):
                schema["pattern"] = r"^(?![0.]*$)" + pattern[3:]
            elif pattern.startswith("^"):
                schema["pattern"] = r"^(?!-?\.?$)" + pattern[1:]
        elif (
            isinstance(field, serializers.CharField)
            and not ({"enum", "format", "pattern"} & schema.keys())
            # drf-spectacular adds a RegexValidator's pattern after this method
            # (only where none is set): leave it the field's own.
            and not any(isinstance(v, RegexValidator) for v in field.validators)
        ):
            if not field.allow_blank and field.trim_whitespace:
                not_blank(schema)
            else:
                no_nul(schema)
        return schema

    def _map_basic_serializer(self, serializer, direction):
        # "At least one of these number fields, not null" (``one_of_required``,
        # a class attribute): OpenAPI 3.0 has no ``dependentRequired``; an
        # ``anyOf`` of one-field ``required`` lists says it exactly. A
        # telemetry row with no measurement was schema-valid and refused.
        schema = super()._map_basic_serializer(serializer, direction)
        if direction == "request" and getattr(
            serializer, "refuses_unknown_fields", False
        ):
            # The service refuses a key it does not know ("Unknown field."):
            # only the declared properties (aliases declared too).
            schema["additionalProperties"] = False
        if direction == "request":
            # Rules of a property the field classes cannot say (a serializer's
            # ``property_rules``: name -> keywords, merged over the field's).
            properties = schema.get("properties", {})
            for name, rules in getattr(serializer, "property_rules", {}).items():
                if name in properties:
                    properties[name].update(rules)
            _empty_is_absent(serializer, schema)
        names = getattr(serializer, "one_of_required", ())
        if direction == "request" and names:
            schema["anyOf"] = [
                {
                    "required": [name],
                    "properties": {name: {"type": "number"}},
                }
                for name in names
            ]
        return schema

    def _unwrap_list_serializer(self, serializer, direction):
        # A list serializer's ``min_length``/``max_length`` (DRF 3.14) bound
        # the array; drf-spectacular leaves them out.
        schema = super()._unwrap_list_serializer(serializer, direction)
        if schema and isinstance(serializer, serializers.ListSerializer):
            if serializer.min_length is not None:
                schema["minItems"] = serializer.min_length
            if serializer.max_length is not None:
                schema["maxItems"] = serializer.max_length
        return schema

    def _get_request_for_media_type(self, serializer, direction="request"):
        # drf-spectacular documents every PATCH body as partial (all fields
        # optional), as DRF's ``partial_update`` reads it. A view whose PATCH
        # validates the whole body (``validated()``) says
        # ``patch_is_partial = False``, and its required fields stay required.
        if self.method == "PATCH" and not getattr(self.view, "patch_is_partial", True):
            self.method = "PUT"
            try:
                return super()._get_request_for_media_type(serializer, direction)
            finally:
                self.method = "PATCH"
        return super()._get_request_for_media_type(serializer, direction)


def _empty_is_absent(serializer, schema: dict) -> None:
    """An optional key its service reads as not given when sent as null
    (``"null"`` in the serializer's ``empty_is_absent``, a map of keys), or
    as null or "" (``"blank"``; ``"text"`` also white space alone), or as
    null, "", [] or {} (``"empty"``; ``"empty-text"`` also white space): the
    schema says so, or a fuzzer's
    ``{"testReport": null}`` is "invalid" and answered 201
    (``passports.services``' registration)."""
    properties = schema.get("properties", {})
    for name, how in getattr(serializer, "empty_is_absent", {}).items():
        prop = properties.get(name)
        if prop is None:
            continue
        if how != "null":
            described = {k: prop.pop(k) for k in ("description",) if k in prop}
            alone = dict(prop)
            prop.clear()
            # "text": the service strips it, so white space alone is blank.
            blank = (
                {"type": "string", "pattern": BLANK_PATTERN}
                if how in ("text", "empty-text")
                else {"type": "string", "enum": [""]}
            )
            either = [alone, blank]
            if how.startswith("empty"):  # also [] and {}
                either += [
                    {"type": "array", "maxItems": 0},
                    {"type": "object", "maxProperties": 0},
                ]
            prop.update(anyOf=either, **described)
        prop["nullable"] = True


def _decimal_number(field: serializers.DecimalField, schema: dict) -> dict:
    """A request decimal sent as a JSON number: its places as ``multipleOf``
    (the service refuses more: "at most 2 decimal places"; Schemathesis and
    ``jsonschema_rs`` judge a multiple exactly, as the service reads the
    number as written) and its bounds as JSON numbers, not Decimals."""
    if field.decimal_places is not None:
        schema["multipleOf"] = _json_number(Decimal(1).scaleb(-field.decimal_places))
    for key in ("minimum", "maximum"):
        if isinstance(schema.get(key), Decimal):
            schema[key] = _json_number(schema[key])
    return schema


def _json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


ERROR_SCHEMA = {
    "type": "object",
    "description": "The one error envelope every /api/ error uses.",
    "properties": {
        "success": {"type": "boolean", "enum": [False]},
        "error": {"type": "string", "description": "A message for a person."},
        "code": {"type": "string", "description": "A stable snake_case code."},
        "details": {
            "type": "object",
            "additionalProperties": True,
            "description": "Field errors (400) or other specifics.",
        },
        "request_id": {"type": "string", "description": "Also sent as X-Request-ID."},
    },
    "required": ["success", "error", "code", "details", "request_id"],
}

_ERRORS = {
    "400": "Invalid input; `details` names the fields.",
    "401": "No token, or an expired or revoked one.",
    "403": "Your role may not do this.",
    "404": "Not found.",
    "405": "Method not allowed.",
    "409": "Illegal state transition or conflict.",
    "429": "Throttled.",
    "500": "Unexpected error (logged with the request id).",
    "503": "A dependency is down.",
}


def add_error_envelope(result, generator, request, public):
    """drf-spectacular hook: add ``Error`` and reference it from every operation."""
    components = result.setdefault("components", {})
    components.setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            for status, description in _ERRORS.items():
                responses.setdefault(
                    status, {"description": description, "content": ref}
                )
            if "requestBody" in operation:  # bpmos.middleware.BodySizeLimitMiddleware
                responses.setdefault(
                    "413",
                    {"description": "The request body is too large.", "content": ref},
                )
    return result


# Read by bpmos.pagination.StandardPagination, where an empty value is "not
# given" (its own lists say so; a view that paginates by hand declares them).
_PAGE_PARAMETERS = ("page", "page_size")


def add_query_rules(result, generator, request, public):
    """drf-spectacular hook: a free-text query value may not hold NUL (a 400
    from ``bpmos.middleware`` for any /api/ query value); the parameters that
    may not be blank already say so (``NOT_BLANK_PATTERN``); ``?page=`` and
    ``?page_size=`` (empty) are "not given" wherever they are read."""
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                if parameter.get("in") != "query":
                    continue
                if parameter.get("name") in _PAGE_PARAMETERS:
                    parameter["allowEmptyValue"] = True
                schema = parameter.get("schema", {})
                if schema.get("type") == "array":
                    schema = schema.get("items", {})
                if schema.get("type") == "string" and not (
                    {"enum", "format", "pattern"} & schema.keys()
                ):
                    no_nul(schema)
    return result


IDEMPOTENCY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "Makes a retry safe (docs/api.md): the same key from the same user with "
        "the same method, path and body within 24 hours replays the first answer "
        "(with `Idempotent-Replayed: true`) instead of acting again; with another "
        "request it is refused (422 `idempotency_key_reused`); while the first "
        "still runs, 409 `idempotency_in_progress`. 5xx answers are not kept. "
        "1-255 printable ASCII characters (else 400 `idempotency_key_invalid`); "
        "a UUID per action is what clients send."
    ),
    # The server's rule (bpmos.idempotency.services.KEY_RE): printable ASCII.
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": 255,
        "pattern": "^[ -~]+$",
    },
}

_REPLAYED_HEADER = {
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored answer to an earlier "
        "request with the same Idempotency-Key.",
        "schema": {"type": "string", "enum": ["true"]},
    }
}


def add_idempotency_key(result, generator, request, public):
    """drf-spectacular hook: on every POST that honours ``Idempotency-Key``,
    the header parameter, its 409 and 422 answers, and the replay header."""
    from bpmos.idempotency.middleware import view_mode

    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    paths = result.get("paths", {})
    for raw_path, _regex, method, callback in generator.endpoints:
        if method != "POST" or view_mode(callback) is None:
            continue
        # The schema's paths are coerced ("{pk}" -> "{id}") as drf-spectacular
        # does when it builds them; "{pk}" is the only name it rewrites.
        path = raw_path
        if "{pk}" in raw_path and raw_path not in paths:
            path = generator.coerce_path(
                raw_path, method, generator.create_view(callback, method)
            )
        operation = paths.get(path, {}).get("post")
        if operation is None:
            continue
        parameters = operation.setdefault("parameters", [])
        if not any(p.get("name") == "Idempotency-Key" for p in parameters):
            parameters.append(IDEMPOTENCY_PARAMETER)
        responses = operation.setdefault("responses", {})
        conflict = responses.setdefault(
            "409", {"description": _ERRORS["409"], "content": ref}
        )
        conflict["description"] = (
            f"{conflict.get('description', '')} Also `idempotency_in_progress`: a "
            "request with this Idempotency-Key is still running (retry after "
            "`Retry-After` seconds)."
        ).strip()
        responses.setdefault(
            "422",
            {
                "description": "`idempotency_key_reused`: this Idempotency-Key "
                "was first sent with another method, path or body.",
                "content": ref,
            },
        )
        for status, response in responses.items():
            if status.startswith("2"):
                response.setdefault("headers", {}).update(_REPLAYED_HEADER)
    return result
