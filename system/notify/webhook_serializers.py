"""The shapes of /api/v1/webhooks: input bodies (shape only: system.notify.webhooks checks the
values, so every refusal is one domain error) and answers. The secret appears only in
WebhookCreatedSerializer / WebhookSecretSerializer, the answers of create and rotate-secret."""

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from system.kernel.schema_fields import SchemaJSONField
from system.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from system.notify.webhooks import (
    ANY_EVENT,
    FILTER_KEYS,
    MAX_DESCRIPTION,
    MAX_EVENT_TYPES,
    event_types_valid,
)

MAX_URL = 2048
DELIVERY_DEFAULT_LIMIT = 20
DELIVERY_MAX_LIMIT = 100
_MAX_ID = 2**63 - 1

_URL = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_URL,
    "description": "Where deliveries are POSTed: https, resolving to public addresses only "
    "(unless the server sets WEBHOOK_ALLOW_HTTP / WEBHOOK_ALLOW_PRIVATE).",
    "example": "https://example.com/hooks/371os",
}


def _event_types_schema() -> dict[str, Any]:
    return {
        "description": 'The event types to receive, or ["*"] for every one.',
        "oneOf": [
            {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_EVENT_TYPES,
                "items": {"type": "string", "enum": event_types_valid()},
            },
            {
                "type": "array",
                "minItems": 1,
                "maxItems": 1,
                "items": {"type": "string", "enum": [ANY_EVENT]},
            },
        ],
        "example": ["agent_status_update", "workflow_update"],
    }


_FILTER = {
    "type": "object",
    "nullable": True,
    "additionalProperties": False,
    "properties": {
        key: {"type": "string", "format": "uuid", "nullable": True} for key in FILTER_KEYS
    },
    "description": "Only events about this agent / channel / session (all given must match).",
}
_DESCRIPTION = {"type": "string", "maxLength": MAX_DESCRIPTION}
_ENABLED = {"type": "boolean", "description": "Re-enabling clears disabled_reason."}


class WebhookUpdateInputSerializer(serializers.Serializer):
    url = SchemaJSONField(_URL, required=False)
    event_types = SchemaJSONField(_event_types_schema, required=False)
    filter = SchemaJSONField(_FILTER, required=False, allow_null=True)
    description = SchemaJSONField(_DESCRIPTION, required=False)
    enabled = SchemaJSONField(_ENABLED, required=False)


class WebhookCreateInputSerializer(serializers.Serializer):
    url = SchemaJSONField(_URL)
    event_types = SchemaJSONField(_event_types_schema)
    filter = SchemaJSONField(_FILTER, required=False, allow_null=True)
    description = SchemaJSONField(_DESCRIPTION, required=False)


class WebhookFilterSerializer(serializers.Serializer):
    agent_id = serializers.UUIDField(required=False)
    channel_id = serializers.UUIDField(required=False)
    session_id = serializers.UUIDField(required=False)


class WebhookSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="endpoint_id")
    event_types = serializers.ListField(child=serializers.CharField())
    filter = WebhookFilterSerializer()
    previous_secret_expires_at = serializers.SerializerMethodField(
        help_text="Until when the secret before the last rotation still signs (null: none)."
    )

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "event_types",
            "filter",
            "description",
            "enabled",
            "disabled_reason",
            "failing_since",
            "previous_secret_expires_at",
            "created_at",
            "updated_at",
        ]

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_previous_secret_expires_at(self, endpoint: WebhookEndpoint) -> Any:
        if not endpoint.previous_secret:
            return None
        return endpoint.previous_secret_expires_at


class WebhookCreatedSerializer(WebhookSerializer):
    # The endpoint's current secret: this serializer answers only create and rotate-secret.
    secret = serializers.CharField(
        help_text="The signing secret (whsec_...): shown in this answer only.",
    )

    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "secret"]


class WebhookPaginationSerializer(serializers.Serializer):
    page = serializers.IntegerField()
    limit = serializers.IntegerField()
    total = serializers.IntegerField()


class WebhookListSerializer(serializers.Serializer):
    webhooks = WebhookSerializer(many=True)
    pagination = WebhookPaginationSerializer()


# Inside allOf: drf-spectacular's enum hook would otherwise name it after every other "status".
_STATUS = {
    "allOf": [{"type": "string", "enum": WebhookDelivery.Status.values}],
    "description": "pending (waiting for its turn or its next try), succeeded, failed (final).",
}


@extend_schema_field(_STATUS)
class DeliveryStatusField(serializers.CharField):
    pass


@extend_schema_field(_STATUS)
class DeliveryStatusChoiceField(serializers.ChoiceField):
    pass


class WebhookDeliverySerializer(serializers.ModelSerializer):
    status = DeliveryStatusField()
    next_retry_at = serializers.SerializerMethodField(help_text="When pending: the next try.")

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event_id",
            "event_type",
            "message_id",
            "status",
            "attempts",
            "last_status_code",
            "last_latency_ms",
            "last_error",
            "next_retry_at",
            "created_at",
            "finished_at",
        ]

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_next_retry_at(self, delivery: WebhookDelivery) -> Any:
        pending = delivery.status == WebhookDelivery.Status.PENDING
        return delivery.next_attempt_at if pending else None


class WebhookAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["number", "started_at", "finished_at", "status_code", "latency_ms", "error"]


class WebhookDeliveryDetailSerializer(WebhookDeliverySerializer):
    attempt_log = WebhookAttemptSerializer(source="tries", many=True)

    class Meta(WebhookDeliverySerializer.Meta):
        fields = [*WebhookDeliverySerializer.Meta.fields, "attempt_log"]


class DeliveryQuerySerializer(serializers.Serializer):
    before = serializers.IntegerField(
        required=False, min_value=1, max_value=_MAX_ID, help_text="Deliveries older than this id."
    )
    after = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=_MAX_ID,
        help_text="Deliveries newer than this id, oldest first.",
    )
    limit = serializers.IntegerField(
        required=False,
        min_value=1,
        default=DELIVERY_DEFAULT_LIMIT,
        help_text=f"Page size (default {DELIVERY_DEFAULT_LIMIT}, at most {DELIVERY_MAX_LIMIT}).",
    )
    status = DeliveryStatusChoiceField(
        choices=WebhookDelivery.Status.choices, required=False, allow_blank=True
    )


class DeliveryPaginationSerializer(serializers.Serializer):
    limit = serializers.IntegerField()
    has_more = serializers.BooleanField()
    next_after = serializers.IntegerField(allow_null=True)
    next_before = serializers.IntegerField(allow_null=True)


class WebhookDeliveryPageSerializer(serializers.Serializer):
    deliveries = WebhookDeliverySerializer(many=True)
    pagination = DeliveryPaginationSerializer()
