"""The spec's two examples, verbatim, against the stack `make run` starts over the seeded demo:
"Creating an Agent with curl" (the demo admin's API key) and "Starting a Session with
Postman" (a Bearer JWT for the seeded `admin`, `"agent_id": "ceo-mimi-001"`)."""

import re

import httpx
import pytest

from agents.models import Agent
from tests.e2e.conftest import DEMO_ADMIN_PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.embedded]


# The request bodies exactly as the spec's "Examples and Usage" prints them.
CURL_CREATE_AGENT = """{
    "name": "marketing-assistant",
    "type": "cmo_anova",
    "config": {
      "model": "gpt-4",
      "temperature": 0.7,
      "max_tokens": 1000
    },
    "skills": ["content_generation", "market_analysis"]
  }"""
POSTMAN_CREATE_SESSION = """{
  "agent_id": "ceo-mimi-001",
  "user_id": "user-123",
  "context": {
    "conversation_topic": "Q4 strategy planning"
  }
}"""
ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


def test_the_curl_example_creates_the_agent(live_stack, demo):
    response = httpx.post(
        f"{live_stack.api_url}/api/v1/agents",
        headers={"Authorization": f"ApiKey {demo}", "Content-Type": "application/json"},
        content=CURL_CREATE_AGENT,
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert {"agent_id", "name", "type", "status", "created_at", "config"} <= set(body)
    assert (body["name"], body["type"], body["status"]) == (
        "marketing-assistant",
        "cmo_anova",
        "created",
    )
    spec_config = {"model": "gpt-4", "temperature": 0.7, "max_tokens": 1000}
    assert {k: body["config"][k] for k in spec_config} == spec_config
    assert ISO_TIME.match(body["created_at"])


def test_the_postman_example_starts_a_session_with_the_seeded_ceo(live_stack, demo):
    token = httpx.post(
        f"{live_stack.api_url}/api/v1/auth/token",
        json={"username": "admin", "password": DEMO_ADMIN_PASSWORD},
    )
    assert token.status_code == 200, token.text

    response = httpx.post(
        f"{live_stack.api_url}/api/v1/sessions",
        headers={
            "Authorization": f"Bearer {token.json()['access']}",
            "Content-Type": "application/json",
        },
        content=POSTMAN_CREATE_SESSION,
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert {"session_id", "agent_id", "user_id", "created_at", "expires_at", "status"} <= set(body)
    assert (body["agent_id"], body["user_id"], body["status"]) == (
        "ceo-mimi-001",
        "user-123",
        "active",
    )
    assert body["agent_uuid"] == str(Agent.objects.get(name="ceo-mimi-001").agent_id)
    assert ISO_TIME.match(body["created_at"])
    assert ISO_TIME.match(body["expires_at"])
