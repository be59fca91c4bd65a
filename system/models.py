import uuid
from datetime import datetime

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils import timezone


class EventLogEntry(models.Model):
    """One state change that clients may watch, written in the same transaction as the change.

    `event_id` is the resume cursor for WebSocket clients; the scope columns say who may see
    the event and let a reader fetch "everything after id X in this scope" from an index.
    """

    event_id = models.BigAutoField(primary_key=True)
    event_type = models.CharField(max_length=64)
    payload = models.JSONField(encoder=DjangoJSONEncoder)
    agent_id = models.UUIDField(null=True, blank=True)
    channel_id = models.UUIDField(null=True, blank=True)
    session_id = models.UUIDField(null=True, blank=True)
    owner_id = models.BigIntegerField(null=True, blank=True)
    # No index: pruning walks the primary key (see event_log_prune); one index fewer to
    # write for each of the 100,000 entries a session sweep may append.
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "event log entry"
        verbose_name_plural = "event log"
        # The same partial index on each scope column: a scoped read walks its rows in id order.
        indexes = [
            models.Index(
                fields=[f"{scope}_id", "event_id"],
                name=f"eventlog_{scope}_idx",
                condition=Q(**{f"{scope}_id__isnull": False}),
            )
            for scope in ("agent", "channel", "session", "owner")
        ]

    def __str__(self) -> str:
        return f"#{self.event_id} {self.event_type}"


class ApiKey(models.Model):
    """A long-lived credential. Only a hash of the secret is stored; the full key
    (`371os_<prefix>_<secret>`) is shown once, when it is made."""

    name = models.CharField(max_length=100)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    # Who made the key: its roles never exceed this user's current roles. NULL for keys made
    # before this was recorded (they keep their own roles).
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # Comma-separated, sorted subset of system.roles.ROLES: a plain column filters the same way
    # on SQLite and PostgreSQL and costs no join on the authentication path.
    roles = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"

    @property
    def role_set(self) -> frozenset[str]:
        return frozenset(filter(None, self.roles.split(",")))

    def is_usable(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class IdempotencyRecord(models.Model):
    """A claimed Idempotency-Key and, once the request finished, its response (24 h)."""

    owner = models.CharField(max_length=64)  # system.kernel.principal.Principal.id
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)  # SHA-256 of method, path and body
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "key"], name="idempotency_owner_key_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.owner} {self.key}"


class SystemTask(models.Model):
    """A system-level operation requested through the API or the back office and run by the
    Celery worker (system.system_tasks). Rows are written by services only."""

    class Type(models.TextChoices):
        CLEAR_CACHE = "clear_cache"
        RELOAD_CONFIG = "reload_config"
        BACKUP_DATABASE = "backup_database"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    task_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    task_type = models.CharField(max_length=32, choices=Type.choices)
    parameters = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    queued_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-queued_at", "task_id"]

    def __str__(self) -> str:
        return f"{self.task_type} {self.task_id} ({self.status})"


class OutboxMessage(models.Model):
    """A Celery task to send, written in the transaction of the change that needs it
    (system.kernel.outbox). Deleted once a worker has run its task; until then the outbox
    sweep sends it again when `due_at` passes, so a broker outage delays work and loses none."""

    task_name = models.CharField(max_length=200)
    args = models.JSONField(default=list, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField(db_index=True)
    attempts = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = "outbox message"

    def __str__(self) -> str:
        return f"#{self.pk} {self.task_name}"


class LogCursor(models.Model):
    """How far a reader of the event log that runs in the background has got (system.notify:
    `webhooks`, `alerts`): every event up to `last_event_id` has been handed on."""

    name = models.CharField(max_length=32, primary_key=True)
    last_event_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_event_id}"


class WebhookEndpoint(models.Model):
    """An HTTP endpoint that receives the events its owner may see (system.notify). Owned by
    the creating principal: its user, and the API key when a key made it (the key's roles then
    bound what it receives). The signing secret must be kept to sign, so it is stored as is and
    shown once; after a rotation the previous secret also signs until it expires."""

    endpoint_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    api_key = models.ForeignKey(
        "system.ApiKey", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    url = models.CharField(max_length=2048)
    description = models.CharField(max_length=500, blank=True)
    event_types = models.JSONField(default=list)  # names, or ["*"]
    filter = models.JSONField(default=dict, blank=True)  # agent_id / channel_id / session_id
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=200, blank=True)
    secret = models.CharField(max_length=100)
    previous_secret = models.CharField(max_length=100, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    # Set at the first failed attempt of a run of failures, cleared by a success.
    failing_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "created_at"], name="webhook_owner_idx")]

    def __str__(self) -> str:
        return f"{self.url} ({self.endpoint_id})"


class WebhookDelivery(models.Model):
    """One event to deliver to one endpoint, with its frozen payload (every attempt sends the
    same bytes under the same `webhook-id`). Delivered in event-id order per endpoint."""

    class Status(models.TextChoices):
        PENDING = "pending"  # waiting for its turn or for `next_attempt_at`
        SUCCEEDED = "succeeded"
        FAILED = "failed"  # final: a 4xx, or retries exhausted

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event_id = models.BigIntegerField(null=True, blank=True)  # NULL for webhook.test
    event_type = models.CharField(max_length=64)
    message_id = models.CharField(max_length=64)  # the `webhook-id` header
    payload = models.JSONField(encoder=DjangoJSONEncoder)  # {id, type, timestamp, data}
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_latency_ms = models.FloatField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "event_id"],
                condition=Q(event_id__isnull=False),
                name="webhook_delivery_event_uniq",
            )
        ]
        indexes = [
            models.Index(fields=["endpoint", "id"], name="webhook_delivery_endpoint_idx"),
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="webhook_delivery_due_idx",
            ),
            # Each endpoint's head of line (the sweep's "no earlier pending delivery").
            models.Index(
                fields=["endpoint", "id"],
                condition=Q(status="pending"),
                name="webhook_delivery_pending_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.message_id} → {self.endpoint_id} ({self.status})"


class WebhookAttempt(models.Model):
    """One try at a delivery: written before the request (so a worker killed mid-request leaves
    its trace), completed after it."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="tries")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return f"{self.delivery_id} #{self.number}"


class AlertSent(models.Model):
    """An email alert sent (or being sent): at most one per recipient, kind, subject and day."""

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    kind = models.CharField(max_length=32)
    subject_key = models.CharField(max_length=200)  # what it is about: an endpoint path, an id
    day = models.DateField()
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    context = models.JSONField(default=dict, encoder=DjangoJSONEncoder)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "kind", "subject_key", "day"], name="alert_once_a_day"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.subject_key} → {self.recipient_id} ({self.day})"


class NotificationSettings(models.Model):
    """A user's choice of email alerts: the kinds they turned off."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    disabled_alerts = models.JSONField(default=list)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "notification settings"

    def __str__(self) -> str:
        return f"notifications of {self.user_id}"
