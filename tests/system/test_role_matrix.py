"""The role-by-action matrix, generated from the URL conf and config/routing_rules.yaml: every
(route, method) under /api/ declares an action the policy knows, and each of the four roles
and an anonymous caller get exactly what the policy says for it, through the real URL."""

import pytest
from rest_framework.response import Response
from rest_framework.test import APIClient
from rest_framework.views import APIView

from system.kernel.policy import get_policy
from system.kernel.roles import ROLES
from tests.system.api_routes import Operation, api_operations, api_views

pytestmark = pytest.mark.embedded

OPERATIONS = api_operations()
ANONYMOUS = "anonymous"


def error_code(response: Response) -> str | None:
    """The envelope's error code; None for a body that is not a JSON error (docs, schema)."""
    try:
        body = response.json()
    except (TypeError, ValueError):
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error.get("code") if isinstance(error, dict) else None


def cases(allowed: bool) -> list:
    """(operation, caller) pairs the policy allows (allowed=True) or denies, one test id each."""
    policy = get_policy()
    pairs = []
    for operation in OPERATIONS:
        rule = policy.actions.get(operation.action)
        for caller in (*ROLES, ANONYMOUS):
            permitted = rule is not None and (rule.public or caller in rule.roles)
            if permitted == allowed:
                pairs.append(pytest.param(operation, caller, id=f"{caller}-{operation.label}"))
    return pairs


@pytest.fixture
def caller_client(client_as):
    def make(caller: str) -> APIClient:
        return APIClient() if caller == ANONYMOUS else client_as(caller)

    return make


def call(client: APIClient, operation: Operation) -> Response:
    return getattr(client, operation.method)(operation.sample_url(), {}, format="json")


@pytest.mark.parametrize("route, view", api_views(), ids=[r for r, _ in api_views()])
def test_every_policed_api_route_is_a_drf_view(route, view):
    assert issubclass(getattr(view, "cls", object), APIView), f"{route} is not a DRF view"


@pytest.mark.parametrize("operation", OPERATIONS, ids=[o.label for o in OPERATIONS])
def test_every_route_and_method_declares_an_action_the_policy_knows(operation):
    assert operation.action in get_policy().actions, (
        f"{operation.label} declares {operation.action!r}: add it to policy_action(s) and to "
        "config/routing_rules.yaml"
    )


def test_the_matrix_covers_the_api():
    assert len(OPERATIONS) >= 50
    assert len(cases(True)) + len(cases(False)) == len(OPERATIONS) * (len(ROLES) + 1)


@pytest.mark.django_db
@pytest.mark.parametrize("operation, caller", cases(allowed=True))
def test_a_caller_the_policy_allows_is_never_refused(operation, caller, caller_client):
    response = call(caller_client(caller), operation)

    assert response.status_code != 401, response.content
    assert error_code(response) != "insufficient_permissions", response.content


@pytest.mark.django_db
@pytest.mark.parametrize(
    "operation, caller", [c for c in cases(allowed=False) if c.values[1] != ANONYMOUS]
)
def test_a_role_the_policy_denies_gets_403_naming_the_action(operation, caller, caller_client):
    response = call(caller_client(caller), operation)

    assert response.status_code == 403, response.content
    assert response.json()["error"]["code"] == "insufficient_permissions"
    assert response.json()["error"]["details"]["action"] == operation.action


@pytest.mark.django_db
@pytest.mark.parametrize(
    "operation, caller", [c for c in cases(allowed=False) if c.values[1] == ANONYMOUS]
)
def test_an_anonymous_caller_of_a_non_public_action_gets_401(operation, caller, caller_client):
    response = call(caller_client(caller), operation)

    assert response.status_code == 401, response.content
    assert response.json()["error"]["code"] == "authentication_required"
