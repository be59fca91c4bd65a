import pytest
from rest_framework.test import APIClient

from agents.services import agent_create, agent_start


@pytest.fixture
def mimi(db):
    return agent_start(agent=agent_create(name="ceo_mimi", type="ceo_mimi"))


@pytest.fixture
def principal(make_user, make_api_key):
    """principal("alice") → an APIClient for a new user holding the messaging role."""

    def make(username: str, roles: tuple[str, ...] = ("messaging",)) -> APIClient:
        client = APIClient()
        user = make_user(username)
        client.credentials(HTTP_X_API_KEY=make_api_key(list(roles), owner=user))
        client.user = user
        return client

    return make


@pytest.fixture
def owner(principal):
    return principal("owner")


@pytest.fixture
def v1_session(owner, mimi):
    """A session created through /api/v1/sessions by `owner`; returns its JSON."""

    def make(**body):
        response = owner.post(
            "/api/v1/sessions",
            {"agent_id": "ceo_mimi", "user_id": "user-123", **body},
            format="json",
        )
        assert response.status_code == 201, response.content
        return response.json()

    return make
