"""The sweep, on beat: nothing QuestFlow runs stays stuck. Work whose task was lost (still
`pending`/`initiated`, unclaimed past a grace period) or whose run's worker died (claimed on
a lapsed lease) is queued again, which is safe because every task claims its work first; a
run past its time limit is failed with the reason, for good."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from questflow.models import Deployment, Meeting, Workflow, WorkflowStep
from questflow.services.meetings import meeting_finish
from questflow.services.workflows import step_lease_expired_before, workflow_fail
from system.kernel.outbox import enqueue

BATCH = 100
CLAIM_GRACE = timedelta(seconds=60)  # a task queued this long ago and not started was lost


@dataclass(frozen=True)
class SweepReport:
    requeued: int
    failed: int


def questflow_sweep() -> SweepReport:
    from questflow.tasks import run_meeting, run_workflow_step, submit_deployment  # they import us

    now = timezone.now()
    limit = now - timedelta(seconds=settings.QUESTFLOW_RUN_TIMEOUT_SECONDS)
    grace = now - CLAIM_GRACE
    lease = step_lease_expired_before()
    reason = f"Timed out: still running after {settings.QUESTFLOW_RUN_TIMEOUT_SECONDS} s."
    requeued = failed = 0

    for workflow in Workflow.objects.filter(status=Workflow.Status.RUNNING, started_at__lt=limit)[
        :BATCH
    ]:
        workflow_fail(
            workflow, workflow.steps.filter(status=WorkflowStep.Status.RUNNING).first(), reason
        )
        failed += 1
    for workflow in _maybe_lost(grace=grace, lease=lease)[:BATCH]:
        position = _lost_step(workflow, grace=grace, lease=lease)
        if position is not None:
            with transaction.atomic():
                enqueue(run_workflow_step, str(workflow.workflow_id), position)
            requeued += 1

    for meeting in Meeting.objects.filter(status=Meeting.Status.RUNNING, started_at__lt=limit)[
        :BATCH
    ]:
        failed += meeting_finish(meeting=meeting, status=Meeting.Status.FAILED, error=reason)
    for meeting in _lost_meetings(grace=grace, lease=lease, limit=limit)[:BATCH]:
        with transaction.atomic():
            enqueue(run_meeting, meeting.meeting_id, [p["agent_id"] for p in meeting.participants])
        requeued += 1

    failed += Deployment.objects.filter(
        status=Deployment.Status.SUBMITTING, updated_at__lt=lease
    ).update(
        status=Deployment.Status.FAILED,
        backend_output="The worker submitting it was lost; check Akash before re-submitting.",
        updated_at=now,
    )
    for deployment_id in Deployment.objects.filter(
        status=Deployment.Status.INITIATED, updated_at__lt=grace
    ).values_list("pk", flat=True)[:BATCH]:
        with transaction.atomic():
            enqueue(submit_deployment, deployment_id)
        requeued += 1
    return SweepReport(requeued=requeued, failed=failed)


def _lost_meetings(*, grace: datetime, lease: datetime, limit: datetime) -> QuerySet:
    """Running meetings no run is on: never claimed past the grace period (the task was
    lost), or claimed on a lapsed lease (the run's worker died mid-meeting; the task taking
    it over resumes from the saved transcript). Those past their time limit are failed
    instead, never re-queued."""
    return Meeting.objects.filter(
        Q(claimed_at__isnull=True, started_at__lt=grace) | Q(claimed_at__lt=lease),
        status=Meeting.Status.RUNNING,
        started_at__gte=limit,
    ).order_by("started_at")


def _maybe_lost(*, grace: datetime, lease: datetime) -> QuerySet:
    """Active workflows no task can be on: none of their steps holds a live claim or finished
    within the grace period. Filtered in SQL, so that busy workflows never fill the batch and
    keep lost ones from being seen."""
    steps = WorkflowStep.objects.filter(workflow=OuterRef("pk"))
    live = steps.filter(status=WorkflowStep.Status.RUNNING, started_at__gte=lease)
    recent = steps.filter(finished_at__gte=grace)
    return (
        Workflow.objects.filter(status__in=Workflow.ACTIVE, created_at__lt=grace)
        .exclude(Exists(live))
        .exclude(Exists(recent))
        .order_by("created_at")
    )


def _lost_step(workflow: Workflow, *, grace: datetime, lease: datetime) -> int | None:
    """The position of the workflow's next step when no task is on it: pending past the grace
    period since the workflow was created or the step before finished, or running on a
    lapsed lease."""
    step = workflow.steps.exclude(status=WorkflowStep.Status.COMPLETED).order_by("position").first()
    if step is None:
        return None
    if step.status == WorkflowStep.Status.RUNNING:
        return step.position if step.started_at < lease else None
    if step.status != WorkflowStep.Status.PENDING:
        return None
    before = workflow.steps.filter(position=step.position - 1).first()
    waiting_since = before.finished_at if before else workflow.created_at
    return step.position if waiting_since and waiting_since < grace else None
