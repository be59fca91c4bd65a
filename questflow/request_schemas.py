"""The OpenAPI request bodies of the QuestFlow routes, exactly as strict as their validation
(questflow.services, questflow.akash): a request these schemas call valid is accepted, and
one they call invalid is refused with a 400.

Raw JSON Schema, not serializers: "a template or steps, not both" is a `oneOf`. Text never
holds a NUL character (PostgreSQL cannot store one; the views refuse it).
"""

from typing import Any

from questflow.akash import DEFAULT_IMAGE
from questflow.services.workflows import MAX_INSTRUCTION, MAX_STEPS
from questflow.templates import workflow_templates
from system.kernel.schema_fields import NON_BLANK_TEXT as _NON_BLANK
from system.kernel.schema_fields import SPACE as _SPACE
from system.kernel.schema_fields import TEXT as _TEXT

# questflow.akash.SIZE, for an amount above zero (JSON Schema patterns take no flags).
_SIZE = (
    rf"^[{_SPACE}]*(\d*[1-9]\d*(\.\d+)?|\d+\.\d*[1-9]\d*)\s*"
    rf"([KkMmGgTt][IiBb]?)[{_SPACE}]*$"
)
DEPLOY_CONFIG_KEYS = ("cpu", "memory", "storage", "image", "port", "count")


def _text(*, min_length: int = 0, max_length: int | None = None, **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "pattern": _NON_BLANK if min_length else _TEXT}
    if max_length is not None:
        schema["maxLength"] = max_length
    return {**schema, **extra}


def workflow_create_schema() -> dict[str, Any]:
    names = [n for t in workflow_templates().values() for n in (t.key, t.name)]
    step = {
        "type": "object",
        "required": ["agent", "instruction"],
        "properties": {
            "agent": {**_text(max_length=100), "minLength": 1, "description": "Type, name or id"},
            "instruction": _text(min_length=1, max_length=MAX_INSTRUCTION),
        },
    }
    return {
        "type": "object",
        "description": "A template (by key or name) or your own steps: exactly one of them.",
        "properties": {
            "template": {"type": "string", "enum": list(dict.fromkeys(names))},
            "steps": {"type": "array", "minItems": 1, "maxItems": MAX_STEPS, "items": step},
            "name": _text(min_length=1, max_length=200, nullable=True),
            "input": {
                "type": "object",
                "nullable": True,
                "description": "At most 16 KiB.",
                "additionalProperties": {"$ref": "#/components/schemas/JsonValue"},
            },
        },
        "oneOf": [{"required": ["template"]}, {"required": ["steps"]}],
    }


MEETING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every field is optional: the CEO, CTO, CFO and CMO, on two default items.",
    "properties": {
        "participants": {
            "type": "array",
            "nullable": True,
            "minItems": 1,
            "maxItems": 9,
            "items": _text(),
            "description": "Roles (CEO, CTO …) or agent types; 409 when one has no running agent.",
        },
        "agenda": {
            "type": "array",
            "nullable": True,
            "minItems": 1,
            "maxItems": 10,
            "items": {**_text(max_length=300), "minLength": 1},
        },
        "topic": _text(max_length=200, nullable=True),
    },
}

DEPLOY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "config"],
    "properties": {
        "name": {
            "type": "string",
            "pattern": r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
            "description": "A DNS label.",
        },
        "config": {
            "type": "object",
            "required": ["cpu", "memory", "storage"],
            "additionalProperties": False,
            "properties": {
                "cpu": {"type": "number", "minimum": 0.1, "maximum": 256},
                "memory": {"type": "string", "pattern": _SIZE, "example": "1Gi"},
                "storage": {"type": "string", "pattern": _SIZE, "example": "10GB"},
                "image": {
                    "type": "string",
                    "maxLength": 255,
                    "pattern": rf"^[^ \u0000]*[^ \u0000{_SPACE}][^ \u0000]*$",
                    "default": DEFAULT_IMAGE,
                },
                "port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 80},
                "count": {"type": "integer", "minimum": 1, "maximum": 100, "default": 1},
            },
        },
    },
}
