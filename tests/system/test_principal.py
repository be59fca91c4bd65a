"""One Principal: a REST request and a WebSocket build the same one from the same credentials."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.exceptions import NotAuthenticated
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from system.auth.services import token_obtain
from system.kernel.principal import Principal, principal_from_request
from system.models import ApiKey
from system.realtime.auth import principal_authenticate

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

PASSWORD = "pw-123456!"


def rest_request(**headers):
    return APIView().initialize_request(APIRequestFactory().get("/", **headers))


def test_an_api_key_is_the_same_principal_over_rest_and_websocket(make_user, make_api_key):
    key = make_api_key(["messaging", "agent_manager"], owner=make_user("alice", roles=["admin"]))

    rest = principal_from_request(rest_request(HTTP_X_API_KEY=key))

    assert rest == principal_authenticate(token=key)


def test_an_api_key_principal_is_its_owner_with_the_keys_own_roles(make_user, make_api_key):
    alice = make_user("alice", roles=["admin"])
    key = make_api_key(["messaging"], owner=alice)
    row = ApiKey.objects.get(prefix=key.split("_")[1])

    principal = principal_from_request(rest_request(HTTP_AUTHORIZATION=f"ApiKey {key}"))

    assert (principal.id, principal.kind, principal.user_id, principal.api_key_id) == (
        f"key:{row.pk}",
        "api_key",
        alice.pk,
        row.pk,
    )
    assert (principal.username, principal.roles, principal.is_admin) == (
        "alice",
        frozenset({"messaging"}),
        False,
    )


def test_a_jwt_is_the_same_principal_over_rest_and_websocket(make_user):
    make_user("bob", roles=["messaging", "admin"])
    access = token_obtain(username="bob", password=PASSWORD)["access"]

    rest = principal_from_request(rest_request(HTTP_AUTHORIZATION=f"Bearer {access}"))

    assert rest == principal_authenticate(token=access)


def test_a_jwt_principal_carries_the_roles_it_was_issued_with(make_user):
    bob = make_user("bob", roles=["messaging", "admin"])
    access = token_obtain(username="bob", password=PASSWORD)["access"]
    bob.groups.clear()

    principal = principal_from_request(rest_request(HTTP_AUTHORIZATION=f"Bearer {access}"))

    assert (principal.id, principal.kind, principal.api_key_id) == (f"user:{bob.pk}", "user", None)
    assert principal.roles == frozenset({"messaging", "admin"})
    assert principal.expires_at is not None


def test_a_user_authenticated_otherwise_gets_the_roles_of_its_groups(make_user):
    carol = make_user("carol", roles=["agent_manager"])
    request = APIRequestFactory().get("/")
    force_authenticate(request, user=carol)

    principal = principal_from_request(APIView().initialize_request(request))

    assert principal == Principal(
        user_id=carol.pk, username="carol", roles=frozenset({"agent_manager"})
    )


def test_the_principal_is_computed_once_per_request(make_user):
    request = APIRequestFactory().get("/")
    force_authenticate(request, user=make_user("dave", roles=["messaging"]))
    request = APIView().initialize_request(request)
    first = principal_from_request(request)

    with CaptureQueriesContext(connection) as queries:
        again = principal_from_request(request)

    assert again is first
    assert len(queries) == 0


def test_an_anonymous_request_has_no_principal():
    with pytest.raises(NotAuthenticated):
        principal_from_request(rest_request())


def test_describe_keeps_the_connection_established_shape():
    principal = Principal(
        user_id=7, username="erin", roles=frozenset({"messaging", "admin"}), api_key_id=3
    )

    assert principal.describe() == {
        "id": "key:3",
        "type": "api_key",
        "username": "erin",
        "roles": ["admin", "messaging"],
    }
