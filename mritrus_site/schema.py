"""OpenAPI post-processing: document the error answers every operation can give.

DRF answers 401/403 (not logged in, wrong role), 404 (an object that is not there or not yours),
400 (a body or query that does not validate) and 405 from its generic machinery; drf-spectacular
documents none of them unless each view says so. This hook adds the ones missing, each with the
shape DRF really sends, so the schema is true for every answer (checked by schemathesis in
tests/test_api_schemathesis.py).
"""

from __future__ import annotations

from typing import Any

ERROR_DETAIL = "ErrorDetail"
VALIDATION_ERROR = "ValidationError"
DESCRIPTIONS = {
    "400": "The request does not validate: field → messages, or a detail",
    "401": "Not authenticated (token missing, unknown or expired)",
    "403": "Authenticated, but not allowed (role), or no credentials",
    "404": "No such object, or not one this user may see",
    "405": "Method not allowed",
    "429": "Too many requests (throttled or locked out)",
}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def error_responses_add(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """drf-spectacular POSTPROCESSING_HOOKS entry."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas[ERROR_DETAIL] = {
        "type": "object",
        "properties": {"detail": {"type": "string"}},
        "required": ["detail"],
    }
    # DRF validation errors: {"field": ["message", ...]} or {"detail": "..."}.
    schemas[VALIDATION_ERROR] = {
        "type": "object",
        "additionalProperties": {
            "oneOf": [
                {"type": "string"},
                {"type": "array", "items": {}},
                {"type": "object"},
            ]
        },
    }
    for path, item in result.get("paths", {}).items():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            responses = operation.setdefault("responses", {})
            codes = ["400", "401", "403", "404", "405"]
            if path.startswith("/api/auth/token/"):
                codes.append("429")
            for code in codes:
                if code in responses:
                    continue
                schema = _ref(VALIDATION_ERROR if code == "400" else ERROR_DETAIL)
                responses[code] = {
                    "description": DESCRIPTIONS[code],
                    "content": {"application/json": {"schema": schema}},
                }
    return result
