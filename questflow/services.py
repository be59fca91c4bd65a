"""QuestFlow: workflows over agents, C-suite meetings, Akash deployments."""

import time
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from agents.exceptions import AgentBudgetExceeded, AgentRuntimeError
from agents.models import Agent
from agents.roster import ROSTER
from agents.runtime import ChatMessage
from agents.services import agent_complete
from questflow import akash
from questflow.models import Deployment, Meeting, Workflow, WorkflowStep
from questflow.templates import StepSpec, template_by_name, workflow_templates
from system.eventlog.events import EventScope
from system.eventlog.services import event_emit
from system.kernel.exceptions import Conflict, NotFound, ValidationFailed

WORKFLOW_EVENT = "workflow_update"
MAX_STEPS = 20
MAX_INSTRUCTION = 4000
MAX_INPUT_BYTES = 16 * 1024


def _unique_id(prefix: str, model: type) -> str:
    """The spec's "<prefix>-<milliseconds>", bumped by a millisecond on a clash."""
    millis = int(time.time() * 1000)
    while model.objects.filter(pk=f"{prefix}-{millis}").exists():
        millis += 1
    return f"{prefix}-{millis}"


class WorkflowNotFound(NotFound):
    code = "workflow_not_found"
    message = "Workflow not found."


class WorkflowNotActive(Conflict):
    code = "workflow_not_active"
    message = "The workflow has already finished."


class ParticipantsNotRunning(Conflict):
    code = "participants_not_running"
    message = "Some meeting participants have no running agent."


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
        run_workflow_step.delay_on_commit(str(workflow.workflow_id), 0)
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


def _fail(workflow: Workflow, step: WorkflowStep, reason: str) -> None:
    now = timezone.now()
    with transaction.atomic():
        step.status, step.error, step.finished_at = WorkflowStep.Status.FAILED, reason, now
        step.save(update_fields=["status", "error", "finished_at"])
        Workflow.objects.filter(pk=workflow.pk).update(
            status=Workflow.Status.FAILED, error=reason, finished_at=now
        )
        workflow.refresh_from_db()
        _emit(workflow, step, error=reason)


@dataclass(frozen=True)
class StepOutcome:
    next_position: int | None  # the step to run next, if any
    retry: bool  # the runtime failed but may succeed on a retry


def workflow_run_step(*, workflow_id: str, position: int, final_attempt: bool) -> StepOutcome:
    """Run one step. Idempotent: a finished step is never run again (its output is kept); a
    step found `running` (its worker died) is run again from the start."""
    workflow = Workflow.objects.filter(pk=workflow_id).first()
    if workflow is None or workflow.status not in Workflow.ACTIVE:
        return StepOutcome(None, False)
    step = workflow.steps.filter(position=position).first()
    if step is None:
        return StepOutcome(None, False)
    if step.status == WorkflowStep.Status.COMPLETED:
        return StepOutcome(position + 1, False)
    now = timezone.now()
    with transaction.atomic():
        if workflow.status == Workflow.Status.PENDING:
            workflow.status, workflow.started_at = Workflow.Status.RUNNING, now
            workflow.save(update_fields=["status", "started_at"])
        step.status, step.started_at = WorkflowStep.Status.RUNNING, now
        step.attempts += 1
        step.save(update_fields=["status", "started_at", "attempts"])
        _emit(workflow, step)
    agent = _resolve_agent(step.agent_ref)
    if agent is None:
        _fail(workflow, step, f"No running agent for {step.agent_ref!r}.")
        return StepOutcome(None, False)
    try:
        completion = agent_complete(agent=agent, conversation=_step_prompt(workflow, step))
    except AgentBudgetExceeded as exc:
        _fail(workflow, step, f"{agent.name}: {exc.message}")
        return StepOutcome(None, False)
    except AgentRuntimeError as exc:
        if not final_attempt:
            return StepOutcome(position, True)
        _fail(workflow, step, f"{agent.name}: {exc.message} ({exc.details})")
        return StepOutcome(None, False)
    return _complete_step(workflow, step, agent, completion.text)


def _complete_step(
    workflow: Workflow, step: WorkflowStep, agent: Agent, output: str
) -> StepOutcome:
    with transaction.atomic():
        locked = WorkflowStep.objects.select_for_update().get(pk=step.pk)
        if locked.status == WorkflowStep.Status.COMPLETED:  # a concurrent redelivery won
            return StepOutcome(step.position + 1, False)
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


# --- C-suite meetings ---------------------------------------------------------------------

DEFAULT_PARTICIPANTS = ("ceo_mimi", "cto_alex", "cfo_cash", "cmo_anova")
DEFAULT_AGENDA = ("Review quarterly performance", "Discuss new initiatives")
_TITLES = {
    "CEO": "ceo_mimi",
    "CFO": "cfo_cash",
    "CTO": "cto_alex",
    "CMO": "cmo_anova",
    "CLO": "clo_sage",
    "CGO": "cgo_agent",
    "CPO": "cpo_agent",
    "CCO": "cco_agent",
    "CRO": "cro_agent",
}


def _participant_type(ref: str) -> str:
    return _TITLES.get(ref.upper(), ref)


def meeting_prepare(
    *, participants: Any, agenda: Any, topic: Any, actor: AbstractBaseUser
) -> tuple[Meeting, list[Agent]]:
    """Validate and store a meeting about to run; 409 when a participant role has no running
    agent."""
    refs = participants if participants is not None else list(DEFAULT_PARTICIPANTS)
    items = agenda if agenda is not None else list(DEFAULT_AGENDA)
    if (
        not isinstance(refs, list)
        or not 1 <= len(refs) <= 9
        or not all(isinstance(r, str) for r in refs)
    ):
        raise ValidationFailed(
            details={"participants": ["1 to 9 roles (CEO, CTO …) or agent types."]}
        )
    if (
        not isinstance(items, list)
        or not 1 <= len(items) <= 10
        or not all(isinstance(i, str) and 1 <= len(i) <= 300 for i in items)
    ):
        raise ValidationFailed(details={"agenda": ["1 to 10 items of 1 to 300 characters."]})
    if topic is not None and (not isinstance(topic, str) or len(topic) > 200):
        raise ValidationFailed(details={"topic": ["At most 200 characters."]})
    types = list(dict.fromkeys(_participant_type(r) for r in refs))
    if "ceo_mimi" not in types:
        types.insert(0, "ceo_mimi")  # the CEO chairs and states the outcomes
    agents, missing = [], []
    for agent_type in types:
        agent = (
            Agent.objects.filter(type=agent_type, status=Agent.Status.RUNNING)
            .order_by("created_at")
            .first()
        )
        (agents.append(agent) if agent else missing.append(agent_type))
    if missing:
        raise ParticipantsNotRunning(details={"missing": missing})
    meeting = Meeting.objects.create(
        meeting_id=_unique_id("meeting", Meeting),
        topic=topic or "",
        participants=[_participant(a) for a in agents],
        agenda=items,
        created_by=actor,
    )
    return meeting, agents


def _participant(agent: Agent) -> dict[str, str]:
    return {"title": ROSTER[agent.type].title, "agent_id": str(agent.agent_id), "name": agent.name}


def _say(agent: Agent, prompt: str) -> str:
    return agent_complete(agent=agent, conversation=[ChatMessage(role="user", content=prompt)]).text


def meeting_run(*, meeting: Meeting, agents: list[Agent]) -> Meeting:
    """Each participant speaks on each agenda item, seeing what was said so far; the CEO then
    states one outcome per item. The transcript is saved as it grows."""
    meeting.transcript, meeting.outcomes = [], []  # a re-run (redelivered task) starts over
    titles = {str(a.agent_id): _participant(a)["title"] for a in agents}
    ceo = next(a for a in agents if a.type == "ceo_mimi")
    try:
        for item in meeting.agenda:
            for agent in agents:
                heard = "\n".join(
                    f"{t['title']}: {t['content']}"
                    for t in meeting.transcript
                    if t["agenda_item"] == item
                )
                about = f" on {meeting.topic}" if meeting.topic else ""
                prompt = f"C-suite meeting{about}. Agenda item: {item}."
                if heard:
                    prompt += f"\nSo far:\n{heard}"
                content = _say(agent, prompt + "\nGive your contribution.")
                meeting.transcript.append(
                    {
                        "agenda_item": item,
                        "title": titles[str(agent.agent_id)],
                        "agent_id": str(agent.agent_id),
                        "content": content,
                    }
                )
                meeting.save(update_fields=["transcript"])
        for item in meeting.agenda:
            said = "\n".join(
                f"{t['title']}: {t['content']}"
                for t in meeting.transcript
                if t["agenda_item"] == item
            )
            meeting.outcomes.append(
                _say(ceo, f"State the outcome of '{item}' in one sentence.\n{said}")
            )
    except (AgentBudgetExceeded, AgentRuntimeError) as exc:
        meeting.status, meeting.error = Meeting.Status.FAILED, exc.message
    else:
        meeting.status = Meeting.Status.COMPLETED
    meeting.finished_at = timezone.now()
    with transaction.atomic():
        meeting.save()
        event_emit(
            event_type=WORKFLOW_EVENT,
            data={
                "id": meeting.meeting_id,
                "name": "C-suite meeting",
                "status": meeting.status,
                "progress": 100,
                "step": None,
            },
            scope=EventScope(owner_id=meeting.created_by_id),
        )
    return meeting


def meeting_duration(meeting: Meeting) -> str:
    seconds = int(((meeting.finished_at or timezone.now()) - meeting.started_at).total_seconds())
    if seconds < 120:
        return f"{seconds} seconds" if seconds != 1 else "1 second"
    return f"{seconds // 60} minutes"


# --- Akash deployments ----------------------------------------------------------------------


def deployment_create(*, body: Any, actor: AbstractBaseUser) -> Deployment:
    try:
        config = akash.deployment_validate(body)
    except ValueError as exc:
        raise ValidationFailed(
            "The deployment configuration is invalid.", details=exc.args[0]
        ) from None
    from questflow.tasks import submit_deployment  # tasks import this module

    with transaction.atomic():
        deployment = Deployment.objects.create(
            deployment_id=_unique_id("akash-deployment", Deployment),
            name=config.name,
            config=body["config"],
            sdl=akash.render_sdl(config),
            backend=settings.AKASH_BACKEND,
            created_by=actor,
        )
        submit_deployment.delay_on_commit(deployment.deployment_id)
    return deployment


def deployment_submit(*, deployment_id: str) -> Deployment | None:
    """Hand the SDL to the backend; idempotent (a deployment past `initiated` is left alone
    unless it failed and is being re-submitted)."""
    deployment = Deployment.objects.filter(pk=deployment_id).first()
    if deployment is None or deployment.status not in (
        Deployment.Status.INITIATED,
        Deployment.Status.FAILED,
    ):
        return deployment
    result = akash.submit(sdl=deployment.sdl)
    deployment.status, deployment.backend_output = result.status, result.output
    deployment.save(update_fields=["status", "backend_output", "updated_at"])
    return deployment
