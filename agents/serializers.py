from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from agents.models import Agent
from agents.roster import AGENT_TYPES
from agents.runtime import get_router
from agents.validation import (
    _RANGES,
    MAX_SKILL_LENGTH,
    MAX_SKILLS,
    MAX_SYSTEM_PROMPT,
    MAX_TOKENS_RANGE,
    NAME_PATTERN,
)
from system.kernel.schema_fields import NON_BLANK_TEXT, TEXT, SchemaJSONField


# The model settings of an agent's config, all that the system's default config holds (GET
# /api/v1/system/config). Comments, not docstrings: drf-spectacular would publish a docstring.
class DefaultAgentConfigSerializer(serializers.Serializer):
    model = serializers.CharField()
    temperature = serializers.FloatField()
    max_tokens = serializers.IntegerField()
    top_p = serializers.FloatField()
    frequency_penalty = serializers.FloatField()
    presence_penalty = serializers.FloatField()


class AgentConfigSerializer(DefaultAgentConfigSerializer):
    daily_budget_usd = serializers.CharField(required=False, allow_null=True)


def _served_models() -> list[str]:
    router = get_router()
    return [alias for alias in router.aliases() if router.resolve(alias)]


# The schemas of what agents.validation accepts (the serializers take any JSON, so that the
# validation can report every problem in one `invalid_agent_config`).
_NAME = {"type": "string", "pattern": NAME_PATTERN.pattern}
_SKILLS = {
    "type": "array",
    "maxItems": MAX_SKILLS,
    "items": {
        "type": "string",
        "pattern": NON_BLANK_TEXT,
        "maxLength": MAX_SKILL_LENGTH,
    },
}
_SYSTEM_PROMPT = {"type": "string", "pattern": TEXT, "maxLength": MAX_SYSTEM_PROMPT}


def _config_schema() -> dict[str, Any]:
    ranges = {
        field: {"type": "number", "minimum": low, "maximum": high}
        for field, (low, high) in _RANGES.items()
    }
    low, high = MAX_TOKENS_RANGE
    return {
        "type": "object",
        "additionalProperties": False,
        "description": "Merged over the default config (GET /api/v1/system/config).",
        "properties": {
            "model": {"type": "string", "enum": _served_models()},
            **ranges,
            "max_tokens": {"type": "integer", "minimum": low, "maximum": high},
            "daily_budget_usd": {
                "nullable": True,
                "anyOf": [
                    {"type": "number", "minimum": 0},
                    {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"},
                ],
            },
        },
    }


def _refuse_nul(value: Any) -> Any:
    """PostgreSQL stores no NUL character: text holding one is refused (a 400)."""
    if isinstance(value, str) and "\x00" in value:
        raise serializers.ValidationError("Text may not contain NUL characters.")
    if isinstance(value, list):
        for item in value:
            _refuse_nul(item)
    return value


class AgentUpdateInputSerializer(serializers.Serializer):
    name = SchemaJSONField(_NAME, required=False)
    config = SchemaJSONField(_config_schema, required=False)
    skills = SchemaJSONField(_SKILLS, required=False)
    system_prompt = SchemaJSONField(_SYSTEM_PROMPT, required=False)

    def validate_skills(self, value: Any) -> Any:
        return _refuse_nul(value)

    def validate_system_prompt(self, value: Any) -> Any:
        return _refuse_nul(value)


class AgentCreateInputSerializer(AgentUpdateInputSerializer):
    """Shape only: values are checked by agents.validation so that every problem comes back
    as one `invalid_agent_config` with per-field details."""

    name = SchemaJSONField(_NAME)
    # Inside allOf: drf-spectacular's enum hook would otherwise merge "type" enums by name.
    type = SchemaJSONField(
        {
            "allOf": [{"type": "string", "enum": list(AGENT_TYPES)}],
            "description": "The agent's role in the roster.",
        }
    )


class AgentSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Agent
        fields = ["agent_id", "name", "type", "status", "created_at", "last_active"]


class AgentCreatedSerializer(serializers.ModelSerializer):
    config = AgentConfigSerializer()

    class Meta:
        model = Agent
        fields = ["agent_id", "name", "type", "status", "created_at", "config", "skills"]


class PerformanceMetricsSerializer(serializers.Serializer):
    response_time_ms = serializers.FloatField()
    success_rate = serializers.FloatField()
    task_completion_rate = serializers.FloatField()
    error_count = serializers.IntegerField()
    total_requests = serializers.IntegerField()


class AgentDetailSerializer(serializers.ModelSerializer):
    config = AgentConfigSerializer()
    performance_metrics = serializers.SerializerMethodField()

    class Meta:
        model = Agent
        fields = [
            "agent_id",
            "name",
            "type",
            "status",
            "status_reason",
            "created_at",
            "updated_at",
            "last_active",
            "config",
            "skills",
            "system_prompt",
            "performance_metrics",
        ]

    @extend_schema_field(PerformanceMetricsSerializer)
    def get_performance_metrics(self, agent: Agent) -> dict:
        return self.context["performance_metrics"]


class PaginationSerializer(serializers.Serializer):
    page = serializers.IntegerField()
    limit = serializers.IntegerField()
    total = serializers.IntegerField()


class AgentListSerializer(serializers.Serializer):
    agents = AgentSummarySerializer(many=True)
    pagination = PaginationSerializer()


# An agent's state after start, stop or restart; each adds when it happened.
class _AgentTransitionSerializer(serializers.Serializer):
    agent_id = serializers.UUIDField()
    status = serializers.CharField()


class AgentStartedSerializer(_AgentTransitionSerializer):
    started_at = serializers.DateTimeField()


class AgentStoppedSerializer(_AgentTransitionSerializer):
    stopped_at = serializers.DateTimeField()
