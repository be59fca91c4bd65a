"""Reads of agents and their performance."""

import uuid
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import (
    Avg,
    Count,
    DecimalField,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, TruncHour
from django.utils import timezone

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


# The back office's figures (agents/admin.py). "Today" is the budgets' day (agents.spend): the
# current UTC date, from midnight.


def usage_day_start(*, now: datetime | None = None) -> datetime:
    """Midnight of the budgets' day containing `now` (agents.spend counts from here)."""
    now = now or timezone.now()
    return datetime.combine(now.date(), time.min, tzinfo=now.tzinfo)


def agent_daily_budget(*, agent: Agent) -> Decimal:
    """The agent's daily budget in USD: its own, else AGENT_DEFAULT_DAILY_BUDGET_USD (as
    agents.spend reserves against)."""
    own = agent.config.get("daily_budget_usd")
    default = settings.AGENT_DEFAULT_DAILY_BUDGET_USD
    return Decimal(str(own if own is not None else default))


def _ledger_figure(since: datetime, value: Any, output_field: Any, **filters: Any) -> Subquery:
    """One figure of each agent's ledger since `since`, as a correlated subquery (the
    (agent, created_at) index serves it), so a page of agents costs a single query."""
    rows = (
        UsageRecord.objects.filter(agent=OuterRef("pk"), created_at__gte=since, **filters)
        .order_by()
        .values("agent")
        .annotate(figure=value)
        .values("figure")
    )
    return Subquery(rows, output_field=output_field)


def agents_with_usage_today(*, queryset: QuerySet | None = None) -> QuerySet:
    """The agents annotated, in the same query, with today's ledger: `spent_today` (USD),
    `calls_today`, `errors_today` (failed calls) and their latest failure
    (`last_error_code`, `last_error_at`, of all time)."""
    queryset = queryset if queryset is not None else Agent.objects.all()
    since = usage_day_start()
    latest_failure = UsageRecord.objects.filter(agent=OuterRef("pk"), success=False).order_by(
        "-created_at"
    )
    return queryset.annotate(
        spent_today=Coalesce(
            _ledger_figure(since, Sum("cost_usd"), DecimalField(max_digits=20, decimal_places=8)),
            Value(Decimal(0)),
            output_field=DecimalField(max_digits=20, decimal_places=8),
        ),
        calls_today=Coalesce(_ledger_figure(since, Count("id"), IntegerField()), Value(0)),
        errors_today=Coalesce(
            _ledger_figure(since, Count("id"), IntegerField(), success=False), Value(0)
        ),
        last_error_code=Subquery(latest_failure.values("error_code")[:1]),
        last_error_at=Subquery(latest_failure.values("created_at")[:1]),
    )


@dataclass(frozen=True)
class UsageHour:
    start: datetime
    calls: int
    errors: int
    cost: Decimal


def agent_usage_hourly(
    *, agent: Agent, hours: int = 24, now: datetime | None = None
) -> list[UsageHour]:
    """The agent's ledger over the last `hours` hours, one entry per hour (the current one
    last), hours without calls included as zeros. One query."""
    now = now or timezone.now()
    last = now.replace(minute=0, second=0, microsecond=0)
    first = last - timedelta(hours=hours - 1)
    rows = (
        UsageRecord.objects.filter(agent=agent, created_at__gte=first)
        .annotate(hour=TruncHour("created_at"))
        .order_by()
        .values("hour")
        .annotate(
            calls=Count("id"), errors=Count("id", filter=Q(success=False)), cost=Sum("cost_usd")
        )
    )
    by_hour = {row["hour"]: row for row in rows}
    series = []
    for i in range(hours):
        start = first + timedelta(hours=i)
        row = by_hour.get(start, {})
        series.append(
            UsageHour(
                start=start,
                calls=row.get("calls", 0),
                errors=row.get("errors", 0),
                cost=Decimal(str(row.get("cost") or 0)),
            )
        )
    return series


def agent_recent_failures(*, agent: Agent, limit: int = 10) -> QuerySet:
    """The agent's latest failed provider calls, newest first."""
    return UsageRecord.objects.filter(agent=agent, success=False).order_by("-created_at")[:limit]


@dataclass(frozen=True)
class AgentSpend:
    agent_uuid: uuid.UUID
    name: str  # the agent's name, or its uuid once the agent is deleted
    calls: int
    cost: Decimal


def agents_top_spend(*, since: datetime, limit: int = 10) -> list[AgentSpend]:
    """The agents that spent most on LLM calls since `since` (the admin dashboard's chart),
    biggest first, with their number of calls. One grouped query on the ledger."""
    rows = (
        UsageRecord.objects.filter(created_at__gte=since)
        .order_by()
        .values("agent_uuid", "agent__name")
        .annotate(calls=Count("id"), cost=Sum("cost_usd"))
        .order_by("-cost", "-calls")[:limit]
    )
    return [
        AgentSpend(
            agent_uuid=row["agent_uuid"],
            name=row["agent__name"] or str(row["agent_uuid"]),
            calls=row["calls"],
            cost=Decimal(str(row["cost"] or 0)),
        )
        for row in rows
    ]


def agent_creators(*, agent_ids: list[uuid.UUID | str]) -> dict[str, tuple[int | None, str]]:
    """{agent id (str): (its creator's user id or None, its name)} for the agents that still
    exist among `agent_ids` (system.notify's alerts: who manages an agent). One query."""
    rows = Agent.objects.filter(agent_id__in=agent_ids).values_list(
        "agent_id", "created_by_id", "name"
    )
    return {str(agent_id): (creator, name) for agent_id, creator, name in rows}
