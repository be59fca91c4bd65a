import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class RunStatus(models.TextChoices):
    """Where a workflow, or one of its steps, is in its run."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Workflow(models.Model):
    Status = RunStatus
    ACTIVE = (Status.PENDING, Status.RUNNING)

    workflow_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    template = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    progress = models.PositiveSmallIntegerField(default=0)  # 0-100
    input = models.JSONField(default=dict, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"], name="workflow_status_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"


class WorkflowStep(models.Model):
    Status = RunStatus

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    agent_ref = models.CharField(max_length=100)  # an agent type, name or UUID
    agent = models.ForeignKey(
        "agents.Agent", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    instruction = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    output = models.TextField(blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["workflow", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["workflow", "position"], name="workflow_step_position_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"step {self.position} ({self.status})"


class Meeting(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"

    meeting_id = models.CharField(primary_key=True, max_length=40)  # "meeting-<ms>"
    topic = models.CharField(max_length=200, blank=True)
    participants = models.JSONField(default=list)  # [{"title", "agent_id", "name"}]
    agenda = models.JSONField(default=list)
    outcomes = models.JSONField(default=list)
    transcript = models.JSONField(default=list)  # [{"agenda_item", "title", "agent_id", "content"}]
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(default=timezone.now)
    # When the run holding it (at most one) took it or last saved a turn: a lease, see
    # meeting_claim; a claim older than the lease may be taken over.
    claimed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return self.meeting_id


class Deployment(models.Model):
    class Status(models.TextChoices):
        INITIATED = "initiated"
        SUBMITTING = "submitting"  # claimed by a worker; the backend is running
        MANIFEST_READY = "manifest_ready"
        SUBMITTED = "submitted"
        FAILED = "failed"

    deployment_id = models.CharField(primary_key=True, max_length=60)  # "akash-deployment-<ms>"
    name = models.CharField(max_length=63)
    config = models.JSONField()
    sdl = models.TextField()
    backend = models.CharField(max_length=16)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.INITIATED)
    backend_output = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.deployment_id
