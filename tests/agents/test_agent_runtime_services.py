"""agent_complete: the usage ledger, performance metrics, budgets and the move to `error`,
against fake providers speaking the OpenAI protocol."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agents.exceptions import AgentBudgetExceeded, AgentRuntimeError
from agents.models import Agent, UsageRecord
from agents.runtime import ChatMessage
from agents.services import agent_complete, agent_create, agent_delete, agent_start
from system.models import EventLogEntry

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

ASK = [ChatMessage(role="user", content="Summarise the quarter.")]


@pytest.fixture
def priced(routing_config):
    """gpt-4 → the fake OpenAI server ($1 per 1k tokens in and out), then builtin."""
    return routing_config(
        models={"gpt-4": [("openai-fake", "gpt-4o", "1", "1"), ("builtin", "builtin-responder")]}
    )


@pytest.fixture
def agent():
    return agent_start(agent=agent_create(name="cash", type="cfo_cash"))


def test_every_attempt_lands_in_the_ledger(priced, fake_openai, agent):
    fake_openai.enqueue_status(500)

    completion = agent_complete(agent=agent, conversation=ASK)

    rows = list(UsageRecord.objects.filter(agent=agent).order_by("created_at", "id"))
    assert completion.provider == "builtin"
    assert [(r.provider, r.success, r.error_code) for r in rows] == [
        ("openai-fake", False, "server_error"),
        ("builtin", True, ""),
    ]
    assert len({r.request_id for r in rows}) == 1
    assert fake_openai.requests[0]["messages"][0] == {
        "role": "system",
        "content": agent.system_prompt,
    }


def test_cost_comes_from_the_candidates_prices(priced, fake_openai, agent):
    fake_openai.enqueue_text("Fine.", prompt_tokens=600, completion_tokens=400)

    agent_complete(agent=agent, conversation=ASK)

    assert UsageRecord.objects.get(agent=agent).cost_usd == Decimal("1.0")


def test_performance_metrics_come_from_the_ledger(priced, fake_openai, agent, client_as):
    fake_openai.enqueue_status(500)
    agent_complete(agent=agent, conversation=ASK)  # openai fails, builtin answers
    fake_openai.enqueue_text("ok")
    agent_complete(agent=agent, conversation=ASK)

    metrics = (
        client_as("system_monitor")
        .get(f"/api/v1/agents/{agent.agent_id}")
        .json()["performance_metrics"]
    )

    assert metrics["success_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert metrics["task_completion_rate"] == 1.0
    assert metrics["error_count"] == 1
    assert metrics["total_requests"] == 2
    assert metrics["response_time_ms"] >= 0


def test_a_spent_daily_budget_refuses_with_402_and_an_event(priced, fake_openai, agent):
    config = {**agent.config, "daily_budget_usd": "0.5", "max_tokens": 50}
    Agent.objects.filter(pk=agent.pk).update(config=config)
    agent.refresh_from_db()
    fake_openai.enqueue_text("Costly.", prompt_tokens=500, completion_tokens=500)
    agent_complete(agent=agent, conversation=ASK)  # reserves well under $0.5, spends $1

    with pytest.raises(AgentBudgetExceeded) as refused:
        agent_complete(agent=agent, conversation=ASK)

    assert refused.value.http_status == 402
    assert refused.value.details["spent_usd"] == "1.000000"
    assert len(fake_openai.requests) == 1
    event = EventLogEntry.objects.get(event_type="agent_budget_exceeded")
    assert event.payload["agent_id"] == str(agent.agent_id)


def test_repeated_total_failures_move_the_agent_to_error(
    routing_config, fake_openai, agent, settings
):
    routing_config(models={"gpt-4": [("openai-fake", "gpt-4o")]}, failures=100)
    settings.AGENT_ERROR_AFTER_FAILURES = 3
    for _ in range(3):
        fake_openai.enqueue_status(503)

    for _ in range(3):
        with pytest.raises(AgentRuntimeError):
            agent_complete(agent=agent, conversation=ASK)

    agent.refresh_from_db()
    assert agent.status == "error"
    assert "server_error" in agent.status_reason
    last = (
        EventLogEntry.objects.filter(event_type="agent_status_update").order_by("event_id").last()
    )
    assert (last.payload["status"], last.payload["reason"]) == ("error", agent.status_reason)
    assert UsageRecord.objects.filter(agent=agent, success=False).count() == 3


def test_a_success_resets_the_failure_count(routing_config, fake_openai, agent, settings):
    routing_config(models={"gpt-4": [("openai-fake", "gpt-4o")]}, failures=100)
    settings.AGENT_ERROR_AFTER_FAILURES = 2
    fake_openai.enqueue_status(503)
    with pytest.raises(AgentRuntimeError):
        agent_complete(agent=agent, conversation=ASK)
    fake_openai.enqueue_text("back")
    agent_complete(agent=agent, conversation=ASK)
    fake_openai.enqueue_status(503)

    with pytest.raises(AgentRuntimeError):
        agent_complete(agent=agent, conversation=ASK)

    agent.refresh_from_db()
    assert agent.status == "running"


def test_deleting_an_agent_keeps_its_ledger(priced, fake_openai, agent):
    agent_complete(agent=agent, conversation=ASK)
    agent_id = agent.agent_id

    agent_delete(agent=agent)

    assert UsageRecord.objects.filter(agent_uuid=agent_id, agent__isnull=True).count() == 1


def test_deleting_a_running_agent_detaches_its_ledger_before_any_event_is_emitted(
    priced, fake_openai, agent, client_as
):
    agent_complete(agent=agent, conversation=ASK)
    client = client_as("admin")
    ledger, event_log = UsageRecord._meta.db_table, EventLogEntry._meta.db_table

    with CaptureQueriesContext(connection) as queries:
        response = client.delete(f"/api/v1/agents/{agent.agent_id}")

    assert response.status_code == 204
    sql = [q["sql"] for q in queries.captured_queries]
    first_emit = next(
        i for i, s in enumerate(sql) if "pg_advisory_xact_lock" in s or f'INTO "{event_log}"' in s
    )
    assert not [s for s in sql[first_emit:] if f'"{ledger}"' in s]
