"""Workflows: a template's or the caller's steps, run one step per Celery task."""

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from agents.exceptions import AgentBudgetExceeded, AgentRuntimeError
from agents.models import Agent
from agents.runtime import ChatMessage
from agents.services import agent_complete
from questflow.models import Workflow, WorkflowStep
from questflow.templates import StepSpec, template_by_name, workflow_templates
from system.eventlog.events import EventScope
from system.eventlog.services import event_emit
from system.kernel.exceptions import Conflict, NotFound, ValidationFailed
from system.kernel.outbox import enqueue

WORKFLOW_EVENT = "workflow_update"
MAX_STEPS = 20
MAX_INSTRUCTION = 4000
MAX_INPUT_BYTES = 16 * 1024


class WorkflowNotFound(NotFound):
    code = "workflow_not_found"
    message = "Workflow not found."


class WorkflowNotActive(Conflict):
    code = "workflow_not_active"
    message = "The workflow has already finished."


def _emit(workflow: Workflow, step: WorkflowStep | None = None, **extra: Any) -> None:
    data: dict[str, Any] = {
        "id": workflow.workflow_id,
        "name": workflow.name,
        "status": workflow.status,
        "progress": workflow.progress,
        "step": (
            {"position": step.position, "agent": step.agent_ref, "status": step.status}
            if step is not None
            else None
        ),
        **extra,
    }
    event_emit(
        event_type=WORKFLOW_EVENT, data=data, scope=EventScope(owner_id=workflow.created_by_id)
    )


def input_size_check(value: Any, *, field: str) -> None:
    """A 400 naming `field` when `value`, as JSON, is over MAX_INPUT_BYTES: it ends up in
    prompts, so its size is its cost."""
    size = len(json.dumps(value, default=str).encode())
    if size > MAX_INPUT_BYTES:
        raise ValidationFailed(
            f"{field} is {size} bytes; at most {MAX_INPUT_BYTES}.",
            details={field: [f"At most {MAX_INPUT_BYTES} bytes as JSON."]},
        )


def _steps_from_request(steps: Any) -> list[StepSpec]:
    if not isinstance(steps, list) or not 1 <= len(steps) <= MAX_STEPS:
        raise ValidationFailed(details={"steps": [f"A list of 1 to {MAX_STEPS} steps."]})
    specs = []
    for index, step in enumerate(steps):
        agent = step.get("agent") if isinstance(step, dict) else None
        instruction = step.get("instruction") if isinstance(step, dict) else None
        if not isinstance(agent, str) or not agent or len(agent) > 100:
            raise ValidationFailed(
                details={f"steps[{index}].agent": ["An agent type, name or id."]}
            )
        if (
            not isinstance(instruction, str)
            or not instruction.strip()
            or len(instruction) > MAX_INSTRUCTION
        ):
            raise ValidationFailed(
                details={f"steps[{index}].instruction": [f"1 to {MAX_INSTRUCTION} characters."]}
            )
        specs.append(StepSpec(agent, instruction.strip()))
    return specs


def workflow_create(
    *,
    template: str | None,
    steps: Any,
    name: str | None,
    input: Any,
    actor: AbstractBaseUser,
) -> Workflow:
    """Store the workflow and its steps, then start it on the worker (after commit)."""
    if (template is None) == (steps is None):
        raise ValidationFailed(
            "Give either a template or steps.", details={"template": ["Or steps."]}
        )
    found = template_by_name(template) if template is not None else None
    if template is not None and found is None:
        raise ValidationFailed(
            f"Unknown template {template!r}.",
            details={"template": [f"One of: {', '.join(workflow_templates())}."]},
        )
    specs = list(found.steps) if found else _steps_from_request(steps)
    if input is not None and not isinstance(input, dict):
        raise ValidationFailed(details={"input": ["Must be an object."]})
    input_size_check(input, field="input")
    if name is not None and (not isinstance(name, str) or not 1 <= len(name.strip()) <= 200):
        raise ValidationFailed(details={"name": ["1 to 200 characters."]})
    from questflow.tasks import run_workflow_step  # tasks import this module

    with transaction.atomic():
        workflow = Workflow.objects.create(
            name=(name or (found.name if found else "Custom workflow")).strip(),
            template=found.key if found else "",
            input=input or {},
            created_by=actor,
        )
        WorkflowStep.objects.bulk_create(
            WorkflowStep(
                workflow=workflow, position=i, agent_ref=s.agent, instruction=s.instruction
            )
            for i, s in enumerate(specs)
        )
        _emit(workflow)
        enqueue(run_workflow_step, str(workflow.workflow_id), 0)
    return workflow


def workflow_cancel(*, workflow: Workflow) -> Workflow:
    with transaction.atomic():
        workflow = Workflow.objects.select_for_update().get(pk=workflow.pk)
        if workflow.status not in Workflow.ACTIVE:
            raise WorkflowNotActive(details={"status": workflow.status})
        workflow.status = Workflow.Status.CANCELLED
        workflow.finished_at = timezone.now()
        workflow.save(update_fields=["status", "finished_at"])
        workflow.steps.filter(status=WorkflowStep.Status.PENDING).update(
            status=WorkflowStep.Status.CANCELLED
        )
        _emit(workflow)
    return workflow


def _resolve_agent(ref: str) -> Agent | None:
    """A running agent named by UUID or name, else the first running agent of that type."""
    try:
        by_ref = Q(agent_id=uuid.UUID(ref))
    except ValueError:
        by_ref = Q(name=ref)
    running = Agent.objects.filter(status=Agent.Status.RUNNING)
    return running.filter(by_ref).first() or running.filter(type=ref).order_by("created_at").first()


def _step_prompt(workflow: Workflow, step: WorkflowStep) -> list[ChatMessage]:
    earlier = workflow.steps.filter(
        position__lt=step.position, status=WorkflowStep.Status.COMPLETED
    )
    parts = [f"Workflow: {workflow.name}", f"Your task: {step.instruction}"]
    if workflow.input:
        parts.append(f"Input: {workflow.input}")
    for previous in earlier:
        parts.append(
            f"Step {previous.position + 1} ({previous.agent_ref}) said:\n{previous.output}"
        )
    return [ChatMessage(role="user", content="\n\n".join(parts))]


def workflow_fail(workflow: Workflow, step: WorkflowStep | None, reason: str) -> None:
    """Fail the workflow (and `step`) unless it already finished; announce it."""
    now = timezone.now()
    with transaction.atomic():
        changed = Workflow.objects.filter(pk=workflow.pk, status__in=Workflow.ACTIVE).update(
            status=Workflow.Status.FAILED, error=reason, finished_at=now
        )
        if step is not None:
            step.status, step.error, step.finished_at = WorkflowStep.Status.FAILED, reason, now
            step.save(update_fields=["status", "error", "finished_at"])
        workflow.refresh_from_db()
        if changed:
            _emit(workflow, step, error=reason)


@dataclass(frozen=True)
class StepOutcome:
    next_position: int | None  # the step to run next, if any
    retry: bool  # the runtime failed but may succeed on a retry


def step_lease_expired_before() -> datetime:
    """A step claimed before this is not running any more, and may be claimed again: its
    task's hard time limit has passed (the worker that claimed it is gone), or the broker's
    visibility timeout has, after which the broker itself redelivers the task as given up
    (production keeps that timeout above the time limit; a short one means a fast re-run)."""
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout")
    seconds = min(settings.CELERY_TASK_TIME_LIMIT, visibility or settings.CELERY_TASK_TIME_LIMIT)
    return timezone.now() - timedelta(seconds=seconds)


def _claim_step(workflow: Workflow, step: WorkflowStep) -> datetime | None:
    """Claim the step by a conditional UPDATE (pending, or running on a lapsed lease ->
    running); the claim time, which later writes compare against, or None when another
    copy of the task holds it or it is done."""
    now = timezone.now()
    with transaction.atomic():
        claimed = (
            WorkflowStep.objects.filter(pk=step.pk)
            .filter(
                Q(status=WorkflowStep.Status.PENDING)
                | Q(status=WorkflowStep.Status.RUNNING, started_at__lt=step_lease_expired_before())
            )
            .update(status=WorkflowStep.Status.RUNNING, started_at=now, attempts=F("attempts") + 1)
        )
        if not claimed:
            return None
        Workflow.objects.filter(pk=workflow.pk, status=Workflow.Status.PENDING).update(
            status=Workflow.Status.RUNNING, started_at=now
        )
        workflow.refresh_from_db()
        step.refresh_from_db()
        _emit(workflow, step)
    return now


def workflow_run_step(*, workflow_id: str, position: int, final_attempt: bool) -> StepOutcome:
    """Run one step, at most once to completion: it is claimed before the provider call, so a
    redelivered copy of the task, or one that loses the race to complete it, does nothing
    (and enqueues nothing). A step left `running` by a dead worker is claimed again once its
    lease lapses (see step_lease_expired_before)."""
    workflow = Workflow.objects.filter(pk=workflow_id).first()
    if workflow is None or workflow.status not in Workflow.ACTIVE:
        return StepOutcome(None, False)
    step = workflow.steps.filter(position=position).first()
    if step is None:
        return StepOutcome(None, False)
    claimed_at = _claim_step(workflow, step)
    if claimed_at is None:
        return StepOutcome(None, False)
    agent = _resolve_agent(step.agent_ref)
    if agent is None:
        workflow_fail(workflow, step, f"No running agent for {step.agent_ref!r}.")
        return StepOutcome(None, False)
    try:
        completion = agent_complete(agent=agent, conversation=_step_prompt(workflow, step))
    except AgentBudgetExceeded as exc:
        workflow_fail(workflow, step, f"{agent.name}: {exc.message}")
        return StepOutcome(None, False)
    except AgentRuntimeError as exc:
        if not final_attempt:  # give the claim back, for the retry to take
            WorkflowStep.objects.filter(
                pk=step.pk, status=WorkflowStep.Status.RUNNING, started_at=claimed_at
            ).update(status=WorkflowStep.Status.PENDING)
            return StepOutcome(position, True)
        workflow_fail(workflow, step, f"{agent.name}: {exc.message} ({exc.details})")
        return StepOutcome(None, False)
    return _complete_step(workflow, step, agent, completion.text, claimed_at)


def _complete_step(
    workflow: Workflow, step: WorkflowStep, agent: Agent, output: str, claimed_at: datetime
) -> StepOutcome:
    with transaction.atomic():
        locked = WorkflowStep.objects.select_for_update().get(pk=step.pk)
        if locked.status != WorkflowStep.Status.RUNNING or locked.started_at != claimed_at:
            return StepOutcome(None, False)  # another copy holds or finished it; it goes on
        now = timezone.now()
        locked.status, locked.output, locked.agent, locked.finished_at = (
            WorkflowStep.Status.COMPLETED,
            output,
            agent,
            now,
        )
        locked.save(update_fields=["status", "output", "agent", "finished_at"])
        workflow = Workflow.objects.select_for_update().get(pk=workflow.pk)
        total = workflow.steps.count()
        done = workflow.steps.filter(status=WorkflowStep.Status.COMPLETED).count()
        workflow.progress = round(100 * done / total)
        finished = done == total and workflow.status in Workflow.ACTIVE
        if finished:
            workflow.status, workflow.finished_at = Workflow.Status.COMPLETED, now
            workflow.result = {
                "outputs": list(
                    workflow.steps.order_by("position").values_list("output", flat=True)
                )
            }
        workflow.save(update_fields=["progress", "status", "finished_at", "result"])
        _emit(workflow, locked)
    if finished or workflow.status not in Workflow.ACTIVE:
        return StepOutcome(None, False)
    return StepOutcome(step.position + 1, False)
