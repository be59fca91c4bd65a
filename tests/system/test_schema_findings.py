"""What Schemathesis found when the OpenAPI schema was first run as a contract
(tests/e2e/test_schemathesis.py): each request shape is documented as strictly as the server
validates it, and the server refuses what the schema calls invalid."""

import pytest
from drf_spectacular.generators import SchemaGenerator

from agents.roster import AGENT_TYPES
from agents.services import agent_create, agent_start
from questflow.models import Deployment, Meeting, Workflow
from system.ops.system_tasks import TASK_TYPES

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

MEETING_URL = "/api/agents/csuite/meeting"


@pytest.fixture(scope="module")
def api_schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def component(schema: dict, name: str) -> dict:
    return schema["components"]["schemas"][name]


def request_schema(schema: dict, path: str, method: str = "post") -> dict:
    body = schema["paths"][path][method]["requestBody"]
    found = body["content"]["application/json"]["schema"]
    if "$ref" in found:
        found = component(schema, found["$ref"].rsplit("/", 1)[1])
    return {**found, "x-body-required": body.get("required", False)}


@pytest.fixture
def board():
    return [
        agent_start(agent=agent_create(name=t, type=t))
        for t in ("ceo_mimi", "cto_alex", "cfo_cash", "cmo_anova")
    ]


@pytest.mark.parametrize("body", ["68", "false", '"agenda"', "[1, 2]"])
def test_a_meeting_body_that_is_not_an_object_is_refused(client_as, board, body):
    response = client_as("agent_manager").post(MEETING_URL, body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert not Meeting.objects.exists()


def test_a_meeting_with_a_garbage_async_flag_is_refused(client_as, board):
    client = client_as("agent_manager")

    refused = client.post(f"{MEETING_URL}?async=maybe", {}, format="json")
    held = client.post(f"{MEETING_URL}?async=no", {}, format="json")

    assert refused.status_code == 400
    assert refused.json()["error"]["details"] == {"async": ["true or false."]}
    assert held.status_code == 200  # "no": held now, not queued
    assert Meeting.objects.count() == 1


def test_active_workflows_are_documented_as_the_list_they_are(api_schema, client_as):
    answer = api_schema["paths"]["/api/workflows/status"]["get"]["responses"]["200"]
    documented = answer["content"]["application/json"]["schema"]
    item = component(api_schema, documented["items"]["$ref"].rsplit("/", 1)[1])

    assert documented["type"] == "array"
    assert set(item["properties"]) == {"id", "name", "status", "progress", "startTime"}
    assert client_as("agent_manager").get("/api/workflows/status").json() == []


def test_workflow_and_deployment_bodies_say_what_is_required(api_schema):
    workflow = request_schema(api_schema, "/api/workflows")
    deployment = request_schema(api_schema, "/api/deploy/akash")
    config = deployment["properties"]["config"]

    assert workflow["x-body-required"] and deployment["x-body-required"]
    assert workflow["oneOf"] == [{"required": ["template"]}, {"required": ["steps"]}]
    assert "plugin_development" in workflow["properties"]["template"]["enum"]
    assert deployment["required"] == ["name", "config"]
    assert config["required"] == ["cpu", "memory", "storage"]
    assert config["additionalProperties"] is False


def test_a_deployment_setting_the_schema_does_not_know_is_refused(client_as):
    body = {"name": "web", "config": {"cpu": 1, "memory": "1Gi", "storage": "1Gi", "gpu": 1}}

    response = client_as("admin").post("/api/deploy/akash", body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"config.gpu": ["Unknown setting."]}
    assert not Deployment.objects.exists()


def test_workflow_text_holding_a_nul_character_is_refused(client_as):
    # PostgreSQL cannot store it (a 500 there); the schema's text patterns exclude it.
    body = {"steps": [{"agent": "ceo_mimi", "instruction": "Plan\x00."}]}

    response = client_as("agent_manager").post("/api/workflows", body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["details"] == {
        "steps": ["Text may not contain NUL characters."]
    }
    assert not Workflow.objects.exists()


def test_free_form_workflow_input_keeps_a_nul_character_as_u_fffd(client_as):
    # Any JSON is valid input (OpenAPI 3.0 cannot constrain an object's keys): stored, not 500.
    body = {"template": "plugin_development", "input": {"k\x00": ["a\x00b"]}}

    response = client_as("agent_manager").post("/api/workflows", body, format="json")

    assert response.status_code == 202
    assert Workflow.objects.get().input == {"k\ufffd": ["a\ufffdb"]}


def test_a_public_channel_takes_null_members_as_documented(client_as):
    body = {"name": "open", "type": "public", "members": None}

    response = client_as("messaging").post("/api/v1/channels", body, format="json")

    assert response.status_code == 201


def test_agent_and_channel_bodies_are_typed_not_anything(api_schema):
    agent = component(api_schema, "AgentCreateInputRequest")["properties"]
    channel = component(api_schema, "ChannelCreateInputRequest")
    fields = channel["properties"]

    assert agent["name"]["type"] == "string" and "nullable" not in agent["name"]
    assert agent["type"]["allOf"][0]["enum"] == list(AGENT_TYPES)
    assert agent["config"]["additionalProperties"] is False
    assert agent["skills"]["items"]["maxLength"] == 64
    assert fields["name"]["type"] == "string" and "nullable" not in fields["name"]
    assert fields["type"]["allOf"][0]["enum"] == ["public", "private", "direct"]
    assert fields["agent_replies_enabled"] == {
        "type": "boolean",
        "description": "Agents answer agents here (admin or agent_manager only); default false",
    }
    assert [branch.get("required") for branch in channel["oneOf"]] == [
        None,
        ["members"],
        ["members"],
    ]


def test_an_agent_skill_holding_a_nul_character_is_refused(client_as):
    body = {"name": "nul-skill", "type": "custom", "skills": ["a\x00b"]}

    response = client_as("admin").post("/api/v1/agents", body, format="json")

    assert response.status_code == 400
    assert "skills" in response.json()["error"]["details"]


def test_elizaos_submit_documents_non_null_content_and_non_blank_ids(api_schema):
    fields = component(api_schema, "ElizaSubmitInputRequest")["properties"]

    assert fields["content"]["type"] == "string" and "nullable" not in fields["content"]
    assert "nullable" not in fields["raw_message"]
    assert {"type": "string", "minLength": 1} in fields["raw_message"]["anyOf"]  # not ""
    for name in ("channel_id", "message_server_id", "author_id", "source_type"):
        assert fields[name]["minLength"] == 1, name


def test_task_type_is_documented_as_the_task_types(api_schema):
    task = component(api_schema, "SystemTaskCreateInputRequest")

    assert task["properties"]["task_type"]["allOf"][0]["enum"] == list(TASK_TYPES)
    assert task["oneOf"][0]["properties"]["task_type"]["pattern"] == "^(clear_cache)$"


def test_event_log_documents_after_and_still_takes_since_id(api_schema, client_as):
    parameters = api_schema["paths"]["/api/v1/system/events"]["get"]["parameters"]

    response = client_as("admin").get("/api/v1/system/events?since_id=0")

    assert "after" in {p["name"] for p in parameters}
    assert "since_id" not in {p["name"] for p in parameters}
    assert response.status_code == 200
    assert response.json()["pagination"]["next_after"] == 0
