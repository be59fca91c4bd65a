import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Session(models.Model):
    """A timed conversation between one agent and one end user, durable across restarts.

    Its messages live in a dedicated direct channel (agent + user). Timeout fields follow the
    ElizaOS model (sessions_app.timeouts).
    """

    class Status(models.TextChoices):
        ACTIVE = "active"
        ENDED = "ended"
        EXPIRED = "expired"

    session_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agent = models.ForeignKey(
        "agents.Agent", null=True, blank=True, on_delete=models.SET_NULL, related_name="sessions"
    )
    agent_uuid = models.UUIDField()  # kept when the agent is deleted
    user_id = models.CharField(max_length=255)
    # db_index off: session_owner_idx (owner, created_at) serves every lookup by owner, and a
    # second index would be one more write for each session the sweep expires.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="agent_sessions",
        db_index=False,
    )
    channel = models.OneToOneField(
        "messaging.Channel", on_delete=models.PROTECT, related_name="session"
    )
    context = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(default=timezone.now)
    last_activity = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)
    summary = models.TextField(blank=True)
    timeout_minutes = models.PositiveIntegerField()
    auto_renew = models.BooleanField(default=True)
    max_duration_minutes = models.PositiveIntegerField()
    warning_threshold_minutes = models.PositiveIntegerField()
    renewal_count = models.PositiveIntegerField(default=0)
    # expires_at minus the warning threshold: lets the sweep find sessions to warn with an
    # index instead of per-row date arithmetic (which SQLite and PostgreSQL spell apart).
    warn_at = models.DateTimeField()
    warned_at = models.DateTimeField(null=True, blank=True)
    # While set and in the future, one synchronous agent answer is being made for this session
    # (sessions_app.exchange): the provider is called with no transaction open, so this lease,
    # not a row lock, keeps a session's exchanges one after the other.
    reply_lease_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The sweep and the health counts touch only active sessions, by expiry.
            models.Index(
                fields=["expires_at"],
                name="session_active_expiry_idx",
                condition=Q(status="active"),
            ),
            models.Index(
                fields=["warn_at"],
                name="session_warn_idx",
                condition=Q(status="active", warned_at__isnull=True),
            ),
            models.Index(fields=["owner", "created_at"], name="session_owner_idx"),
            models.Index(fields=["agent_uuid", "status"], name="session_agent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.session_id} ({self.status})"
