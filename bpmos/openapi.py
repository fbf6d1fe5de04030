"""OpenAPI post-processing: document the error envelope on every operation."""

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
