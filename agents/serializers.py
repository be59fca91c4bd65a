from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from agents.models import Agent
from agents.roster import AGENT_TYPES


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


class AgentCreateInputSerializer(serializers.Serializer):
    """Shape only: values are checked by agents.validation so that every problem comes back
    as one `invalid_agent_config` with per-field details."""

    name = serializers.JSONField()
    type = serializers.JSONField(help_text=f"One of: {', '.join(AGENT_TYPES)}")
    config = serializers.JSONField(required=False)
    skills = serializers.JSONField(required=False)
    system_prompt = serializers.JSONField(required=False)


class AgentUpdateInputSerializer(serializers.Serializer):
    name = serializers.JSONField(required=False)
    config = serializers.JSONField(required=False)
    skills = serializers.JSONField(required=False)
    system_prompt = serializers.JSONField(required=False)


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
