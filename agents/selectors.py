"""Reads of agents and their performance."""

import uuid
from typing import Any

from django.db.models import Avg, Count, Q, QuerySet

from agents.exceptions import AgentNotFound
from agents.models import Agent, UsageRecord
from system.kernel.access import unique_or_none


def agent_get(*, ref: str, queryset: QuerySet | None = None) -> Agent:
    """By UUID or by unique name (the spec's examples use names like `ceo-mimi-001` as ids)."""
    queryset = queryset if queryset is not None else Agent.objects.all()
    try:
        lookup = Q(agent_id=uuid.UUID(ref))
    except ValueError:
        lookup = Q(name=ref)
    agent = unique_or_none(queryset.filter(lookup))
    if agent is None:
        raise AgentNotFound(details={"agent_id": ref})
    return agent


def agent_performance_metrics(*, agent: Agent) -> dict[str, Any]:
    """From the usage ledger, all time: mean latency of answered calls, share of provider
    calls that succeeded, share of requests (fallbacks grouped) that got an answer, and the
    number of failed calls."""
    # One pass over the agent's ledger rows for all five figures.
    usage = UsageRecord.objects.filter(agent=agent).aggregate(
        calls=Count("id"),
        ok=Count("id", filter=Q(success=True)),
        latency=Avg("latency_ms", filter=Q(success=True)),
        requests=Count("request_id", distinct=True),
        completed=Count("request_id", distinct=True, filter=Q(success=True)),
    )
    calls, requests = usage["calls"], usage["requests"]
    # With no history every rate is 0; `total_requests` tells "no data" from "all failed".
    return {
        "response_time_ms": round(usage["latency"] or 0.0, 1),
        "success_rate": round(usage["ok"] / calls, 4) if calls else 0.0,
        "task_completion_rate": round(usage["completed"] / requests, 4) if requests else 0.0,
        "error_count": calls - usage["ok"],
        "total_requests": requests,
    }


def agents_running_count() -> int:
    """Agents in status running (the status API's and /metrics' `active_agents`)."""
    return Agent.objects.filter(status=Agent.Status.RUNNING).count()


def agents_count_by_status() -> dict[str, int]:
    """How many agents are in each status, by status name; statuses with none are absent."""
    rows = Agent.objects.values("status").annotate(n=Count("pk")).order_by("status")
    return {row["status"]: row["n"] for row in rows}
