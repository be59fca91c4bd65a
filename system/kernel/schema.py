"""OpenAPI additions: the API-key security scheme, and the rate-limit headers and 429 response
on every operation that is counted."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension

_RATE_LIMIT_HEADERS = {
    "X-RateLimit-Limit": ("Requests allowed in the current one-minute window.", "integer"),
    "X-RateLimit-Remaining": ("Requests left in the current window.", "integer"),
    "X-RateLimit-Reset": ("Unix time at which the window resets.", "integer"),
}


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "system.auth.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`ApiKey <key>`; the header `X-API-KEY: <key>` is accepted too.",
        }


def add_rate_limit_headers(result: dict[str, Any], generator: Any, **kwargs: Any) -> dict:
    """drf-spectacular postprocessing hook."""
    headers = {
        name: {"description": text, "schema": {"type": kind}}
        for name, (text, kind) in _RATE_LIMIT_HEADERS.items()
    }
    components = result.setdefault("components", {})
    components.setdefault("headers", {}).update(headers)
    refs = {name: {"$ref": f"#/components/headers/{name}"} for name in headers}
    components.setdefault("responses", {})["RateLimitExceeded"] = {
        "description": "Rate limit exceeded (`rate_limit_exceeded`).",
        "headers": {**refs, "Retry-After": {"schema": {"type": "integer"}}},
    }
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.get("responses", {})
            for response in responses.values():
                if "$ref" not in response:
                    response.setdefault("headers", {}).update(refs)
            responses.setdefault("429", {"$ref": "#/components/responses/RateLimitExceeded"})
    return result


class BearerAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "system.auth.authentication.BearerAuthentication"
    name = "BearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
