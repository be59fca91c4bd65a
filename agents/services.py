"""Agent lifecycle and the runtime entry point. Everything that changes an agent is here."""

import logging
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from agents.exceptions import (
    AgentAlreadyRunning,
    AgentNameTaken,
    AgentNotRunning,
    AgentRuntimeError,
)
from agents.models import Agent, UsageRecord
from agents.roster import ROSTER
from agents.runtime import (
    AllCandidatesFailed,
    Attempt,
    ChatMessage,
    Completion,
    ModelConfig,
    get_router,
)
from agents.runtime.tokens import conversation_capped
from agents.spend import Reservation, spend_reserve, spend_settle
from agents.validation import validate_agent_fields
from system.eventlog.events import EventScope
from system.eventlog.services import event_emit
from system.kernel.caching import resource_version_bump

logger = logging.getLogger(__name__)

AGENT_STATUS_EVENT = "agent_status_update"


def _changed(agent: Agent, *, old_name: str | None = None) -> None:
    """Cached reads of the list and of this agent (by id or by name) are now stale."""
    names = {agent.name, old_name} - {None}
    resource_version_bump("agents", f"agent:{agent.agent_id}", *(f"agent:{n}" for n in names))


def _emit_status(agent: Agent) -> None:
    data: dict[str, Any] = {
        "agent_id": agent.agent_id,
        "name": agent.name,
        "status": agent.status,
        "timestamp": agent.updated_at,
    }
    if agent.status_reason:
        data["reason"] = agent.status_reason
    event_emit(event_type=AGENT_STATUS_EVENT, data=data, scope=EventScope(agent_id=agent.agent_id))


def _locked(agent: Agent) -> Agent:
    return Agent.objects.select_for_update().get(pk=agent.pk)


def _status_saved(agent: Agent) -> Agent:
    """Save a status change: cached reads go stale and watchers get `agent_status_update`."""
    agent.save()
    _changed(agent)
    _emit_status(agent)
    return agent


def agent_create(
    *,
    name: str,
    type: str,
    config: dict[str, Any] | None = None,
    skills: list[str] | None = None,
    system_prompt: str | None = None,
    actor: AbstractBaseUser | None = None,
) -> Agent:
    data: dict[str, Any] = {"name": name, "type": type, "config": config or {}}
    if skills is not None:
        data["skills"] = skills
    if system_prompt:
        data["system_prompt"] = system_prompt
    cleaned = validate_agent_fields(data, base_config=dict(settings.DEFAULT_AGENT_CONFIG))
    agent_type = ROSTER[cleaned["type"]]
    persona = cleaned.get("system_prompt") or agent_type.persona.replace("{name}", cleaned["name"])
    try:
        with transaction.atomic():
            agent = Agent.objects.create(
                name=cleaned["name"],
                type=agent_type.key,
                config=cleaned["config"],
                skills=cleaned.get("skills", list(agent_type.skills)),
                system_prompt=persona,
                created_by=actor if actor is not None and actor.is_authenticated else None,
            )
            _changed(agent)
            _emit_status(agent)
    except IntegrityError:
        raise AgentNameTaken(details={"name": name}) from None
    return agent


def agent_update(*, agent: Agent, data: dict[str, Any]) -> Agent:
    """Change any of name, config (merged over the current one), skills, system_prompt."""
    fields = {k: v for k, v in data.items() if k in {"name", "config", "skills", "system_prompt"}}
    cleaned = validate_agent_fields(fields, base_config=dict(agent.config))
    old_name = agent.name
    try:
        with transaction.atomic():
            agent = _locked(agent)
            for field, value in cleaned.items():
                setattr(agent, field, value)
            agent.save()
            _changed(agent, old_name=old_name)
    except IntegrityError:
        raise AgentNameTaken(details={"name": cleaned.get("name")}) from None
    return agent


@transaction.atomic
def agent_start(*, agent: Agent) -> Agent:
    """created/stopped/error → running; starting from error clears the reason."""
    agent = _locked(agent)
    if agent.status == Agent.Status.RUNNING:
        raise AgentAlreadyRunning(details={"agent_id": str(agent.agent_id)})
    agent.status = Agent.Status.RUNNING
    agent.status_reason = ""
    agent.consecutive_failures = 0
    agent.started_at = timezone.now()
    return _status_saved(agent)


@transaction.atomic
def agent_stop(*, agent: Agent) -> Agent:
    agent = _locked(agent)
    if agent.status != Agent.Status.RUNNING:
        raise AgentNotRunning(details={"agent_id": str(agent.agent_id), "status": agent.status})
    agent.status = Agent.Status.STOPPED
    agent.stopped_at = timezone.now()
    return _status_saved(agent)


@transaction.atomic
def agent_restart(*, agent: Agent) -> Agent:
    """Stop (when running) and start again, as one change."""
    if _locked(agent).status == Agent.Status.RUNNING:
        agent_stop(agent=agent)
    return agent_start(agent=agent)


@transaction.atomic
def agent_delete(*, agent: Agent) -> None:
    """Delete an agent; a running one is reported stopped (so watchers see it go). Its usage
    ledger and events stay, keyed by its UUID."""
    agent = _locked(agent)
    was_running = agent.status == Agent.Status.RUNNING
    agent_id = agent.agent_id
    # Delete first, emit last: the delete detaches every ledger row and session the agent
    # ever had, and the emit takes the platform-wide event-log lock until commit.
    agent.delete()
    agent.agent_id = agent_id
    _changed(agent)
    if was_running:
        agent.status = Agent.Status.STOPPED
        agent.stopped_at = agent.updated_at = timezone.now()
        _emit_status(agent)


@transaction.atomic
def agent_mark_error(*, agent: Agent, reason: str) -> Agent:
    agent = _locked(agent)
    agent.status = Agent.Status.ERROR
    agent.status_reason = reason[:500]
    return _status_saved(agent)


# --- The runtime entry point -------------------------------------------------------------


def _record(
    agent: Agent, request_id: uuid.UUID, attempts: list[Attempt], reservation: Reservation
) -> None:
    UsageRecord.objects.bulk_create(
        UsageRecord(
            agent=agent,
            agent_uuid=agent.agent_id,
            request_id=request_id,
            provider=a.provider,
            model=a.model,
            prompt_tokens=a.prompt_tokens,
            completion_tokens=a.completion_tokens,
            cost_usd=a.cost_usd,
            latency_ms=a.latency_ms,
            success=a.success,
            error_code=a.error_code,
        )
        for a in attempts
    )
    spend_settle(reservation=reservation, cost=sum((a.cost_usd for a in attempts), Decimal(0)))


def agent_model_config(agent: Agent) -> ModelConfig:
    config = agent.config
    return ModelConfig(
        model=config["model"],
        temperature=config["temperature"],
        max_tokens=config["max_tokens"],
        top_p=config["top_p"],
        frequency_penalty=config["frequency_penalty"],
        presence_penalty=config["presence_penalty"],
    )


def _prepared(
    agent: Agent, conversation: list[ChatMessage]
) -> tuple[list[ChatMessage], Reservation]:
    """The prompt (persona, then the newest AGENT_PROMPT_MAX_CHARS of the conversation) and
    its cost reserved on the budgets."""
    conversation = conversation_capped(conversation, settings.AGENT_PROMPT_MAX_CHARS)
    messages = [ChatMessage(role="system", content=agent.system_prompt), *conversation]
    estimate = get_router().estimate_cost(messages, agent_model_config(agent))
    return messages, spend_reserve(agent=agent, estimate=estimate)


def agent_complete(*, agent: Agent, conversation: list[ChatMessage]) -> Completion:
    """Ask the agent's model for the next reply to `conversation` (user/assistant turns; the
    persona is prepended here). Every provider call lands in the usage ledger.

    The call's estimated cost is first reserved on the agent's daily budget (its own, else the
    default) and the platform's: AgentBudgetExceeded when either has no room, and no call.
    AgentRuntimeError when every candidate failed; after AGENT_ERROR_AFTER_FAILURES such
    requests in a row the agent moves to `error`. Holds no transaction during the call.
    """
    messages, reservation = _prepared(agent, conversation)
    request_id = uuid.uuid4()
    try:
        result = get_router().complete(messages, agent_model_config(agent))
    except AllCandidatesFailed as exc:
        _record(agent, request_id, exc.attempts, reservation)
        _after_failure(agent, exc)
        raise _runtime_error(exc) from None
    except BaseException:
        spend_settle(reservation=reservation, cost=reservation.amount)  # unknown: count it all
        raise
    _record(agent, request_id, result.attempts, reservation)
    _after_success(agent)
    return result.completion


def agent_stream(*, agent: Agent, conversation: list[ChatMessage]) -> Iterator[str | Completion]:
    """agent_complete, streamed: yields text deltas, then the final Completion. Same budgets,
    ledger and failure handling; the ledger is written when the stream ends (a stream its
    reader abandons is charged its whole reservation)."""
    messages, reservation = _prepared(agent, conversation)
    request_id = uuid.uuid4()
    settled = False
    try:
        for item in get_router().stream(messages, agent_model_config(agent)):
            if isinstance(item, str):
                yield item
            else:
                _record(agent, request_id, item.attempts, reservation)
                settled = True
                _after_success(agent)
                yield item.completion
    except AllCandidatesFailed as exc:
        _record(agent, request_id, exc.attempts, reservation)
        settled = True
        _after_failure(agent, exc)
        raise _runtime_error(exc) from None
    finally:
        if not settled:
            spend_settle(reservation=reservation, cost=reservation.amount)


def _runtime_error(exc: AllCandidatesFailed) -> AgentRuntimeError:
    attempts = [{"provider": a.provider, "error": a.error_code} for a in exc.attempts]
    return AgentRuntimeError(details={"attempts": attempts})


def _after_success(agent: Agent) -> None:
    now = timezone.now()
    Agent.objects.filter(pk=agent.pk).update(last_active=now, consecutive_failures=0)
    agent.last_active, agent.consecutive_failures = now, 0
    _changed(agent)


def _after_failure(agent: Agent, exc: AllCandidatesFailed) -> None:
    Agent.objects.filter(pk=agent.pk).update(consecutive_failures=F("consecutive_failures") + 1)
    agent.refresh_from_db(fields=["consecutive_failures", "status"])
    threshold = settings.AGENT_ERROR_AFTER_FAILURES
    if agent.consecutive_failures >= threshold and agent.status == Agent.Status.RUNNING:
        codes = ", ".join(sorted({a.error_code for a in exc.attempts})) or "no candidate"
        agent_mark_error(
            agent=agent,
            reason=(
                f"{agent.consecutive_failures} requests in a row failed on every provider "
                f"({codes})."
            ),
        )
