"""Validation of a message's content and metadata, shared by the services, the admin's form
and the sessions that post through them."""

import json
from typing import Any

from messaging.exceptions import InvalidMessageContent
from system.kernel.exceptions import ValidationFailed

MAX_CONTENT = 32_000
MAX_METADATA_BYTES = 16 * 1024


def validate_content(content: Any) -> str:
    if not isinstance(content, str) or not content.strip():
        raise InvalidMessageContent("Message content must be a non-empty string.")
    if len(content) > MAX_CONTENT:
        raise InvalidMessageContent(
            f"Message content is over {MAX_CONTENT} characters.",
            details={"max_length": MAX_CONTENT},
        )
    return content


def validate_metadata(metadata: Any) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise ValidationFailed(details={"metadata": ["Must be an object."]})
    if len(json.dumps(metadata, default=str).encode()) > MAX_METADATA_BYTES:
        raise ValidationFailed(
            details={"metadata": [f"At most {MAX_METADATA_BYTES} bytes of JSON."]}
        )
    return metadata
