"""Email alerts from the event log (notify.alerts_scan): an agent moved to `error` mails its
creator; an agent's daily budget reached mails its creator, the platform's every admin."""

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agents.exceptions import AgentBudgetExceeded, AgentRuntimeError
from agents.runtime import ChatMessage
from agents.services import agent_complete, agent_create, agent_start
from system.models import AlertSent, EventLogEntry, LogCursor
from system.notify.alert_tasks import alerts_send
from system.notify.alerts import notification_settings_update
from tests.agents import conftest as agents_fixtures
from tests.notify import alerts_fixtures

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

# Fixtures shared with the other alert tests (pytest finds them as module attributes).
_fresh_deprecation_counters = alerts_fixtures._fresh_deprecation_counters
locmem_email = alerts_fixtures.locmem_email
scan = alerts_fixtures.scan
fake_openai = agents_fixtures.fake_openai
fake_anthropic = agents_fixtures.fake_anthropic
routing_config = agents_fixtures.routing_config

ASK = [ChatMessage(role="user", content="Summarise the quarter.")]


@pytest.fixture
def carol(make_user):
    return make_user("carol", roles=("agent_manager",), email="carol@example.com")


@pytest.fixture
def agent(carol):
    return agent_start(agent=agent_create(name="cash", type="cfo_cash", actor=carol))


def fail_until_error(routing_config, fake_openai, agent, settings) -> None:
    routing_config(models={"gpt-4": [("openai-fake", "gpt-4o")]}, failures=100)
    settings.AGENT_ERROR_AFTER_FAILURES = 2
    for _ in range(2):
        fake_openai.enqueue_status(503)
        with pytest.raises(AgentRuntimeError):
            agent_complete(agent=agent, conversation=ASK)


def test_an_agent_moved_to_error_mails_its_creator_once(
    locmem_email, scan, routing_config, fake_openai, agent, settings
):
    scan()  # the cursor starts at the log's head
    fail_until_error(routing_config, fake_openai, agent, settings)

    assert scan() == 1

    assert [e.to for e in locmem_email] == [["carol@example.com"]]
    email = locmem_email[0]
    assert 'The agent "cash"' in email.body and "error" in email.subject
    assert "server_error" in email.body
    assert email.alternatives[0][1] == "text/html"
    assert AlertSent.objects.get().subject_key == str(agent.agent_id)
    assert scan() == 0
    assert len(locmem_email) == 1


def test_the_scan_reads_only_after_its_cursor(
    locmem_email, scan, routing_config, fake_openai, agent, settings
):
    fail_until_error(routing_config, fake_openai, agent, settings)

    assert scan() == 0  # a new cursor starts at the head: no alerts for history

    assert locmem_email == []
    assert LogCursor.objects.get(name="alerts").last_event_id >= (
        EventLogEntry.objects.order_by("-event_id").first().event_id
    )


def test_an_agent_budget_reached_mails_its_creator(locmem_email, scan, agent, settings):
    scan()
    settings.AGENT_DEFAULT_DAILY_BUDGET_USD = 0.0
    for _ in range(3):
        with pytest.raises(AgentBudgetExceeded):
            agent_complete(agent=agent, conversation=ASK)

    assert scan() == 1

    assert [e.to for e in locmem_email] == [["carol@example.com"]]
    assert 'daily LLM budget of the agent "cash"' in locmem_email[0].body


def test_many_refusals_in_one_scan_cost_what_one_does(locmem_email, scan, agent, settings):
    scan()
    settings.AGENT_DEFAULT_DAILY_BUDGET_USD = 0.0

    def refused_then_scanned(times: int) -> int:
        for _ in range(times):
            with pytest.raises(AgentBudgetExceeded):
                agent_complete(agent=agent, conversation=ASK)
        with CaptureQueriesContext(connection) as queries:
            scan()
        return len(queries)

    refused_then_scanned(1)  # the alert of the day
    assert refused_then_scanned(25) == refused_then_scanned(1)
    assert len(locmem_email) == 1


def test_the_platform_budget_reached_mails_every_admin(
    locmem_email, scan, agent, settings, make_user
):
    make_user("root", email="root@example.com", is_superuser=True)
    make_user("ada", roles=("admin",), email="ada@example.com")
    make_user("gone", roles=("admin",), email="gone@example.com", is_active=False)
    scan()
    settings.PLATFORM_DAILY_BUDGET_USD = 0.0
    for _ in range(2):
        with pytest.raises(AgentBudgetExceeded):
            agent_complete(agent=agent, conversation=ASK)

    assert scan() == 2

    assert sorted(e.to[0] for e in locmem_email) == ["ada@example.com", "root@example.com"]
    assert "The platform's daily LLM budget" in locmem_email[0].body
    assert set(AlertSent.objects.values_list("subject_key", flat=True)) == {"platform"}


def test_a_kind_turned_off_is_not_sent(locmem_email, scan, agent, carol, settings):
    notification_settings_update(user_id=carol.pk, alerts={"budget_reached": False})
    scan()
    settings.AGENT_DEFAULT_DAILY_BUDGET_USD = 0.0
    with pytest.raises(AgentBudgetExceeded):
        agent_complete(agent=agent, conversation=ASK)

    assert scan() == 0
    assert locmem_email == []


def test_the_send_task_is_idempotent(locmem_email, scan, agent, settings):
    scan()
    settings.AGENT_DEFAULT_DAILY_BUDGET_USD = 0.0
    with pytest.raises(AgentBudgetExceeded):
        agent_complete(agent=agent, conversation=ASK)
    scan()
    alert = AlertSent.objects.get()

    alerts_send.apply(args=[alert.pk])
    alerts_send.apply(args=[alert.pk])

    assert len(mail.outbox) == 1
