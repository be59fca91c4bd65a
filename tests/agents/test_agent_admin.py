"""The agent admin through the real admin URLs (Django's test client, logged in as staff):
the add form lets staff choose a type and saves, and the change page shows the usage ledger's
figures. tests/e2e/test_admin_browser.py drives the same pages in headless Chromium."""

import re

import pytest
from django.urls import reverse

from agents.models import Agent
from agents.runtime import ChatMessage
from agents.services import agent_complete, agent_create, agent_start
from tests.agents.test_admin_back_office import ledger

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

ADD_URL = "/admin/agents/agent/add/"
ADD_FORM = {
    "name": "alex-admin",
    "type": "cto_alex",
    "system_prompt": "",
    "skills_text": "",
    "model": "gpt-4",
    "temperature": "0.3",
    "max_tokens": "512",
    "top_p": "1",
    "frequency_penalty": "0",
    "presence_penalty": "0",
    "daily_budget_usd": "2.50",
}


def select_tag(html: str, name: str) -> str:
    return re.search(rf"<select[^>]*name=\"{name}\"[^>]*>", html).group(0)


def input_value(html: str, name: str) -> str | None:
    tag = re.search(rf"<input[^>]*name=\"{name}\"[^>]*>", html).group(0)
    value = re.search(r'value="([^"]*)"', tag)
    return value.group(1) if value else None


def test_the_add_form_lets_staff_choose_the_type(admin_client):
    html = admin_client.get(ADD_URL).content.decode()

    assert "disabled" not in select_tag(html, "type")


def test_the_add_form_starts_from_the_default_agent_config(admin_client, settings):
    html = admin_client.get(ADD_URL).content.decode()

    assert input_value(html, "model") == settings.DEFAULT_AGENT_CONFIG["model"]
    assert input_value(html, "max_tokens") == str(settings.DEFAULT_AGENT_CONFIG["max_tokens"])


def test_staff_add_an_agent_through_the_admin_form(admin_client):
    response = admin_client.post(ADD_URL, ADD_FORM)

    assert response.status_code == 302, response.content.decode()[:3000]
    agent = Agent.objects.get(name="alex-admin")
    assert agent.type == "cto_alex"
    assert (agent.config["temperature"], agent.config["max_tokens"]) == (0.3, 512)
    assert agent.config["daily_budget_usd"] == "2.50"
    assert agent.skills == ["architecture", "technical_planning", "code_review"]
    assert agent.system_prompt.startswith("You are Alex, the CTO of 371OS.")


def test_the_usage_ledger_shows_tokens_cost_and_latency(admin_client, routing_config, fake_openai):
    routing_config(models={"gpt-4": [("openai-fake", "gpt-4o", "1", "1")]})
    fake_openai.enqueue_text("Fine.", prompt_tokens=600, completion_tokens=400)
    agent = agent_start(agent=agent_create(name="cash-ledger", type="cfo_cash"))
    agent_complete(agent=agent, conversation=[ChatMessage(role="user", content="Spend?")])

    url = reverse("admin:agents_agent_change", args=[agent.pk])
    html = admin_client.get(url).content.decode()

    assert "1 calls (0 failed), 600 prompt + 400 completion tokens, $1.00000000 in all." in html
    row = re.search(r"<tr><td>[\d: -]+</td><td>openai-fake</td>.*?</tr>", html).group(0)
    cells = re.findall(r"<td>([^<]*)</td>", row)
    assert cells[2:6] == ["gpt-4o", "600", "400", "1.00000000"]
    assert re.fullmatch(r"\d+", cells[6]), cells
    assert cells[7] == "ok"


def test_a_free_call_shows_a_zero_cost_not_a_decimal_exponent(admin_client):
    """A builtin answer costs 0: PostgreSQL hands back Decimal('0E-8'), printed as is before."""
    agent = agent_start(agent=agent_create(name="free", type="cto_alex"))
    ledger(agent, cost="0")

    html = admin_client.get(reverse("admin:agents_agent_change", args=[agent.pk])).content.decode()

    assert "<td>0.00000000</td>" in html
    assert "E-8" not in html
