"""A JSONField documented with an exact schema, and what PostgreSQL can store of text.

Input serializers that only check a body's shape (the services validate the values, so that
every problem comes back in one domain error) take any JSON in a JSONField; its OpenAPI schema
must still say what the services accept, or clients (and Schemathesis) believe anything,
null included, is valid. `SchemaJSONField(schema)` parses as a JSONField and is documented as
`schema`: a dict, or a callable returning one when the schema is generated (values read from
configuration, such as the model aliases).
"""

from collections.abc import Callable
from typing import Any

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers

Schema = dict[str, Any] | Callable[[], dict[str, Any]]
# PostgreSQL stores no NUL character. What Python's str.strip() removes, spelled out, as JSON
# Schema's `\s` (ECMA-262) is another set.
SPACE = r"\t-\r\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
TEXT = r"^[^\u0000]*$"
NON_BLANK_TEXT = rf"^[^\u0000]*[^\u0000{SPACE}][^\u0000]*$"


class SchemaJSONField(serializers.JSONField):
    def __init__(self, schema: Schema, **kwargs: Any) -> None:
        self.openapi_schema = schema
        super().__init__(**kwargs)


class SchemaJSONFieldExtension(OpenApiSerializerFieldExtension):
    target_class = SchemaJSONField
    match_subclasses = True

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema = self.target.openapi_schema
        schema = dict(schema() if callable(schema) else schema)
        if self.target.help_text:
            schema.setdefault("description", str(self.target.help_text))
        return schema


def storable_json(value: Any) -> Any:
    """Free-form JSON as PostgreSQL's jsonb can hold it: a NUL character, in a key or in text,
    becomes U+FFFD (the replacement character). Typed text refuses NUL instead (`TEXT`)."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {storable_json(k): storable_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable_json(item) for item in value]
    return value
