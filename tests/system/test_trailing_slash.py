"""A trailing slash on /api/v1/... names the same resource: a 308 to it (method and body
kept), never a 404; unknown paths stay the envelope's 404."""

import pytest

from agents.services import agent_create

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


def test_get_with_a_trailing_slash_is_a_308_to_the_resource_keeping_the_query(client_as):
    response = client_as("agent_manager").get("/api/v1/agents/?status=running&limit=5")

    assert response.status_code == 308
    assert response["Location"] == "/api/v1/agents?status=running&limit=5"


@pytest.mark.parametrize(
    "path", ["/api/v1/channels", "/api/v1/sessions", "/api/v1/system/config", "/api/v1/auth/token"]
)
def test_every_api_v1_route_answers_a_trailing_slash_with_a_308_to_it(client_as, path):
    response = client_as("admin").get(f"{path}/")

    assert response.status_code == 308
    assert response["Location"] == path


def test_following_the_redirect_answers_the_same_resource(client_as):
    client = client_as("agent_manager")
    agent = agent_create(name="slash-agent", type="custom")

    direct = client.get(f"/api/v1/agents/{agent.agent_id}")
    followed = client.get(f"/api/v1/agents/{agent.agent_id}/", follow=True)

    assert followed.status_code == direct.status_code == 200
    assert followed.json() == direct.json()


def test_a_post_with_a_trailing_slash_is_redirected_with_308_so_the_body_is_resent(client_as):
    client = client_as("agent_manager")
    body = {"name": "slash-created", "type": "custom"}

    response = client.post("/api/v1/agents/", body, format="json")
    created = client.post(response["Location"], body, format="json")

    assert response.status_code == 308
    assert response["Location"] == "/api/v1/agents"
    assert created.status_code == 201


def test_an_unknown_path_with_a_trailing_slash_stays_a_404_in_the_envelope(client_as):
    response = client_as("admin").get("/api/v1/no-such-thing/")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
