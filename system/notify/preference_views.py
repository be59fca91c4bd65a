"""GET/PATCH /api/v1/auth/me/notifications: the caller's own email alerts, each kind on or
off. The caller is the principal's user: a person (JWT, or a key made for them), or for a
standalone key its service user, whose settings matter little: that key's alerts go to its
creator, whose own settings apply."""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from system.kernel.principal import principal_from_request
from system.kernel.schema_fields import SchemaJSONField
from system.kernel.validation import validated
from system.notify.alerts import KINDS, notification_settings_get, notification_settings_update


class AlertKindsSerializer(serializers.Serializer):
    """Each alert kind, on (true) or off (false)."""

    deprecated_endpoint = serializers.BooleanField(
        help_text="A deprecated endpoint used by you or your keys."
    )
    agent_error = serializers.BooleanField(help_text="An agent you created moved to `error`.")
    budget_reached = serializers.BooleanField(
        help_text="An agent's daily budget, or (admins) the platform's, reached."
    )
    webhook_disabled = serializers.BooleanField(help_text="A webhook endpoint of yours disabled.")


class NotificationSettingsSerializer(serializers.Serializer):
    email = serializers.EmailField(
        allow_null=True, help_text="Where alerts go: your account's address (null: none sent)."
    )
    alerts = AlertKindsSerializer()


_ALERTS_PATCH = {
    "type": "object",
    "additionalProperties": False,  # an unknown kind is a 400
    "properties": {kind: {"type": "boolean"} for kind in KINDS},
    "description": "The kinds to change; the others keep their setting (none: nothing changes).",
}


class NotificationSettingsPatchSerializer(serializers.Serializer):
    alerts = SchemaJSONField(_ALERTS_PATCH, required=False)

    def validate_alerts(self, value: Any) -> dict[str, bool]:
        if not isinstance(value, dict):
            raise serializers.ValidationError("Expected an object of alert kinds and booleans.")
        unknown = sorted(set(value) - set(KINDS))
        if unknown:
            raise serializers.ValidationError(
                f"Unknown alert kind(s): {', '.join(map(str, unknown))}. "
                f"Valid kinds: {', '.join(KINDS)}."
            )
        not_bool = sorted(kind for kind, on in value.items() if not isinstance(on, bool))
        if not_bool:
            raise serializers.ValidationError(f"Must be true or false: {', '.join(not_bool)}.")
        return value


class NotificationSettingsView(APIView):
    policy_actions = {"get": "auth.notifications.read", "patch": "auth.notifications.update"}

    @extend_schema(
        summary="Get your email alert settings",
        description="Your account's email address and which email alerts are on. Each alert "
        "is sent at most once a day per subject. A standalone API key reads its own service "
        "user's settings; its alerts go to its creator, whose settings apply.",
        responses={200: NotificationSettingsSerializer},
    )
    def get(self, request: Request) -> Response:
        user_id = principal_from_request(request).user_id
        return Response(notification_settings_get(user_id=user_id))

    @extend_schema(
        summary="Turn email alerts on or off",
        description="Set some alert kinds on (true) or off (false); the others keep their "
        "setting. An unknown kind is refused (400, listing the valid ones) and nothing changes.",
        request=NotificationSettingsPatchSerializer,
        responses={200: NotificationSettingsSerializer},
    )
    def patch(self, request: Request) -> Response:
        data = validated(NotificationSettingsPatchSerializer, request.data)
        user_id = principal_from_request(request).user_id
        return Response(
            notification_settings_update(user_id=user_id, alerts=data.get("alerts", {}))
        )
