"""OpenAPI additions (drf-spectacular extensions and postprocessing hooks): the security
schemes, a tag per area, a summary on every operation, every error status an operation can
answer with the error envelope, and the rate-limit headers and 429 on every counted operation.

The authentication classes are named by dotted path, so the kernel imports no other room.
"""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from system.kernel.pagination import MAX_PAGE
from system.kernel.schema_fields import NON_BLANK_TEXT, TEXT
from system.kernel.schema_operations import OPERATIONS

_RATE_LIMIT_HEADERS = {
    "X-RateLimit-Limit": ("Requests allowed in the current one-minute window.", "integer"),
    "X-RateLimit-Remaining": ("Requests left in the current window.", "integer"),
    "X-RateLimit-Reset": ("Unix time at which the window resets.", "integer"),
}
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# Path prefix → tag; the first match wins, so longer prefixes come first.
_TAG_PREFIXES = (
    ("/api/v1/agents", "agents"),
    ("/api/v1/channels", "channels"),
    ("/api/messaging/submit", "channels"),
    ("/api/v1/sessions", "sessions"),
    ("/api/messaging/sessions", "ElizaOS sessions"),
    ("/api/v1/system", "system"),
    ("/api/v1/auth", "auth"),
    ("/api/v1/webhooks", "webhooks"),
    ("/api/workflows", "QuestFlow"),
    ("/api/agents/csuite", "QuestFlow"),
    ("/api/deploy", "QuestFlow"),
)
TAGS = {
    "agents": "Agents: create, configure, start, stop; their performance metrics.",
    "channels": "Channels, their members and messages (and ElizaOS central messaging).",
    "sessions": "Agent-user sessions with timeouts, heartbeat, renewal and expiry.",
    "ElizaOS sessions": "The ElizaOS-compatible sessions API: ElizaOS's paths, camelCase "
    "shapes and error codes; errors carry `success: false`.",
    "system": "Status, configuration, the event log and system tasks.",
    "auth": "JWT pairs and API keys.",
    "webhooks": "Signed webhooks (Standard Webhooks): endpoints, secret rotation, test "
    "events, the delivery log and retries.",
    "QuestFlow": "Workflows, C-suite meetings and Akash deployments.",
}

_ERROR_ENVELOPE = {
    "type": "object",
    "description": "Every error. The ElizaOS-compatible routes add `success: false`.",
    "required": ["error"],
    "properties": {
        "success": {"type": "boolean", "enum": [False]},
        "error": {
            "type": "object",
            "required": ["code", "message", "details", "timestamp", "request_id"],
            "properties": {
                "code": {"type": "string", "example": "agent_not_found"},
                "message": {"type": "string"},
                "details": {"description": "Structured details, e.g. field errors."},
                "timestamp": {"type": "string", "format": "date-time"},
                "request_id": {"type": "string"},
            },
        },
    },
}
# Two QuestFlow/ElizaOS routes answer a failed validation in their own upstream shapes.
_OWN_400_SHAPES = {
    "deploy_akash_create": {
        "type": "object",
        "description": "The Akash deployer's shape for an invalid configuration.",
        "required": ["success", "message", "error"],
        "properties": {
            "success": {"type": "boolean", "enum": [False]},
            "message": {"type": "string"},
            "error": {
                "type": "object",
                "required": ["code", "details"],
                "properties": {"code": {"type": "string"}, "details": {}},
            },
        },
    },
    "messaging_submit_create": {
        "type": "object",
        "description": "ElizaOS's shape for missing required fields.",
        "required": ["success", "error"],
        "properties": {
            "success": {"type": "boolean", "enum": [False]},
            "error": {"type": "string", "example": "Missing required fields: content"},
        },
    },
}

# Each error status: what it means, and the codes it carries wherever it is answered.
_TITLES = {
    400: ("Invalid input.", "`validation_error`, `malformed_request`"),
    401: ("Not authenticated.", ""),
    402: ("Payment required.", ""),
    403: ("The caller may not do this.", "`insufficient_permissions`"),
    404: ("Not found, or not the caller's to see.", "`not_found`"),
    409: ("Conflicts with the resource's current state.", ""),
    410: ("Gone.", ""),
    413: ("The request body is too large.", "`payload_too_large`"),
    415: ("The body is not JSON.", "`unsupported_media_type`"),
    422: ("Unprocessable.", ""),
    502: ("An upstream provider failed.", ""),
    503: ("Temporarily unavailable.", ""),
}
_AUTHENTICATION_CODES = (
    "`authentication_required`, `invalid_token`, `token_expired`, `unsupported_auth_scheme`"
)
_BODY_METHODS = {"post", "put", "patch"}
_TEXT = TEXT
_NON_BLANK_TEXT = NON_BLANK_TEXT
# Any JSON value, for request schemas to refer to: `{"$ref": "#/components/schemas/JsonValue"}`
# (free-form JSON is stored as system.kernel.schema_fields.storable_json makes it).
_JSON_VALUE = {
    "description": "Any JSON value. A NUL character, which PostgreSQL cannot store, is kept "
    "as U+FFFD.",
    "nullable": True,
    "anyOf": [
        {"type": "string"},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "array", "items": {"$ref": "#/components/schemas/JsonValue"}},
        {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/JsonValue"}},
    ],
}
# What system.kernel.pagination refuses with a 400, as bounds a client can read (a `limit`
# above a list's maximum is capped, not refused).
_PAGE_BOUNDS = {"page": {"minimum": 1, "maximum": MAX_PAGE}, "limit": {"minimum": 1}}


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """An API key goes bare in `X-API-KEY` (what Swagger's Authorize sends, and ElizaOS
    clients) or as `Authorization: ApiKey <key>` (the spec); either one suffices."""

    target_class = "system.auth.authentication.ApiKeyAuthentication"
    # Subclasses too (the status view's outage-tolerant variants), over their own extensions.
    match_subclasses = True
    priority = 1
    name = ["X-API-KEY", "ApiKey"]

    def get_security_requirement(self, auto_schema: Any) -> list[dict[str, list]]:
        return [{name: []} for name in self.name]

    def get_security_definition(self, auto_schema: Any) -> list[dict[str, str]]:
        if type(self.target) is not self.target_class:
            return []  # a subclass: the base class's components stand for it
        return [
            {
                "type": "apiKey",
                "in": "header",
                "name": "X-API-KEY",
                "description": "The API key itself, e.g. `371os_ab12cd34_...`: paste it as is.",
            },
            {
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": "`ApiKey <key>`: type the word `ApiKey`, a space, then the key.",
            },
        ]


class BearerAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "system.auth.authentication.BearerAuthentication"
    match_subclasses = True
    priority = 1
    name = ["Bearer"]

    def get_security_definition(self, auto_schema: Any) -> list[dict[str, str]]:
        if type(self.target) is not self.target_class:
            return []
        return [
            {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "An access token from `POST /api/v1/auth/token`.",
            }
        ]


def _operations(result: dict[str, Any]):
    for path, path_item in result.get("paths", {}).items():
        for method, operation in path_item.items():
            if method in _METHODS:
                yield path, method, operation


def add_rate_limit_headers(result: dict[str, Any], generator: Any, **kwargs: Any) -> dict:
    """The rate-limit headers on every response, and 429 on every operation."""
    headers = {
        name: {"description": text, "schema": {"type": kind}}
        for name, (text, kind) in _RATE_LIMIT_HEADERS.items()
    }
    components = result.setdefault("components", {})
    components.setdefault("schemas", {})["Error"] = _ERROR_ENVELOPE
    components.setdefault("headers", {}).update(headers)
    refs = {name: {"$ref": f"#/components/headers/{name}"} for name in headers}
    components.setdefault("responses", {})["RateLimitExceeded"] = {
        "description": "Rate limit exceeded: `rate_limit_exceeded`.",
        "headers": {**refs, "Retry-After": {"schema": {"type": "integer"}}},
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    for _path, _method, operation in _operations(result):
        responses = operation.get("responses", {})
        for response in responses.values():
            if "$ref" not in response:
                response.setdefault("headers", {}).update(refs)
        responses.setdefault("429", {"$ref": "#/components/responses/RateLimitExceeded"})
    return result


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _statuses(path: str, method: str, operation: dict[str, Any]) -> dict[int, list[str]]:
    """The generic error statuses an operation can answer, from its shape, with their codes."""
    statuses: dict[int, list[str]] = {}
    if any(requirement for requirement in operation.get("security", [])):
        statuses[401] = [_AUTHENTICATION_CODES]
        statuses[403] = []
    if "{" in path:
        statuses[404] = []
    if any(p.get("in") == "query" for p in operation.get("parameters", [])):
        statuses[400] = []
    if method in _BODY_METHODS:
        statuses[413] = []
        if "requestBody" in operation:
            statuses[400] = []
            statuses[415] = []
    return statuses


def _bound_query_parameter(parameter: dict[str, Any]) -> None:
    """`page`/`limit` bounds; and an optional query parameter may be empty, meaning absent:
    every view reads them so (`if params.get(name)`, the page numbers, django-filter, and DRF
    serializers over `request.query_params`), e.g. `?status=` lists everything."""
    if parameter.get("in") != "query":
        return
    schema = parameter.get("schema", {})
    bounds = _PAGE_BOUNDS.get(parameter["name"])
    if bounds and schema.get("type") == "integer":
        schema.update(bounds)
    if not parameter.get("required"):
        parameter["allowEmptyValue"] = True


def _refuse_blank_text(schemas: dict[str, Any]) -> None:
    """What DRF's CharField refuses, in request shapes (COMPONENT_SPLIT_REQUEST names them
    `...Request`): a NUL character anywhere, and, where the field may not be blank, text of
    whitespace alone (it trims first, so `"\\t"` is blank)."""
    for name, component in schemas.items():
        if not name.endswith("Request"):
            continue
        for field in component.get("properties", {}).values():
            free_text = not {"enum", "format", "pattern"} & field.keys()
            if field.get("type") == "string" and free_text:
                non_blank = field.get("minLength", 0) >= 1
                field["pattern"] = _NON_BLANK_TEXT if non_blank else _TEXT


def _require_raw_body(operation: dict[str, Any]) -> None:
    """A request body given as raw JSON Schema (drf-spectacular leaves it optional) is
    required when its schema requires properties, as a serializer's is."""
    body = operation.get("requestBody", {})
    schema = body.get("content", {}).get("application/json", {}).get("schema", {})
    branches = schema.get("oneOf") or []
    if schema.get("required") or (branches and all(b.get("required") for b in branches)):
        body["required"] = True


def _describe(status: int, codes: list[str]) -> str:
    title, generic = _TITLES[status]
    codes = [c.rstrip(".") for c in (generic, *codes) if c]
    return f"{title} Codes: {', '.join(codes)}." if codes else title


def add_error_responses(result: dict[str, Any], generator: Any, **kwargs: Any) -> dict:
    """drf-spectacular postprocessing hook: the error envelope schema, every error status each
    operation can answer (generic ones from its shape, domain ones from `OPERATIONS`), a
    summary on every operation and a tag per area."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = _ERROR_ENVELOPE
    schemas["JsonValue"] = _JSON_VALUE
    for path, method, operation in _operations(result):
        summary, domain = OPERATIONS.get(operation.get("operationId", ""), ("", {}))
        if summary and not operation.get("summary"):
            operation["summary"] = summary
        if not operation.get("description"):
            operation["description"] = operation.get("summary", "")
        tag = next((tag for prefix, tag in _TAG_PREFIXES if path.startswith(prefix)), None)
        if tag is not None:
            operation["tags"] = [tag]
        for parameter in operation.get("parameters", []):
            _bound_query_parameter(parameter)
        _require_raw_body(operation)
        statuses = _statuses(path, method, operation)
        for status, codes in domain.items():
            statuses.setdefault(status, []).append(codes)
        responses = operation.setdefault("responses", {})
        for status, codes in sorted(statuses.items()):
            responses.setdefault(str(status), _error(_describe(status, codes)))
        own = _OWN_400_SHAPES.get(operation.get("operationId", ""))
        if own is not None:
            responses["400"]["content"]["application/json"]["schema"] = {
                "anyOf": [{"$ref": "#/components/schemas/Error"}, own]
            }
    _refuse_blank_text(result["components"]["schemas"])
    used = {tag for _p, _m, op in _operations(result) for tag in op.get("tags", [])}
    result["tags"] = [
        {"name": name, "description": text} for name, text in TAGS.items() if name in used
    ]
    return result


def postprocess_schema(result: dict[str, Any], generator: Any, **kwargs: Any) -> dict:
    """The one drf-spectacular postprocessing hook of ours (SPECTACULAR_SETTINGS)."""
    result = add_error_responses(result, generator, **kwargs)
    return add_rate_limit_headers(result, generator, **kwargs)
