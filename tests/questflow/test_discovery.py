"""What a client needs to find its way without reading the code: the workflow templates with
their steps, and where an async meeting's result will be."""

import pytest

from agents.services import agent_create, agent_start
from questflow.templates import workflow_templates

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

TEMPLATES_URL = "/api/workflows/templates"


def test_templates_list_every_template_with_its_steps(client_as):
    response = client_as("agent_manager").get(TEMPLATES_URL)

    assert response.status_code == 200
    listed = {t["key"]: t for t in response.json()["templates"]}
    assert set(listed) == set(workflow_templates()) >= {"plugin_development", "quarterly_review"}
    plugin = listed["plugin_development"]
    assert plugin["name"] == "Plugin Development"
    assert plugin["description"]
    assert [(s["position"], s["agent"]) for s in plugin["steps"]] == [
        (0, "cto_alex"),
        (1, "cpo_agent"),
        (2, "cmo_anova"),
    ]
    assert plugin["steps"][0]["instruction"].startswith("Design the plugin's architecture")


def test_a_listed_template_name_starts_a_workflow(client_as):
    client = client_as("agent_manager")
    name = client.get(TEMPLATES_URL).json()["templates"][0]["name"]

    response = client.post("/api/workflows", {"template": name}, format="json")

    assert response.status_code == 202, response.json()
    assert response.json()["name"] == name


def test_async_meeting_names_where_its_result_will_be(client_as):
    for t in ("ceo_mimi", "cto_alex", "cfo_cash", "cmo_anova"):  # the default board
        agent_start(agent=agent_create(name=t, type=t))
    client = client_as("agent_manager")

    response = client.post("/api/agents/csuite/meeting?async=true", {}, format="json")

    assert response.status_code == 202
    meeting_id = response.json()["meetingId"]
    assert response["Location"] == f"/api/agents/csuite/meetings/{meeting_id}"
    assert client.get(response["Location"]).json()["meetingId"] == meeting_id
