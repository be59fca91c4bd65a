import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class Agent(models.Model):
    class Status(models.TextChoices):
        CREATED = "created"
        RUNNING = "running"
        STOPPED = "stopped"
        ERROR = "error"

    agent_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True)
    type = models.CharField(max_length=32, db_index=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.CREATED, db_index=True
    )
    status_reason = models.CharField(max_length=500, blank=True)
    # {model, temperature, max_tokens, top_p, frequency_penalty, presence_penalty,
    #  daily_budget_usd?}: always complete and validated (agents.validation).
    config = models.JSONField(default=dict)
    skills = models.JSONField(default=list)
    system_prompt = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    last_active = models.DateTimeField(null=True, blank=True)
    # Requests in a row in which every provider candidate failed; K of them → status error.
    consecutive_failures = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["created_at", "agent_id"]

    def __str__(self) -> str:
        return self.name


class UsageRecord(models.Model):
    """One provider call made for an agent: the ledger behind metrics and budgets.

    Rows outlive their agent (agent set to NULL, `agent_uuid` kept), so history stays.
    """

    agent = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="usage"
    )
    agent_uuid = models.UUIDField(db_index=True)
    # Groups the attempts of one runtime request (fallbacks included).
    request_id = models.UUIDField()
    provider = models.CharField(max_length=64)
    model = models.CharField(max_length=128)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=8, default=0)
    latency_ms = models.FloatField(default=0)
    success = models.BooleanField()
    error_code = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["agent", "created_at"], name="usage_agent_time_idx")]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model} {'ok' if self.success else self.error_code}"
