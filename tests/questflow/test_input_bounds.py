"""What a workflow or a meeting sends into prompts is bounded (MAX_INPUT_BYTES), and a
meeting's calls are charged to the same budgets as every other agent call."""

import pytest

from agents.services import agent_create, agent_start
from questflow.models import Meeting, Workflow
from questflow.services.workflows import MAX_INPUT_BYTES
from system.models import EventLogEntry

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


@pytest.fixture
def board():
    return {
        t: agent_start(agent=agent_create(name=t, type=t))
        for t in ("ceo_mimi", "cto_alex", "cfo_cash", "cmo_anova")
    }


def test_workflow_input_over_max_input_bytes_is_400_naming_it(client_as):
    response = client_as("agent_manager").post(
        "/api/workflows",
        {"template": "Plugin Development", "input": {"notes": "x" * MAX_INPUT_BYTES}},
        format="json",
    )

    assert response.status_code == 400
    assert "input" in response.json()["error"]["details"]
    assert not Workflow.objects.exists()


def test_meeting_participants_over_max_input_bytes_is_400_naming_them(client_as, board):
    response = client_as("agent_manager").post(
        "/api/agents/csuite/meeting", {"participants": ["C" * MAX_INPUT_BYTES]}, format="json"
    )

    assert response.status_code == 400
    assert "participants" in response.json()["error"]["details"]
    assert not Meeting.objects.exists()


def test_a_meeting_stops_when_the_platform_budget_is_spent(client_as, board, settings):
    settings.PLATFORM_DAILY_BUDGET_USD = 0.0

    response = client_as("agent_manager").post("/api/agents/csuite/meeting", {}, format="json")

    assert response.json()["status"] == "failed"
    refusal = EventLogEntry.objects.get(event_type="agent_budget_exceeded")
    assert refusal.payload["budget"] == "platform"
