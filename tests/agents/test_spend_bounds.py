"""LLM spend is bounded by construction: budgets reserved before the call (per agent, with a
default, and platform-wide), agent replies per user message capped, prompts capped. Calls are
counted at a real local server that speaks the OpenAI protocol."""

import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from agents.exceptions import AgentBudgetExceeded, BudgetUnavailable
from agents.models import Agent, UsageRecord
from agents.roster import ROSTER
from agents.runtime import ChatMessage, get_router
from agents.services import agent_complete, agent_create, agent_model_config, agent_start
from agents.spend import spend_reserve, spend_settle
from messaging.models import Message
from messaging.services import channel_create, message_post_internal
from system.kernel.redis_client import get_redis

pytestmark = pytest.mark.embedded

ASK = [ChatMessage(role="user", content="Summarise the quarter.")]
EXECUTIVES = [
    "ceo_mimi",
    "cfo_cash",
    "cto_alex",
    "cmo_anova",
    "clo_sage",
    "cgo_agent",
    "cpo_agent",
    "cco_agent",
    "cro_agent",
]


@pytest.fixture
def priced(routing_config):
    """gpt-4 → the fake OpenAI server only, at $1 per 1k tokens in and out."""
    return routing_config(models={"gpt-4": [("openai-fake", "gpt-4o", "1", "1")]})


def _agent(name: str = "cash", **config) -> Agent:
    agent = agent_start(agent=agent_create(name=name, type="cfo_cash"))
    if config:
        Agent.objects.filter(pk=agent.pk).update(config={**agent.config, **config})
        agent.refresh_from_db()
    return agent


def _counter(agent: Agent) -> tuple[Decimal, Decimal]:
    """Today's (spent, reserved) of the agent's budget, in USD."""
    key = f"371os:spend:{timezone.now().date().isoformat()}:agent:{agent.agent_id}"
    spent, reserved = get_redis().hmget(key, "spent", "reserved")
    return Decimal(int(spent)) / 10**8, Decimal(int(reserved)) / 10**8


def _estimate(agent: Agent) -> Decimal:
    messages = [ChatMessage(role="system", content=agent.system_prompt), *ASK]
    return get_router().estimate_cost(messages, agent_model_config(agent))


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_calls_against_a_budget_with_room_for_five_make_at_most_six(
    priced, fake_openai
):
    agent = _agent(max_tokens=100)
    estimate = _estimate(agent)
    budget = estimate * Decimal("5.5")
    Agent.objects.filter(pk=agent.pk).update(
        config={**agent.config, "daily_budget_usd": str(budget)}
    )
    agent.refresh_from_db()
    prompt_tokens = int(estimate * 1000) - 100  # each call costs its whole estimate
    for _ in range(20):
        fake_openai.enqueue_text(
            "ok", prompt_tokens=prompt_tokens, completion_tokens=100, delay=0.3
        )
    start = threading.Barrier(20)
    outcomes: list[str] = []

    def call() -> None:
        start.wait()
        try:
            agent_complete(agent=agent, conversation=ASK)
            outcomes.append("answered")
        except AgentBudgetExceeded:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(outcomes) == 20
    assert len(fake_openai.requests) <= 6
    assert outcomes.count("answered") == len(fake_openai.requests)
    spent, reserved = _counter(agent)
    assert reserved == 0
    assert spent <= budget + estimate


@pytest.mark.django_db
def test_an_agent_without_a_budget_gets_the_default_one(priced, fake_openai, settings):
    settings.AGENT_DEFAULT_DAILY_BUDGET_USD = 0.0
    agent = _agent()

    with pytest.raises(AgentBudgetExceeded) as refused:
        agent_complete(agent=agent, conversation=ASK)

    assert refused.value.details["budget"] == "agent"
    assert fake_openai.requests == []


@pytest.mark.django_db
def test_the_platform_budget_stops_every_agent(priced, fake_openai, settings):
    agent = _agent(max_tokens=100)
    settings.PLATFORM_DAILY_BUDGET_USD = float(_estimate(agent) * Decimal("1.5"))
    fake_openai.enqueue_text("ok", prompt_tokens=900, completion_tokens=100)  # costs $1
    agent_complete(agent=agent, conversation=ASK)
    other = _agent("other")

    with pytest.raises(AgentBudgetExceeded) as refused:
        agent_complete(agent=other, conversation=ASK)

    assert refused.value.details["budget"] == "platform"
    assert len(fake_openai.requests) == 1


@pytest.mark.django_db
def test_the_day_starts_from_the_ledger_when_the_counter_is_new(priced, fake_openai):
    agent = _agent(max_tokens=100, daily_budget_usd="2")
    agent_complete(agent=agent, conversation=ASK)
    UsageRecord.objects.filter(agent=agent).update(cost_usd=Decimal("2"))
    get_redis().delete(*get_redis().keys("371os:spend:*"))  # as after a Redis restart

    with pytest.raises(AgentBudgetExceeded):
        agent_complete(agent=agent, conversation=ASK)

    assert len(fake_openai.requests) == 1


@pytest.mark.django_db
def test_no_call_is_made_while_the_budget_counters_are_unreachable(priced, fake_openai, settings):
    agent = _agent()
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    with pytest.raises(BudgetUnavailable) as refused:
        agent_complete(agent=agent, conversation=ASK)

    assert refused.value.http_status == 503
    assert fake_openai.requests == []


@pytest.mark.django_db
def test_the_prompt_keeps_the_newest_turns_within_the_character_cap(priced, fake_openai, settings):
    settings.AGENT_PROMPT_MAX_CHARS = 100
    agent = _agent()
    turns = [ChatMessage(role="user", content=f"{i}" * 40) for i in range(5)]

    agent_complete(agent=agent, conversation=turns)

    sent = fake_openai.requests[0]["messages"]
    assert [m["content"] for m in sent[1:]] == ["3" * 40, "4" * 40]


@pytest.mark.django_db
def test_one_message_to_nine_running_agents_causes_at_most_three_provider_calls(
    priced, fake_openai, make_user, eager_celery, django_capture_on_commit_callbacks
):
    for agent_type in EXECUTIVES:
        agent_start(agent=agent_create(name=agent_type, type=ROSTER[agent_type].key))
    channel = channel_create(
        name="board", type="public", members=EXECUTIVES, actor=make_user("c"), principal=None
    )
    channel.agent_replies_enabled = True
    channel.save(update_fields=["agent_replies_enabled"])

    with django_capture_on_commit_callbacks(execute=True):
        message_post_internal(channel=channel, sender_id="user-1", content="Status, everyone?")

    assert len(fake_openai.requests) == 3
    assert UsageRecord.objects.count() == 3
    assert Message.objects.filter(sender_type="agent").count() == 3


@pytest.mark.django_db
def test_agent_to_agent_replies_count_against_the_same_cap(
    priced, fake_openai, make_user, eager_celery, django_capture_on_commit_callbacks
):
    for agent_type in EXECUTIVES[:2]:
        agent_start(agent=agent_create(name=agent_type, type=agent_type))
    channel = channel_create(
        name="pair", type="public", members=EXECUTIVES[:2], actor=make_user("c"), principal=None
    )
    channel.agent_replies_enabled = True
    channel.save(update_fields=["agent_replies_enabled"])

    with django_capture_on_commit_callbacks(execute=True):
        message_post_internal(channel=channel, sender_id="user-1", content="Debate it.")

    replies = Message.objects.filter(sender_type="agent")
    assert len(fake_openai.requests) == 3
    assert sorted(replies.values_list("reply_depth", flat=True)) == [1, 1, 2]


@pytest.mark.django_db
def test_a_call_reserved_at_zero_is_settled_to_its_actual_cost():
    agent = _agent()
    reservation = spend_reserve(agent=agent, estimate=Decimal("0"))

    spend_settle(reservation=reservation, cost=Decimal("0.25"))

    assert _counter(agent) == (Decimal("0.25"), Decimal("0"))
