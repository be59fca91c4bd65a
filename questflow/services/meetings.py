"""C-suite meetings: the running executives speak on each agenda item, then the CEO states
the outcomes."""

from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from agents.exceptions import AgentBudgetExceeded, AgentRuntimeError
from agents.models import Agent
from agents.roster import ROSTER
from agents.runtime import ChatMessage
from agents.services import agent_complete
from questflow.models import Meeting
from questflow.services.ids import unique_id
from questflow.services.workflows import (
    WORKFLOW_EVENT,
    input_size_check,
    step_lease_expired_before,
)
from system.eventlog.events import EventScope
from system.eventlog.services import event_emit
from system.kernel.exceptions import Conflict, ValidationFailed
from system.kernel.outbox import enqueue


class ParticipantsNotRunning(Conflict):
    code = "participants_not_running"
    message = "Some meeting participants have no running agent."


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
    *, participants: Any, agenda: Any, topic: Any, actor: AbstractBaseUser, queue: bool = False
) -> tuple[Meeting, list[Agent]]:
    """Validate and store a meeting about to run; 409 when a participant role has no running
    agent. With `queue`, the worker's task is recorded in the outbox in the same transaction,
    so a broker outage delays the meeting and loses nothing."""
    for field, value in (("participants", participants), ("agenda", agenda), ("topic", topic)):
        input_size_check(value, field=field)
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
    with transaction.atomic():
        meeting = Meeting.objects.create(
            meeting_id=unique_id("meeting", Meeting),
            topic=topic or "",
            participants=[_participant(a) for a in agents],
            agenda=items,
            created_by=actor,
        )
        if queue:
            from questflow.tasks import run_meeting  # tasks import this module

            enqueue(run_meeting, meeting.meeting_id, [str(a.agent_id) for a in agents])
    return meeting, agents


def _participant(agent: Agent) -> dict[str, str]:
    return {"title": ROSTER[agent.type].title, "agent_id": str(agent.agent_id), "name": agent.name}


def _say(agent: Agent, prompt: str) -> str:
    return agent_complete(agent=agent, conversation=[ChatMessage(role="user", content=prompt)]).text


def meeting_claim(meeting: Meeting) -> datetime | None:
    """Claim the meeting by a conditional UPDATE: unclaimed, or claimed on a lapsed lease (its
    run's worker is gone; the lease is a workflow step's, see step_lease_expired_before, and
    each saved turn renews it). The claim time, which every later write compares against,
    or None when another run holds it or the meeting has finished."""
    now = timezone.now()
    claimed = (
        Meeting.objects.filter(pk=meeting.pk, status=Meeting.Status.RUNNING)
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=step_lease_expired_before()))
        .update(claimed_at=now)
    )
    return now if claimed else None


def _save_turn(meeting: Meeting, claimed_at: datetime) -> datetime | None:
    """Save the transcript and outcomes so far, renewing the claim (a heartbeat); the new
    claim time, or None when the claim is no longer ours (the lease lapsed and another run
    took the meeting, or the sweep failed it): then this run must stop speaking."""
    now = timezone.now()
    saved = Meeting.objects.filter(
        pk=meeting.pk, status=Meeting.Status.RUNNING, claimed_at=claimed_at
    ).update(transcript=meeting.transcript, outcomes=meeting.outcomes, claimed_at=now)
    return now if saved else None


def meeting_run(*, meeting: Meeting, agents: list[Agent]) -> Meeting:
    """Each participant speaks on each agenda item, seeing what was said so far; the CEO then
    states one outcome per item. Runs under a claim (see meeting_claim), so two runs never
    both speak and a redelivered task does nothing while the claim holds. Each turn is saved
    as it is said, renewing the claim; a run that takes over a lapsed claim resumes from the
    saved transcript and outcomes, not repeating turns already said. A meeting the sweep
    failed meanwhile (past its time limit) keeps that outcome."""
    claimed_at = meeting_claim(meeting)
    meeting.refresh_from_db()
    if claimed_at is None:
        return meeting
    titles = {str(a.agent_id): _participant(a)["title"] for a in agents}
    ceo = next(a for a in agents if a.type == "ceo_mimi")
    turns = [(item, agent) for item in meeting.agenda for agent in agents]
    try:
        for item, agent in turns[len(meeting.transcript) :]:
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
            claimed_at = _save_turn(meeting, claimed_at)
            if claimed_at is None:
                return _lost(meeting)
        for item in meeting.agenda[len(meeting.outcomes) :]:
            said = "\n".join(
                f"{t['title']}: {t['content']}"
                for t in meeting.transcript
                if t["agenda_item"] == item
            )
            meeting.outcomes.append(
                _say(ceo, f"State the outcome of '{item}' in one sentence.\n{said}")
            )
            claimed_at = _save_turn(meeting, claimed_at)
            if claimed_at is None:
                return _lost(meeting)
    except (AgentBudgetExceeded, AgentRuntimeError) as exc:
        meeting.status, meeting.error = Meeting.Status.FAILED, exc.message
    else:
        meeting.status = Meeting.Status.COMPLETED
    meeting_finish(
        meeting=meeting,
        status=meeting.status,
        error=meeting.error,
        claimed_at=claimed_at,
        transcript=meeting.transcript,
        outcomes=meeting.outcomes,
    )
    meeting.refresh_from_db()
    return meeting


def _lost(meeting: Meeting) -> Meeting:
    # Another run (or the sweep) has the meeting: what this run said last is not kept.
    meeting.refresh_from_db()
    return meeting


def meeting_finish(
    *,
    meeting: Meeting,
    status: str,
    error: str,
    claimed_at: datetime | None = None,
    **fields: Any,
) -> bool:
    """Move a `running` meeting to `status` and announce it; False (nothing changed) when it
    had already finished, e.g. failed by the sweep while its run was still speaking, or,
    with `claimed_at` (a run's claim), when that claim is no longer the meeting's."""
    claim = {} if claimed_at is None else {"claimed_at": claimed_at}
    with transaction.atomic():
        changed = Meeting.objects.filter(
            pk=meeting.pk, status=Meeting.Status.RUNNING, **claim
        ).update(status=status, error=error, finished_at=timezone.now(), **fields)
        if changed:
            event_emit(
                event_type=WORKFLOW_EVENT,
                data={
                    "id": meeting.meeting_id,
                    "name": "C-suite meeting",
                    "status": status,
                    "progress": 100,
                    "step": None,
                    **({"error": error} if error else {}),
                },
                scope=EventScope(owner_id=meeting.created_by_id),
            )
    return bool(changed)


def meeting_duration(meeting: Meeting) -> str:
    seconds = int(((meeting.finished_at or timezone.now()) - meeting.started_at).total_seconds())
    if seconds < 120:
        return f"{seconds} seconds" if seconds != 1 else "1 second"
    return f"{seconds // 60} minutes"
