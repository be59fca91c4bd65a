"""The agents back office through the real admin URLs (Django's test client, logged in as
staff): the list's live figures from the usage ledger in one query for the page, and an
agent's page with its last 24 hours as an SVG bar chart, its recent messages and failures.
tests/e2e/test_admin_browser.py opens the chart in headless Chromium."""

import re
import uuid
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from agents.models import Agent, UsageRecord
from agents.services import agent_create
from messaging.models import Channel, Message

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

LIST_URL = "/admin/agents/agent/"


@pytest.fixture(autouse=True)
def midday():
    """Noon UTC today: "today's" calls and spend (since midnight) hold the ledger rows made a
    few minutes back whatever the hour the suite runs at."""
    noon = datetime.combine(timezone.now().date(), time(12), tzinfo=UTC)
    with time_machine.travel(noon, tick=True):
        yield


def ledger(agent: Agent, *, cost: str, ago: timedelta = timedelta(0), error: str = "") -> None:
    UsageRecord.objects.create(
        agent=agent,
        agent_uuid=agent.agent_id,
        request_id=uuid.uuid4(),
        provider="openai-fake",
        model="gpt-4o",
        prompt_tokens=100,
        completion_tokens=50,
        cost_usd=Decimal(cost),
        latency_ms=12.5,
        success=not error,
        error_code=error,
        created_at=timezone.now() - ago,
    )


def cell(html: str, agent: Agent, field: str) -> str:
    """The changelist cell `field` in the agent's row (rows are <tr> with a link to it)."""
    row = re.search(rf"<tr>(?:(?!</tr>).)*{agent.pk}/change/(?:(?!</tr>).)*</tr>", html, re.S)
    assert row, f"no row for {agent.name}"
    found = re.search(rf'<td class="field-{field}[^"]*">(.*?)</td>', row.group(0), re.S)
    assert found, f"no {field} cell in {row.group(0)[:2000]}"
    return found.group(1)


def set_status(agent: Agent, status: str, reason: str = "") -> None:
    Agent.objects.filter(pk=agent.pk).update(status=status, status_reason=reason)


def test_the_list_shows_status_spend_against_budget_calls_and_errors(admin_client):
    cash = agent_create(name="cash-list", type="cfo_cash", config={"daily_budget_usd": "5.00"})
    ledger(cash, cost="0.30")
    ledger(cash, cost="0.12", ago=timedelta(minutes=5))
    ledger(cash, cost="0", ago=timedelta(minutes=9), error="rate_limited")
    ledger(cash, cost="3.00", ago=timedelta(days=1, hours=1))  # yesterday: not today's spend
    set_status(cash, "running")
    sage = agent_create(name="sage-list", type="clo_sage")
    set_status(sage, "error", "every provider failed 3 times in a row")

    html = admin_client.get(LIST_URL).content.decode()

    assert 'class="agent-status agent-status-running" style="background:#1a7f37' in html
    assert 'class="agent-status agent-status-error" style="background:#cf222e' in html
    assert "CFO · Cash" in cell(html, cash, "type_label")
    assert "CLO · Sage" in cell(html, sage, "type_label")
    assert "$0.42 / $5.00" in cell(html, cash, "spend_today")
    assert "width:8%" in cell(html, cash, "spend_today")  # 0.42 of 5.00, as the bar
    assert cell(html, cash, "calls_today") == "3"
    assert cell(html, cash, "errors_today") == "1"
    assert cell(html, cash, "last_error") == "rate_limited"
    assert cell(html, sage, "last_error").startswith("every provider failed")
    assert cell(html, sage, "calls_today") == "0"
    assert "$0.00 / $" in cell(html, sage, "spend_today")
    assert "gpt-4 →" in cell(html, cash, "provider_model")
    assert '<meta http-equiv="refresh" content="30">' in html


def test_the_lists_query_count_does_not_grow_with_the_number_of_agents(admin_client):
    def page_queries(n_agents: int) -> tuple[int, str]:
        for i in range(Agent.objects.count(), n_agents):
            agent = agent_create(name=f"agent-{i}", type="custom")
            ledger(agent, cost="0.01")
            ledger(agent, cost="0", error="timeout")
        with CaptureQueriesContext(connection) as queries:
            html = admin_client.get(LIST_URL).content.decode()
        return len(queries), html

    few, _ = page_queries(1)
    many, html = page_queries(8)

    assert many == few, f"{few} queries for 1 agent, {many} for 8"
    for agent in Agent.objects.all():
        assert cell(html, agent, "calls_today") == "2"
        assert cell(html, agent, "errors_today") == "1"
        assert cell(html, agent, "last_error") == "timeout"


def test_the_agent_page_charts_the_last_24_hours_from_the_ledger(admin_client):
    agent = agent_create(name="alex-chart", type="cto_alex")
    ledger(agent, cost="0.01")
    ledger(agent, cost="0.02")
    ledger(agent, cost="0", ago=timedelta(hours=5), error="provider_unavailable")
    ledger(agent, cost="9.99", ago=timedelta(hours=30))  # older than the chart's day
    now = timezone.now()

    html = admin_client.get(reverse("admin:agents_agent_change", args=[agent.pk])).content.decode()

    svg = re.search(r'<svg class="agent-usage-chart".*?</svg>', html, re.S).group(0)
    calls = re.findall(r'<rect class="bar bar-calls"[^>]*data-hour="([^"]+)" data-calls="(\d+)"'
                       r' data-errors="(\d+)"', svg)  # fmt: skip
    costs = re.findall(r'<rect class="bar bar-cost"[^>]*data-hour="[^"]+" data-cost="([^"]+)"', svg)
    assert len(calls) == len(costs) == 24
    assert calls[-1] == (f"{now:%H}:00", "2", "0")
    assert calls[-6] == (f"{now - timedelta(hours=5):%H}:00", "1", "1")
    assert sum(int(c) for _, c, _ in calls) == 3
    assert costs[-1] == "0.03000000"
    assert sum(Decimal(c) for c in costs) == Decimal("0.03")
    assert "Last 24 hours: 3 calls (1 failed), $0.030000" in html


def test_the_agent_page_shows_its_recent_messages_and_failures(admin_client):
    agent = agent_create(name="anova-talks", type="cmo_anova")
    launch = Channel.objects.create(name="launch-plans", type=Channel.Type.PUBLIC)
    Message.objects.create(
        channel=launch, sender_id=str(agent.pk), sender_type="agent", content="Campaign is go."
    )
    Message.objects.create(
        channel=launch, sender_id="someone", sender_type="user", content="Not the agent's."
    )
    ledger(agent, cost="0", error="budget_exceeded")

    html = admin_client.get(reverse("admin:agents_agent_change", args=[agent.pk])).content.decode()

    messages = re.search(r'<table class="agent-recent-messages">.*?</table>', html, re.S).group(0)
    assert "launch-plans (public)" in messages
    assert "Campaign is go." in messages
    assert "Not the agent&#x27;s." not in messages
    errors = re.search(r'<table class="agent-recent-errors">.*?</table>', html, re.S).group(0)
    assert "budget_exceeded" in errors and "openai-fake" in errors
