"""Daily budgets: every LLM call reserves its estimated cost on the agent's budget and the
platform's before the provider is asked, and settles to the actual cost after.

The counters (spent, reserved) live in Redis, one hash per budget and day, changed by Lua
scripts: a reservation checks both budgets and holds on both, or on neither, atomically across
processes and machines, so concurrent calls cannot overshoot a budget by more than what one
call costs beyond its estimate. Redis rather than rows because some callers ask an agent
inside their own transaction (a session holds its row lock for the exchange): a counter row
updated there would stay locked until that commit, queueing every other call behind a
provider's answer. The usage ledger stays the record: a day's counter starts from it when the
key is missing (a new day, a restarted Redis). Without Redis no call is made.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal
from typing import NoReturn

import redis
from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from agents.exceptions import AgentBudgetExceeded, BudgetUnavailable
from agents.models import Agent, UsageRecord
from system.eventlog.events import EventScope
from system.eventlog.services import event_emit
from system.kernel.redis_client import get_redis

logger = logging.getLogger(__name__)

AGENT_BUDGET_EVENT = "agent_budget_exceeded"
PLATFORM_SCOPE = "platform"
KEY_PREFIX = "371os:spend:"
_UNITS = 10**8  # counters hold integer hundred-millionths of a dollar, the ledger's precision
_TTL_SECONDS = 2 * 24 * 3600

# KEYS: the budgets' hashes; ARGV: the amount, then each budget. Returns 0 when reserved,
# i when budget i has no room, -i when counter i does not exist yet.
_RESERVE = """
local amount = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local spent = redis.call('HGET', key, 'spent')
  if not spent then return -i end
  local held = tonumber(spent) + tonumber(redis.call('HGET', key, 'reserved') or '0')
  local budget = tonumber(ARGV[i + 1])
  if held >= budget or held + amount > budget then return i end
end
for _, key in ipairs(KEYS) do redis.call('HINCRBY', key, 'reserved', amount) end
return 0
"""
# KEYS: the budgets' hashes; ARGV: the reserved amount, the actual cost. A counter lost since
# the reservation (Redis restarted) is left alone: it restarts from the ledger.
_SETTLE = """
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    redis.call('HINCRBY', key, 'reserved', 0 - tonumber(ARGV[1]))  -- never -0: HINCRBY refuses it
    redis.call('HINCRBY', key, 'spent', tonumber(ARGV[2]))
  end
end
return 0
"""


@dataclass(frozen=True)
class Reservation:
    """An amount held on some budgets' counters for one call, until spend_settle."""

    keys: tuple[str, ...]
    units: int

    @property
    def amount(self) -> Decimal:
        return Decimal(self.units) / _UNITS


def _units(amount: Decimal) -> int:
    return int((amount * _UNITS).to_integral_value())


def _budgets(agent: Agent) -> dict[str, Decimal]:
    """The agent's daily budget (its own, else AGENT_DEFAULT_DAILY_BUDGET_USD) and the
    platform's, by scope."""
    own = agent.config.get("daily_budget_usd")
    default = settings.AGENT_DEFAULT_DAILY_BUDGET_USD
    return {
        f"agent:{agent.agent_id}": Decimal(str(own if own is not None else default)),
        PLATFORM_SCOPE: Decimal(str(settings.PLATFORM_DAILY_BUDGET_USD)),
    }


def _key(scope: str, day: str) -> str:
    return f"{KEY_PREFIX}{day}:{scope}"


def _counter_open(agent: Agent, scope: str, key: str) -> None:
    """Start today's counter from the ledger, unless another process just did."""
    now = timezone.now()
    ledger = UsageRecord.objects.filter(
        created_at__gte=datetime.combine(now.date(), time.min, tzinfo=now.tzinfo)
    )
    if scope != PLATFORM_SCOPE:
        ledger = ledger.filter(agent_uuid=agent.agent_id)
    spent = ledger.aggregate(total=Sum("cost_usd"))["total"] or Decimal(0)
    pipe = get_redis().pipeline(transaction=True)
    pipe.hsetnx(key, "spent", _units(spent))
    pipe.hsetnx(key, "reserved", 0)
    pipe.expire(key, _TTL_SECONDS)
    pipe.execute()


def spend_reserve(*, agent: Agent, estimate: Decimal) -> Reservation:
    """Hold `estimate` on the agent's and the platform's budgets for today, on both or on
    neither. Raises AgentBudgetExceeded (with an event) when either has no room, and
    BudgetUnavailable when Redis cannot be reached."""
    budgets = _budgets(agent)
    day = timezone.now().date().isoformat()
    scopes = list(budgets)
    keys = [_key(scope, day) for scope in scopes]
    units = max(0, _units(estimate))
    try:
        client = get_redis()
        reserve = client.register_script(_RESERVE)
        for _ in range(len(keys) + 1):
            outcome = reserve(keys=keys, args=[units, *(_units(budgets[s]) for s in scopes)])
            if outcome >= 0:
                break
            _counter_open(agent, scopes[-outcome - 1], keys[-outcome - 1])
    except redis.RedisError as exc:
        logger.warning("no LLM call for agent %s: budget counters unavailable (%s)", agent, exc)
        raise BudgetUnavailable(details={"agent_id": str(agent.agent_id)}) from None
    if outcome == 0:
        return Reservation(keys=tuple(keys), units=units)
    if outcome < 0:  # counters vanished as fast as they were made: nothing can be counted
        raise BudgetUnavailable(details={"agent_id": str(agent.agent_id)})
    _refuse(agent, scopes[outcome - 1], budgets[scopes[outcome - 1]], keys[outcome - 1])


def _refuse(agent: Agent, scope: str, budget: Decimal, key: str) -> NoReturn:
    counter = get_redis().hmget(key, "spent", "reserved")
    spent, reserved = (Decimal(int(value or 0)) / _UNITS for value in counter)
    details = {
        "agent_id": str(agent.agent_id),
        "budget": "platform" if scope == PLATFORM_SCOPE else "agent",
        "daily_budget_usd": str(budget),
        "spent_usd": f"{spent:.6f}",
        "reserved_usd": f"{reserved:.6f}",
    }
    with transaction.atomic():
        event_emit(
            event_type=AGENT_BUDGET_EVENT,
            data={**details, "timestamp": timezone.now()},
            scope=EventScope(agent_id=agent.agent_id),
        )
    raise AgentBudgetExceeded(details=details)


def spend_settle(*, reservation: Reservation, cost: Decimal) -> None:
    """Replace the reservation by the actual cost. If Redis cannot be reached the ledger
    still has the cost; the held amount stays until the day's counter expires."""
    try:
        settle = get_redis().register_script(_SETTLE)
        settle(keys=list(reservation.keys), args=[reservation.units, max(0, _units(cost))])
    except redis.RedisError as exc:
        logger.warning("budget counters not settled (%s); the ledger has the cost", exc)
