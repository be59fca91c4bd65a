"""The bodies of the system operations API, for validation and the OpenAPI description."""

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from agents.serializers import DefaultAgentConfigSerializer
from system.models import SystemTask
from system.ops.system_tasks import CACHE_AREAS, TASK_FIELDS, TASK_TYPES

_STATES = "operational | degraded | unavailable"


class StatusServicesSerializer(serializers.Serializer):
    api_gateway = serializers.CharField(help_text=_STATES)
    agent_orchestrator = serializers.CharField(help_text=_STATES)
    message_broker = serializers.CharField(help_text=_STATES)
    database = serializers.CharField(help_text=_STATES)
    cache = serializers.CharField(help_text=_STATES)


class StatusMetricsSerializer(serializers.Serializer):
    active_agents = serializers.IntegerField(allow_null=True, help_text="Agents running.")
    active_sessions = serializers.IntegerField(allow_null=True)
    requests_per_minute = serializers.FloatField(
        allow_null=True, help_text="Requests in the last full minute, all API processes."
    )
    error_rate = serializers.FloatField(
        allow_null=True, help_text="Share of those requests answered with a 5xx (0 to 1)."
    )
    system_load = serializers.FloatField(
        allow_null=True, help_text="1-minute load average divided by the CPU count."
    )


class SystemStatusSerializer(serializers.Serializer):
    status = serializers.CharField(help_text="healthy | degraded | unhealthy")
    timestamp = serializers.DateTimeField()
    services = StatusServicesSerializer()
    metrics = StatusMetricsSerializer()
    details = serializers.DictField(
        child=serializers.DictField(),
        help_text="Per service: latency_ms, and error when it is not operational.",
    )


class ProviderHealthSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.CharField()
    models = serializers.ListField(child=serializers.CharField())
    configured = serializers.BooleanField()
    healthy = serializers.BooleanField()
    consecutive_failures = serializers.IntegerField()


class RateLimitsSerializer(serializers.Serializer):
    window_seconds = serializers.IntegerField()
    per_role = serializers.DictField(child=serializers.IntegerField())
    no_role = serializers.IntegerField()
    anonymous = serializers.IntegerField()
    per_action = serializers.DictField(child=serializers.IntegerField())


class SessionDefaultsSerializer(serializers.Serializer):
    timeout_minutes = serializers.IntegerField()
    min_timeout_minutes = serializers.IntegerField()
    max_timeout_minutes = serializers.IntegerField()
    max_duration_minutes = serializers.IntegerField()
    warning_threshold_minutes = serializers.IntegerField()


class SystemConfigSerializer(serializers.Serializer):
    version = serializers.CharField()
    environment = serializers.CharField()
    config_version = serializers.CharField(allow_null=True)
    llm_providers = serializers.ListField(child=serializers.CharField())
    llm_provider_status = ProviderHealthSerializer(many=True)
    default_agent_config = DefaultAgentConfigSerializer()
    rate_limits = RateLimitsSerializer()
    session_defaults = SessionDefaultsSerializer()


# Documented as the choice it is; validated as text, so that an unknown type is the 400
# `invalid_task_type` listing the valid ones (system.ops.system_tasks).
# (Inside allOf: drf-spectacular's enum hook would merge it with the model's task_type enum.)
@extend_schema_field({"allOf": [{"type": "string", "enum": list(TASK_TYPES)}]})
class _TaskTypeField(serializers.CharField):
    pass


class SystemTaskCreateInputSerializer(serializers.Serializer):
    task_type = _TaskTypeField(max_length=64)
    parameters = serializers.DictField(
        required=False,
        default=dict,
        help_text='clear_cache: {"area": "all" | "cache" | "responses"}; others: {}.',
    )


def _one_of(values: list[str]) -> dict[str, str]:
    # A pattern, not an enum: drf-spectacular's enum hook would turn each branch's subset into
    # one shared component of the same name.
    return {"type": "string", "pattern": f"^({'|'.join(values)})$"}


class _SystemTaskCreateInputExtension(OpenApiSerializerExtension):
    """The serializer's schema, plus the parameters each task type takes."""

    target_class = SystemTaskCreateInputSerializer

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema = auto_schema._map_basic_serializer(self.target, direction)
        clear_cache = {
            "type": "object",
            "additionalProperties": False,
            "properties": {"area": {"type": "string", "enum": list(CACHE_AREAS)}},
        }
        others = [t for t in TASK_TYPES if t != SystemTask.Type.CLEAR_CACHE]
        schema["oneOf"] = [
            {
                "properties": {
                    "task_type": _one_of([SystemTask.Type.CLEAR_CACHE.value]),
                    "parameters": clear_cache,
                }
            },
            {
                "properties": {
                    "task_type": _one_of(others),
                    "parameters": {"type": "object", "maxProperties": 0},
                }
            },
        ]
        return schema


class SystemTaskQueuedSerializer(serializers.ModelSerializer):
    # Plain strings: a choice field named "status" would collide with the other APIs' enums.
    status = serializers.CharField(help_text="queued")

    class Meta:
        model = SystemTask
        fields = ["task_id", "task_type", "status", "queued_at"]


class SystemTaskSerializer(serializers.ModelSerializer):
    requested_by = serializers.CharField(
        source="requested_by.get_username", read_only=True, allow_null=True, default=None
    )
    status = serializers.CharField(help_text="queued | running | succeeded | failed")
    result = serializers.JSONField(allow_null=True)

    class Meta:
        model = SystemTask
        fields = [*TASK_FIELDS, "result", "error"]


class SystemTaskListSerializer(serializers.Serializer):
    tasks = SystemTaskSerializer(many=True)
    pagination = serializers.DictField()
